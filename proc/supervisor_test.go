package proc

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/slurmrun/slurmrun/container"

	"github.com/slurmrun/slurmrun/internal/must"
)

// Commands take the inherited signal state through this binary.
func TestMain(m *testing.M) {
	container.DispatchSigExec()
	os.Exit(m.Run())
}

func newSupervisor(t *testing.T) *Supervisor {
	t.Helper()
	log := logrus.New()
	log.SetOutput(io.Discard)
	return New(logrus.NewEntry(log), container.Inherited())
}

func TestExitStatuses(t *testing.T) {
	s := newSupervisor(t)
	dir := t.TempDir()
	notExec := filepath.Join(dir, "not-exec")
	must.Do(t, os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644))
	tests := []struct {
		name string
		argv []string
		want int
	}{
		{"success", []string{"true"}, 0},
		{"failure", []string{"sh", "-c", "exit 3"}, 3},
		{"killed", []string{"sh", "-c", "kill -KILL $$"}, 128 + 9},
		{"terminated", []string{"sh", "-c", "kill -TERM $$"}, 128 + 15},
		{"not found", []string{filepath.Join(dir, "missing")}, 127},
		{"not executable", []string{notExec}, 126},
	}
	for _, tt := range tests {
		cmd := exec.Command(tt.argv[0], tt.argv[1:]...)
		st, _ := s.Run(cmd)
		if st.Code != tt.want {
			t.Errorf("%s: exit code %d, want %d", tt.name, st.Code, tt.want)
		}
	}
}

// Many concurrent commands, each leaving a child behind: with no
// process-wide reaper in the job, os/exec gets every status.
func TestConcurrentStatuses(t *testing.T) {
	s := newSupervisor(t)
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cmd := exec.Command("sh", "-c", "sleep 0.01 & exit "+strconv.Itoa(i))
			st, err := s.Run(cmd)
			if err != nil || st.Code != i {
				t.Errorf("command %d: %v %v", i, st, err)
			}
		}(i)
	}
	wg.Wait()
}

// A library call that runs its own subprocess with os/exec keeps its status:
// what the single-process design lost.
func TestPlainExecBesideSupervisor(t *testing.T) {
	s := newSupervisor(t)
	ctx, stop := s.ForwardSignals(context.Background(), time.Second)
	defer stop()
	for i := 0; i < 20; i++ {
		if err := exec.CommandContext(ctx, "sh", "-c", "exit 0").Run(); err != nil {
			t.Fatalf("plain os/exec: %v", err)
		}
	}
}

func TestRunContextKillsGroupAfterGrace(t *testing.T) {
	s := newSupervisor(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The shell ignores SIGTERM, so only the SIGKILL after the grace period
	// ends it. The cancel comes once it says the trap is set, not after a
	// guess at how long a loaded machine takes to get there.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command("sh", "-c", "trap '' TERM; echo ready; sleep 30 & wait")
	cmd.Stdout = w
	go func() {
		line := make([]byte, 6)
		if _, err := io.ReadFull(r, line); err == nil && string(line) == "ready\n" {
			cancel()
		}
	}()
	start := time.Now()
	st, err := s.RunContext(ctx, cmd, 300*time.Millisecond)
	w.Close()
	if err == nil || st.Signal != unix.SIGKILL {
		t.Fatalf("want a SIGKILL after the grace period, got %v %v", st, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
}

func openFDs(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// Running commands leaves no goroutine and no file descriptor behind.
func TestNoLeaksAcrossRuns(t *testing.T) {
	s := newSupervisor(t)
	run := func() {
		var out strings.Builder
		cmd := exec.Command("sh", "-c", "echo hi; sleep 0.001 &")
		cmd.Stdout = &out // a copying goroutine, which Wait must finish
		if st, err := s.Run(cmd); err != nil || st.Code != 0 || out.String() != "hi\n" {
			t.Fatalf("%v %v %q", st, err, out.String())
		}
	}
	run()
	goroutines, fds := runtime.NumGoroutine(), openFDs(t)
	for i := 0; i < 50; i++ {
		run()
	}
	// A goroutine that is ending is not a leak: wait, bounded, for the
	// count to come back rather than guessing how long ending takes.
	g := runtime.NumGoroutine()
	for deadline := time.Now().Add(5 * time.Second); g > goroutines && time.Now().Before(deadline); g = runtime.NumGoroutine() {
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
	if g > goroutines {
		t.Errorf("goroutines %d -> %d", goroutines, g)
	}
	if f := openFDs(t); f > fds {
		t.Errorf("open files %d -> %d", fds, f)
	}
}

// SIGTERM reaches the running group and cancels the job; a copy within the
// duplicate window does not escalate, a second one after it kills at once.
func TestForwardSignalsSlurmSemantics(t *testing.T) {
	s := newSupervisor(t)
	ctx, stop := s.ForwardSignals(context.Background(), 30*time.Second)
	defer stop()
	// The command ignores SIGTERM: only SIGKILL ends it.
	cmd := exec.Command("sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done")
	out, _ := cmd.StdoutPipe()
	p, err := s.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	io.ReadFull(out, buf)
	exited := make(chan ExitStatus, 1)
	go func() { exited <- p.Wait() }()
	unix.Kill(os.Getpid(), unix.SIGTERM)
	unix.Kill(os.Getpid(), unix.SIGTERM) // Slurm's copy and the init's
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("SIGTERM did not cancel the job")
	}
	if sig := TerminatingSignal(ctx); sig != unix.SIGTERM {
		t.Fatalf("terminating signal %v", sig)
	}
	select {
	case st := <-exited:
		t.Fatalf("a duplicate SIGTERM killed the command: %v", st)
	case <-time.After(1500 * time.Millisecond):
	}
	if r := s.Remaining(30 * time.Second); r > 29*time.Second || r < 25*time.Second {
		t.Errorf("remaining grace %v", r)
	}
	unix.Kill(os.Getpid(), unix.SIGTERM)
	select {
	case st := <-exited:
		if st.Signal != unix.SIGKILL {
			t.Fatalf("status %v, want SIGKILL", st)
		}
	case <-time.After(5 * time.Second):
		p.Signal(unix.SIGKILL)
		t.Fatal("a second SIGTERM did not kill the command")
	}
	if r := s.Remaining(30 * time.Second); r != 0 {
		t.Errorf("remaining grace %v after the kill", r)
	}
}

// A SIGTERM that comes before ForwardSignals is held, not fatal, and
// cancels the job once ForwardSignals runs.
func TestHeldSignalReachesForwardSignals(t *testing.T) {
	held := Hold(container.SignalState{})
	unix.Kill(os.Getpid(), unix.SIGTERM) // the process lives on: the hold has it
	deadline := time.Now().Add(5 * time.Second)
	for len(held.ch) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if len(held.ch) == 0 {
		t.Fatal("the hold did not get the SIGTERM")
	}
	s := newSupervisor(t).Holding(held)
	ctx, stop := s.ForwardSignals(context.Background(), time.Second)
	defer stop()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the held SIGTERM did not cancel the job")
	}
	if sig := TerminatingSignal(ctx); sig != unix.SIGTERM {
		t.Fatalf("terminating signal %v", sig)
	}
}
