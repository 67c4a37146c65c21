package container

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// The shell's exit codes: the status, or 128+N for signal N.
func TestStatusOf(t *testing.T) {
	for _, tt := range []struct {
		ws   syscall.WaitStatus
		want string
	}{
		{syscall.WaitStatus(0), "exit code 0"},
		{syscall.WaitStatus(3 << 8), "exit code 3"},
		{syscall.WaitStatus(255 << 8), "exit code 255"},
		{syscall.WaitStatus(syscall.SIGTERM), "exit code 143 (killed by SIGTERM)"},
		{syscall.WaitStatus(syscall.SIGKILL), "exit code 137 (killed by SIGKILL)"},
		{syscall.WaitStatus(syscall.SIGSEGV | 0x80), "exit code 139 (killed by SIGSEGV)"}, // core dumped
	} {
		if got := StatusOf(tt.ws).String(); got != tt.want {
			t.Errorf("%#x: %s, want %s", uint32(tt.ws), got, tt.want)
		}
	}
}

// 127 for a command that is not there, 126 for one that cannot run.
func TestStartFailureCode(t *testing.T) {
	dir := t.TempDir()
	notExecutable := dir + "/script"
	if err := os.WriteFile(notExecutable, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		argv0 string
		want  int
	}{{"no-such-command-anywhere", 127}, {dir + "/missing", 127}, {notExecutable, 126}, {dir, 126}} {
		err := exec.Command(tt.argv0).Run()
		if err == nil {
			t.Fatalf("%s ran", tt.argv0)
		}
		if got := StartFailureCode(err); got != tt.want {
			t.Errorf("%s: %d (%v), want %d", tt.argv0, got, err, tt.want)
		}
	}
	if got := StartFailureCode(fmt.Errorf("start: %w", exec.ErrNotFound)); got != 127 {
		t.Errorf("a wrapped ErrNotFound: %d", got)
	}
	if got := StartFailureCode(errors.New("fork: resource temporarily unavailable")); got != 126 {
		t.Errorf("another failure: %d", got)
	}
}

// Stat reads a process's state and parent, and a start time that tells a
// reused pid from the process that had it; comm may hold ") (".
func TestStat(t *testing.T) {
	self, err := Stat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if self.PPid != os.Getppid() || self.State != "R" && self.State != "S" || self.StartTime == "" {
		t.Errorf("self: %+v (parent %d)", self, os.Getppid())
	}
	again, _ := Stat(os.Getpid())
	if again.StartTime != self.StartTime {
		t.Errorf("start time changed: %s %s", self.StartTime, again.StartTime)
	}
	// A command name with spaces and parentheses.
	dir := t.TempDir()
	odd := dir + "/a ) (b"
	if err := os.Symlink("/bin/sleep", odd); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(odd, "5")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	st, err := Stat(cmd.Process.Pid)
	if err != nil || st.PPid != os.Getpid() {
		t.Errorf("%+v %v", st, err)
	}
	if _, err := Stat(1 << 30); err == nil {
		t.Error("a pid that cannot exist has a stat")
	}
}

// Descendants finds children and grandchildren, setsid ones included, and
// not the process itself.
func TestDescendants(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 30 & setsid sleep 30 & sh -c 'sleep 30' & echo ready; wait")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, p := range Descendants(cmd.Process.Pid) {
			syscall.Kill(p, syscall.SIGKILL)
		}
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	}()
	buf := make([]byte, 6)
	if _, err := out.Read(buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("%q %v", buf, err)
	}
	// Three sleeps, one in a session of its own, one below an inner sh (or
	// that sh itself, exec'd); the last may start just after "ready".
	var below, sleeps []int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		below, sleeps = Descendants(cmd.Process.Pid), nil
		for _, p := range below {
			if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p)); string(comm) == "sleep\n" {
				sleeps = append(sleeps, p)
			}
		}
		if len(sleeps) >= 3 {
			break
		}
	}
	if len(sleeps) != 3 {
		t.Fatalf("descendants %v, sleeps among them %v: want 3 sleeps", below, sleeps)
	}
	for _, p := range below {
		if p == cmd.Process.Pid {
			t.Errorf("the process itself is listed")
		}
	}
}
