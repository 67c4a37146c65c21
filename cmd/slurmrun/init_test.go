package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slurmrun/slurmrun/container"

	"github.com/slurmrun/slurmrun/internal/must"
)

// helper is a Python program the init tests supervise.
const helper = `import os, signal, sys, time
mode, out = sys.argv[1], sys.argv[2]

def record(line):
    with open(out, "a") as f:
        f.write(line + "\n")

if mode == "signals":
    names = sys.argv[3].split(",")
    for n in names:
        signal.signal(getattr(signal, n), lambda s, _: record(signal.Signals(s).name))
    record("ready")
    while True:
        time.sleep(0.05)
elif mode == "orphans":
    n = int(sys.argv[3])
    for i in range(n):
        pid = os.fork()
        if pid == 0:
            if os.fork() == 0:
                os._exit(0)
            os._exit(0)
        os.waitpid(pid, 0)
    time.sleep(0.5)
    init = os.getppid()
    zombies = 0
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            stat = open("/proc/%s/stat" % p).read()
        except OSError:
            continue
        rest = stat[stat.rindex(")") + 2:].split()
        if rest[0] == "Z" and int(rest[1]) == init:
            zombies += 1
    record("zombies=%d" % zombies)
`

// initEnv writes the helper and returns an environment for the binary.
func initEnv(t testing.TB) (dir string, env map[string]string, script string) {
	dir = t.TempDir()
	script = filepath.Join(dir, "helper.py")
	must.Do(t, os.WriteFile(script, []byte(helper), 0o644))
	return dir, map[string]string{"PATH": os.Getenv("PATH"), "SLURMRUN_GRACE": "30s"}, script
}

// waitFor polls path until it contains want.
func waitFor(t testing.TB, path, want string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		data, _ := os.ReadFile(path) // not there yet is not written yet
		if strings.Contains(string(data), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never held %q (has %q)", path, want, data)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestExecExitCodes(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	must.Do(t, os.WriteFile(plain, []byte("x"), 0o644))
	tests := []struct {
		args []string
		want int
	}{
		{[]string{"--", "true"}, 0},
		{[]string{"--", "sh", "-c", "exit 1"}, 1},
		{[]string{"--", "sh", "-c", "exit 77"}, 77},
		{[]string{"--", filepath.Join(dir, "missing")}, 127},
		{[]string{"--", plain}, 126},
		{[]string{"--", "sh", "-c", "kill -USR1 $$"}, 128 + 10},
		{[]string{"-e", "143", "--", "sh", "-c", "kill -TERM $$"}, 0},
		{[]string{"-e143", "-e", "3", "sh", "-c", "exit 3"}, 0},
		{[]string{"-sgw", "-v", "--", "sh", "-c", "exit 4"}, 4},
		{[]string{"-x", "--", "true"}, 2},
	}
	for _, tt := range tests {
		r := runBin(t, map[string]string{"PATH": os.Getenv("PATH")}, append([]string{"exec"}, tt.args...)...)
		if r.code != tt.want {
			t.Errorf("exec %q: exit code %d, want %d\n%s", tt.args, r.code, tt.want, r.stderr)
		}
	}
}

// childOf returns the init's child: the command it runs.
func childOf(t testing.TB, pid int) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if below := container.Descendants(pid); len(below) > 0 {
			return below[0]
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("process %d has no child", pid)
	return 0
}

// exec is transparent, as tini: every catchable signal reaches the child,
// repeated terminating ones too, the synchronous ones sent with kill do not
// kill slurmrun, and nothing is killed on slurmrun's own initiative.
func TestExecForwardsSignals(t *testing.T) {
	for _, group := range []bool{false, true} {
		dir, env, script := initEnv(t)
		out := filepath.Join(dir, "got")
		names := []string{"SIGHUP", "SIGINT", "SIGINT", "SIGQUIT", "SIGUSR1", "SIGTERM", "SIGTERM", "SIGUSR2", "SIGALRM",
			"SIGILL", "SIGSEGV", "SIGBUS", "SIGFPE", "SIGABRT", "SIGTRAP", "SIGSYS", "SIGPIPE", "SIGWINCH", "SIGPWR",
			"SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGHUP", "SIGUSR1"}
		args := []string{"exec"}
		if group {
			args = append(args, "-g")
		}
		args = append(args, "--", "python3", script, "signals", out, strings.Join(names, ","))
		cmd, o, e := start(t, env, args...)
		waitFor(t, out, "ready", 10*time.Second)
		want := "ready\n"
		for _, n := range names {
			cmd.Process.Signal(unix.SignalNum(n))
			want += n + "\n"
			waitFor(t, out, want, 5*time.Second)
		}
		time.Sleep(200 * time.Millisecond)
		if !alive(cmd.Process.Pid) {
			t.Fatalf("group=%v: slurmrun exited\n%s", group, e)
		}
		// Only the child's own end ends slurmrun.
		syscall.Kill(childOf(t, cmd.Process.Pid), syscall.SIGKILL)
		r := wait(t, cmd, o, e)
		if r.code != 137 {
			t.Errorf("group=%v: exit code %d\n%s", group, r.code, r.stderr)
		}
	}
}

// Killing after a forwarded SIGTERM is an option (-t), off by default.
func TestExecKillAfterIsOptIn(t *testing.T) {
	_, env, _ := initEnv(t)
	ignoreTerm := []string{"--", "sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"}
	cmd, o, e := start(t, env, append([]string{"exec"}, ignoreTerm...)...)
	waitOutput(t, o, "ready")
	cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(1500 * time.Millisecond)
	if !alive(cmd.Process.Pid) {
		t.Fatalf("without -t the child was killed:\n%s", e)
	}
	syscall.Kill(childOf(t, cmd.Process.Pid), syscall.SIGKILL)
	wait(t, cmd, o, e)

	cmd, o, e = start(t, env, append([]string{"exec", "-t", "500ms"}, ignoreTerm...)...)
	waitOutput(t, o, "ready")
	begin := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	r := wait(t, cmd, o, e)
	elapsed := time.Since(begin)
	if r.code != 137 || elapsed < 400*time.Millisecond || elapsed > 5*time.Second {
		t.Fatalf("-t 500ms: exit code %d after %v, want 137 after about 500ms\n%s", r.code, elapsed, r.stderr)
	}
}

func waitOutput(t *testing.T, b *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("output never held %q: %q", want, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func alive(pid int) bool {
	st, err := container.Stat(pid)
	return err == nil && st.State != "Z"
}

// A setsid escapee and a plain orphan are ended after the main command
// exits, and the exit code is still the command's.
func TestExecSweepsWhatTheCommandLeaves(t *testing.T) {
	dir, env, _ := initEnv(t)
	pids := filepath.Join(dir, "pids")
	env["SLURMRUN_GRACE"] = "1s"
	r := runBin(t, env, "exec", "--", "sh", "-c",
		"setsid sleep 60 & echo $! > "+pids+"; (trap '' TERM; exec sleep 61) & echo $! >> "+pids+"; sleep 0.2; exit 5")
	if r.code != 5 {
		t.Fatalf("exit code %d\n%s", r.code, r.stderr)
	}
	data := must.Read(t, pids)
	for _, f := range strings.Fields(string(data)) {
		pid, _ := strconv.Atoi(f)
		if alive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("process %d outlived slurmrun", pid)
		}
	}
	if !strings.Contains(r.stderr, "SIGKILL to the processes left behind") {
		t.Errorf("the TERM-ignoring orphan was not escalated:\n%s", r.stderr)
	}
}

func TestReapsOrphansAsSubreaper(t *testing.T) {
	dir, env, script := initEnv(t)
	out := filepath.Join(dir, "out")
	r := runBin(t, env, "exec", "--", "python3", script, "orphans", out, "200")
	if r.code != 0 {
		t.Fatalf("exit code %d\n%s", r.code, r.stderr)
	}
	waitFor(t, out, "zombies=0", time.Second)
}

func TestReapsOrphansAsPID1(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a PID namespace")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare is not installed")
	}
	dir, env, script := initEnv(t)
	out := filepath.Join(dir, "out")
	r := runBin(t, env, "exec", "--", "unshare", "--pid", "--fork", "--mount-proc", binary, "exec", "--",
		"sh", "-c", "echo pid=$PPID > "+out+".pid; python3 "+script+" orphans "+out+" 200; exit 6")
	if r.code != 6 {
		t.Fatalf("exit code %d\n%s", r.code, r.stderr)
	}
	waitFor(t, out+".pid", "pid=1\n", time.Second)
	waitFor(t, out, "zombies=0", time.Second)
}

// As PID 1 slurmrun has no default signal actions: SIGTERM must still be
// forwarded and end the child.
func TestForwardsSigtermAsPID1(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a PID namespace")
	}
	dir, env, script := initEnv(t)
	out := filepath.Join(dir, "got")
	cmd, o, e := start(t, env, "exec", "--", "unshare", "--pid", "--fork", "--mount-proc", "--kill-child", binary, "exec", "--",
		"python3", script, "signals", out, "SIGTERM,SIGUSR1")
	waitFor(t, out, "ready", 10*time.Second)
	// The namespace's PID 1 is unshare's child, the inner slurmrun.
	var inner int
	for _, p := range container.Descendants(cmd.Process.Pid) {
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p)); strings.TrimSpace(string(comm)) == "slurmrun" {
			inner = p
		}
	}
	if inner == 0 {
		t.Fatal("inner slurmrun not found")
	}
	syscall.Kill(inner, syscall.SIGUSR1)
	waitFor(t, out, "SIGUSR1\n", 5*time.Second)
	syscall.Kill(inner, syscall.SIGTERM)
	waitFor(t, out, "SIGTERM\n", 5*time.Second)
	// The helper handles TERM and lives on; the init kills nothing itself.
	syscall.Kill(childOf(t, inner), syscall.SIGKILL)
	r := wait(t, cmd, o, e)
	if r.code != 137 {
		t.Fatalf("exit code %d\n%s", r.code, r.stderr)
	}
}
