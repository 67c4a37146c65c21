package container

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/slurmrun/slurmrun/internal/must"
)

func testOptions() Options {
	log := logrus.New()
	log.SetOutput(io.Discard)
	return Options{Log: logrus.NewEntry(log), SweepGrace: 2 * time.Second, Signals: Inherited()}
}

func TestRunExitCodes(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	must.Do(t, os.WriteFile(plain, []byte("#!/bin/sh\n"), 0o644))
	tests := []struct {
		name string
		argv []string
		want int
	}{
		{"success", []string{"true"}, 0},
		{"failure", []string{"sh", "-c", "exit 3"}, 3},
		{"terminated", []string{"sh", "-c", "kill -TERM $$"}, 143},
		{"killed", []string{"sh", "-c", "kill -KILL $$"}, 137},
		{"not found", []string{filepath.Join(dir, "missing")}, 127},
		{"not executable", []string{plain}, 126},
	}
	for _, tt := range tests {
		st, _ := Run(exec.Command(tt.argv[0], tt.argv[1:]...), testOptions())
		if st.Code != tt.want {
			t.Errorf("%s: exit code %d, want %d", tt.name, st.Code, tt.want)
		}
	}
}

// What the child leaves behind, a setsid escapee and one that ignores
// SIGTERM among them, is ended and reaped before Run returns.
func TestRunSweepsAndReaps(t *testing.T) {
	pids := filepath.Join(t.TempDir(), "pids")
	cmd := exec.Command("sh", "-c", "setsid sleep 60 & echo $! > "+pids+
		"; (trap '' TERM; exec sleep 61) & echo $! >> "+pids+"; sleep 0.1; exit 5")
	o := testOptions()
	o.SweepGrace = 300 * time.Millisecond
	st, err := Run(cmd, o)
	if err != nil || st.Code != 5 {
		t.Fatalf("%v %v", st, err)
	}
	data := must.Read(t, pids)
	for _, f := range strings.Fields(string(data)) {
		pid, _ := strconv.Atoi(f)
		if _, err := os.Stat("/proc/" + f); err == nil {
			exec.Command("kill", "-9", f).Run()
			t.Errorf("process %d outlived the init, or is an unreaped zombie", pid)
		}
	}
}
