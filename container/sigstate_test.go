package container

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// This test binary is also the trampoline its commands start through, and
// the probe TestRuntimeSignalRecord starts.
func TestMain(m *testing.M) {
	DispatchSigExec()
	if os.Getenv("SLURMRUN_TEST_PRINT_INHERITED") != "" {
		fmt.Println(Inherited())
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func bit(sig syscall.Signal) uint64 { return 1 << (sig - 1) }

// starter is a Python program that sets a signal state and execs its
// arguments: the state a shell, nohup or a batch system leaves.
const starter = `import os, signal, sys
blk, ign = sys.argv[1].split(":")
signal.pthread_sigmask(signal.SIG_SETMASK, {s for s in range(1, 65) if int(blk, 16) >> (s - 1) & 1})
for s in range(1, 65):
    try:  # Python itself ignores SIGPIPE and SIGXFSZ: set every one
        signal.signal(s, signal.SIG_IGN if int(ign, 16) >> (s - 1) & 1 else signal.SIG_DFL)
    except (OSError, ValueError):
        pass
# What it could set: signals 32 and 33 keep what the environment gave.
st = {k: v.strip() for k, v in (l.split(":", 1) for l in open("/proc/self/status") if l.startswith("Sig"))}
print("%x:%x" % (int(st["SigBlk"], 16), int(st["SigIgn"], 16)), flush=True)
os.execv(sys.argv[2], sys.argv[2:])`

// The state case 3 of the init issue names, and what nohup and `cmd &` leave.
var startStates = []SignalState{
	{Blocked: bit(unix.SIGTTIN) | bit(unix.SIGILL) | bit(unix.SIGTERM), Ignored: bit(unix.SIGTTOU) | bit(unix.SIGSEGV) | bit(unix.SIGINT)},
	{Ignored: bit(unix.SIGHUP) | bit(unix.SIGINT) | bit(unix.SIGQUIT)},
	{Blocked: bit(unix.SIGUSR1), Ignored: bit(unix.SIGUSR2) | bit(unix.SIGTSTP) | bit(unix.SIGPIPE)},
}

// What the runtime recorded must be what the process was started with. A Go
// toolchain that changes its record fails here, not in users' jobs: `make
// test` builds this test with the record (tag slurmrun_fwdsig).
func TestRuntimeSignalRecord(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatal("python3 is needed to start a process with a signal state")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range startStates {
		cmd := exec.Command("python3", "-c", starter, want.String(), self)
		cmd.Env = append(os.Environ(), "SLURMRUN_TEST_PRINT_INHERITED=1")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("probe: %v", err)
		}
		given, printed, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		if want, err = ParseSignalState(given); err != nil {
			t.Fatal(err)
		}
		got, err := ParseSignalState(printed)
		if err != nil {
			t.Fatal(err)
		}
		if Exact() {
			if got != want {
				t.Errorf("started with %v, the runtime's record says %v: the Go toolchain changed runtime.fwdSig or runtime.initSigmask", want, got)
			}
			continue
		}
		// Without the record: never more than was given, and HUP, INT and
		// the stop signals always (the runtime leaves them as they were).
		kept := bit(unix.SIGHUP) | bit(unix.SIGINT) | bit(unix.SIGTSTP) | bit(unix.SIGTTIN) | bit(unix.SIGTTOU)
		if got.Ignored&^want.Ignored != 0 || got.Blocked&^want.Blocked != 0 || got.Ignored&kept != want.Ignored&kept {
			t.Errorf("started with %v, read %v", want, got)
		}
	}
}

func TestParseSignalState(t *testing.T) {
	for _, st := range startStates {
		got, err := ParseSignalState(st.String())
		if err != nil || got != st {
			t.Errorf("%v: got %v %v", st, got, err)
		}
	}
	for _, bad := range []string{"", "1", "x:1", "1:y", "1:2:3"} {
		if _, err := ParseSignalState(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// Through the trampoline the command gets exactly the state asked for.
func TestApplyGivesTheState(t *testing.T) {
	for _, st := range startStates {
		// cat, not grep: GNU grep installs a SIGSEGV handler of its own.
		cmd := exec.Command("cat", "/proc/self/status")
		if err := st.Apply(cmd); err != nil {
			t.Fatal(err)
		}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %v", st, err)
		}
		var got SignalState
		for _, line := range strings.Split(string(out), "\n") {
			name, v, _ := strings.Cut(line, ":")
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			switch name {
			case "SigBlk":
				got.Blocked = n
			case "SigIgn":
				got.Ignored = n
			}
		}
		if got != st {
			t.Errorf("asked for %v, the command has %v", st, got)
		}
	}
}

// A binary started as the trampoline that did not dispatch it refuses to
// start another: it would run itself again without end.
func TestApplyRefusesSecondLevel(t *testing.T) {
	saved := os.Args
	defer func() { os.Args = saved }()
	os.Args = []string{saved[0], SigExecCommand, "0:1", "--", "/bin/true"}
	err := startStates[1].Apply(exec.Command("true"))
	if err == nil || !strings.Contains(err.Error(), "does not dispatch") {
		t.Fatalf("got %v", err)
	}
	if err := (SignalState{}).Apply(exec.Command("true")); err != nil {
		t.Fatalf("an empty state needs no trampoline: %v", err)
	}
}
