package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slurmrun/slurmrun/container"
)

// starter sets a signal state and execs its arguments, as a shell, nohup
// or a batch system leaves one.
const starter = `import os, signal, sys
blk, ign = (int(x, 16) for x in sys.argv[1].split(":"))
signal.pthread_sigmask(signal.SIG_SETMASK, {s for s in range(1, 65) if blk >> (s - 1) & 1})
for s in range(1, 65):
    try:  # Python itself ignores SIGPIPE and SIGXFSZ: set every one
        signal.signal(s, signal.SIG_IGN if ign >> (s - 1) & 1 else signal.SIG_DFL)
    except (OSError, ValueError):
        pass
os.execvp(sys.argv[2], sys.argv[2:])`

func sigBit(sig syscall.Signal) uint64 { return 1 << (sig - 1) }

// sigLines returns the SigBlk and SigIgn lines of /proc/self/status output.
func sigLines(out string) string {
	var keep []string
	for _, l := range lines(out) {
		if strings.HasPrefix(l, "SigBlk:") || strings.HasPrefix(l, "SigIgn:") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// The command starts with exactly the mask and ignored set slurmrun was
// given, side by side with tini on the same start: the case the init issue
// measured (TTOU, SEGV, INT ignored; TTIN, ILL, TERM blocked), what nohup
// leaves and what `cmd &` in sh leaves. For `run`, pytest's command gets it.
func TestChildSignalStateAsTini(t *testing.T) {
	tini, err := exec.LookPath("tini")
	if err != nil {
		t.Fatal("tini is the reference and must be installed (make deps)")
	}
	states := map[string]string{
		"issue case 3": fmt.Sprintf("%x:%x", sigBit(unix.SIGTTIN)|sigBit(unix.SIGILL)|sigBit(unix.SIGTERM),
			sigBit(unix.SIGTTOU)|sigBit(unix.SIGSEGV)|sigBit(unix.SIGINT)),
		"nohup":  fmt.Sprintf("0:%x", sigBit(unix.SIGHUP)),
		"cmd &":  fmt.Sprintf("0:%x", sigBit(unix.SIGINT)|sigBit(unix.SIGQUIT)),
		"clean":  "0:0",
		"others": fmt.Sprintf("%x:%x", sigBit(unix.SIGUSR1)|sigBit(unix.SIGCHLD), sigBit(unix.SIGUSR2)|sigBit(unix.SIGTSTP)|sigBit(unix.SIGPIPE)),
	}
	for name, state := range states {
		_, env, _ := initEnv(t)
		// cat, not grep: GNU grep installs a SIGSEGV handler of its own.
		ref := runBin(t, env, "exec", "--", "python3", "-c", starter, state, tini, "--", "cat", "/proc/self/status")
		ours := runBin(t, env, "exec", "--", "python3", "-c", starter, state, binary, "exec", "--", "cat", "/proc/self/status")
		if ref.code != 0 || ours.code != 0 {
			t.Fatalf("%s: tini %d, slurmrun %d\n%s\n%s", name, ref.code, ours.code, ref.stderr, ours.stderr)
		}
		if sigLines(ours.stdout) != sigLines(ref.stdout) {
			t.Errorf("%s (%s): exec gives\n%s\ntini gives\n%s", name, state, sigLines(ours.stdout), sigLines(ref.stdout))
		}
		tr := newTree(t)
		tr.env["DISAGG_SERVING_TYPE"] = "GEN_0"
		tr.env["perfMode"] = "false"
		tr.env["pytestCommand"] = "cat /proc/self/status"
		flow := runBin(t, tr.env, "exec", "--", "python3", "-c", starter, state, binary, "run")
		if flow.code != 0 {
			t.Fatalf("%s: run: exit code %d\n%s", name, flow.code, flow.stderr)
		}
		if sigLines(flow.stdout) != sigLines(ref.stdout) {
			t.Errorf("%s (%s): run gives pytest's command\n%s\ntini gives\n%s", name, state, sigLines(flow.stdout), sigLines(ref.stdout))
		}
	}
}

// procState is a process's state letter in /proc (R, S, T, Z...).
func procState(pid int) byte {
	st, err := container.Stat(pid)
	if err != nil {
		return 0
	}
	return st.State[0]
}

func waitState(t testing.TB, pid int, want byte) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for procState(pid) != want {
		if time.Now().After(deadline) {
			t.Fatalf("process %d in state %c, want %c", pid, procState(pid), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pyxis runs an image's ENTRYPOINT as `ENTRYPOINT sh -c 'kill -STOP $$ ;
// exit 0'` and waits for the process it started to stop: slurmrun mirrors
// its child's stop, and continues it with itself.
func TestExecMirrorsTheChildsStop(t *testing.T) {
	_, env, _ := initEnv(t)
	cmd, o, e := start(t, env, "exec", "--", "sh", "-c", "kill -STOP $$ ; exit 0")
	waitState(t, cmd.Process.Pid, 'T')
	time.Sleep(200 * time.Millisecond)
	if procState(cmd.Process.Pid) != 'T' {
		t.Fatal("slurmrun did not stay stopped")
	}
	syscall.Kill(cmd.Process.Pid, syscall.SIGCONT)
	done := make(chan ran, 1)
	go func() { done <- wait(t, cmd, o, e) }()
	select {
	case r := <-done:
		if r.code != 0 {
			t.Fatalf("exit code %d\n%s", r.code, r.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("slurmrun did not exit after SIGCONT")
	}
}

// SIGTSTP sent to slurmrun stops the child's group, and slurmrun with it;
// SIGCONT continues both.
func TestExecForwardsStopAndContinue(t *testing.T) {
	_, env, _ := initEnv(t)
	cmd, o, e := start(t, env, "exec", "--", "sh", "-c", "echo ready; while :; do sleep 0.05; done")
	waitOutput(t, o, "ready")
	child := childOf(t, cmd.Process.Pid)
	syscall.Kill(cmd.Process.Pid, syscall.SIGTSTP)
	waitState(t, child, 'T')
	waitState(t, cmd.Process.Pid, 'T')
	syscall.Kill(cmd.Process.Pid, syscall.SIGCONT)
	deadline := time.Now().Add(10 * time.Second)
	for procState(child) == 'T' || procState(cmd.Process.Pid) == 'T' {
		if time.Now().After(deadline) {
			t.Fatal("SIGCONT did not continue both")
		}
		time.Sleep(10 * time.Millisecond)
	}
	syscall.Kill(child, syscall.SIGKILL)
	if r := wait(t, cmd, o, e); r.code != 137 {
		t.Fatalf("exit code %d", r.code)
	}
}

// A position-independent build (distribution packaging) runs the init.
func TestPIEBuild(t *testing.T) {
	pie := filepath.Join(t.TempDir(), "slurmrun-pie")
	build := exec.Command("go", "build", "-buildmode=pie", "-tags", "slurmrun_fwdsig", "-ldflags=-checklinkname=0", "-o", pie, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -buildmode=pie: %v\n%s", err, out)
	}
	if out, _ := exec.Command("file", pie).Output(); len(out) > 0 && !strings.Contains(string(out), "pie") && !strings.Contains(string(out), "shared object") {
		t.Fatalf("not a PIE: %s", out)
	}
	for _, tt := range []struct {
		script string
		want   int
	}{{"exit 0", 0}, {"exit 3", 3}, {"kill -TERM $$", 143}} {
		cmd := exec.Command(pie, "exec", "--", "sh", "-c", "sleep 0.01 & "+tt.script)
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != tt.want {
			t.Errorf("%s: exit code %d, want %d (%v)", tt.script, code, tt.want, err)
		}
	}
	// And the two-process flow: the init starts the job from the PIE too.
	tr := newTree(t)
	tr.env["DISAGG_SERVING_TYPE"] = "GEN_0"
	tr.env["perfMode"] = "false"
	tr.env["pytestCommand"] = "sh -c 'exit 3'"
	cmd := exec.Command(pie, "run")
	for k, v := range tr.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 || !strings.Contains(string(out), "Rank0 Final Slurm run finished execution with exit code 3") {
		t.Fatalf("run from the PIE: %v\n%s", err, out)
	}
}

// As PID 1 of a PID namespace (docker run, Slurm's OCI containers): the
// exit code, the signal state beside tini's as PID 1, and run's SIGTERM
// handling with its record.
func TestAsPID1(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a PID namespace")
	}
	tini, err := exec.LookPath("tini")
	if err != nil {
		t.Fatal("tini is the reference and must be installed (make deps)")
	}
	pid1 := []string{"unshare", "--pid", "--fork", "--mount-proc", "--kill-child"}
	_, env, _ := initEnv(t)
	if r := runBin(t, env, append(append([]string{"exec", "--"}, pid1...), binary, "exec", "--", "sh", "-c", "[ $PPID = 1 ] && exit 3")...); r.code != 3 {
		t.Errorf("exit code %d, want 3 (the child's, under slurmrun as PID 1)\n%s", r.code, r.stderr)
	}
	state := fmt.Sprintf("%x:%x", sigBit(unix.SIGTTIN)|sigBit(unix.SIGILL)|sigBit(unix.SIGTERM),
		sigBit(unix.SIGTTOU)|sigBit(unix.SIGSEGV)|sigBit(unix.SIGHUP))
	under := func(init ...string) string {
		argv := append(append(append([]string{"exec", "--"}, pid1...), "python3", "-c", starter, state), init...)
		r := runBin(t, env, append(argv, "cat", "/proc/self/status")...)
		if r.code != 0 {
			t.Fatalf("%v: exit code %d\n%s", init, r.code, r.stderr)
		}
		return sigLines(r.stdout)
	}
	if ours, ref := under(binary, "exec", "--"), under(tini, "--"); ours != ref {
		t.Errorf("as PID 1, exec gives\n%s\ntini gives\n%s", ours, ref)
	}

	tr := newTree(t)
	tr.env["SLURMRUN_GRACE"] = "2s"
	tr.env["SLEEP_MARK"] = filepath.Join(tr.dir, "sleeping")
	tr.env["pytestCommand"] = tr.pytest("test_cases.py::test_sleep")
	cmd, o, e := start(t, tr.env, append(append([]string{"exec", "--"}, pid1...), binary, "run")...)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(tr.env["SLEEP_MARK"]); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pytest never started sleeping:\n%s\n%s", o, e)
		}
	}
	var init int
	for _, p := range descendantsNamed(cmd.Process.Pid, "slurmrun") {
		if init == 0 {
			init = p // the first below unshare: the namespace's PID 1
		}
	}
	if init == 0 {
		t.Fatal("slurmrun not found below unshare")
	}
	syscall.Kill(init, syscall.SIGTERM)
	r := wait(t, cmd, o, e)
	if r.code != 143 || !strings.Contains(r.stdout, "Rank0 Final Slurm run finished execution with exit code 143") {
		t.Fatalf("run as PID 1 after SIGTERM: exit code %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if res := resultOf(t, tr.ws, 0); res.Signal != "terminated" || res.Final != 143 {
		t.Errorf("record: signal %q final %d", res.Signal, res.Final)
	}
}
