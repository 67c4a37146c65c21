package container

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
)

func newSupervisor(t *testing.T) *Supervisor {
	t.Helper()
	log := logrus.New()
	log.SetOutput(io.Discard)
	s := NewSupervisor(logrus.NewEntry(log), Options{})
	t.Cleanup(s.Close)
	return s
}

func TestExitStatuses(t *testing.T) {
	s := newSupervisor(t)
	dir := t.TempDir()
	notExec := filepath.Join(dir, "not-exec")
	os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644)
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

// Many short commands alongside orphans that the reaper collects: no
// command's status may be lost to the reaper.
func TestStatusNeverLostToReaper(t *testing.T) {
	s := newSupervisor(t)
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// The shell leaves an orphan behind and exits with i.
			cmd := exec.Command("sh", "-c", "sleep 0.01 & exit "+strconv.Itoa(i))
			st, err := s.Run(cmd)
			if err != nil || st.Code != i {
				t.Errorf("command %d: %v %v", i, st, err)
			}
		}(i)
	}
	wg.Wait()
}

func zombiesOf(pid int) []int {
	var out []int
	for p, info := range processTable() {
		if info.zombie && info.ppid == pid {
			out = append(out, p)
		}
	}
	return out
}

func TestOrphansAreReaped(t *testing.T) {
	s := newSupervisor(t)
	// Grandchildren outlive their parent and reparent to us (subreaper).
	st, err := s.Run(exec.Command("sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do (sleep 0.05 &) ; done"))
	if err != nil || st.Code != 0 {
		t.Fatal(st, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		if z := zombiesOf(os.Getpid()); len(z) == 0 {
			return
		}
	}
	t.Fatalf("zombies left: %v", zombiesOf(os.Getpid()))
}

func TestRunContextKillsGroupAfterGrace(t *testing.T) {
	s := newSupervisor(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	// The shell ignores SIGTERM, so only the SIGKILL after the grace period ends it.
	st, err := s.RunContext(ctx, exec.Command("sh", "-c", "trap '' TERM; sleep 30 & wait"), 300*time.Millisecond)
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
	time.Sleep(50 * time.Millisecond)
	goroutines, fds := runtime.NumGoroutine(), openFDs(t)
	for i := 0; i < 50; i++ {
		run()
	}
	time.Sleep(100 * time.Millisecond)
	if g := runtime.NumGoroutine(); g > goroutines {
		t.Errorf("goroutines %d -> %d", goroutines, g)
	}
	if f := openFDs(t); f > fds {
		t.Errorf("open files %d -> %d", fds, f)
	}
}
