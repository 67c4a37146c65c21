package container

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// process is one row of the process table.
type process struct {
	ppid   int
	zombie bool
}

// processTable reads every process's parent and whether it is a zombie.
func processTable() map[int]process {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	table := make(map[int]process, len(entries))
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := Stat(p)
		if err != nil {
			continue
		}
		table[p] = process{ppid: st.PPid, zombie: st.State == "Z"}
	}
	return table
}

// ProcStat is what /proc/PID/stat says of a process that slurmrun uses.
type ProcStat struct {
	State     string // R, S, T, Z, ...
	PPid      int
	StartTime string // clock ticks after boot: with the pid, names the process
}

// Stat reads /proc/PID/stat.
func Stat(pid int) (ProcStat, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ProcStat{}, err
	}
	// pid (comm) state ppid ... starttime (field 22): comm may hold spaces
	// and parentheses.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return ProcStat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 20 {
		return ProcStat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		return ProcStat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return ProcStat{State: fields[0], PPid: ppid, StartTime: fields[19]}, nil
}

// Descendants returns the live (non-zombie) processes below pid: children,
// their children, and so on. Orphans that reparented to a subreaper are its
// children like any other, and setsid does not take a process out of the
// tree, so both are found.
func Descendants(pid int) []int { return descendants(pid, false) }

// descendants lists what is below pid, zombies too when withZombies is set.
func descendants(pid int, withZombies bool) []int {
	table := processTable()
	children := make(map[int][]int)
	for p, info := range table {
		children[info.ppid] = append(children[info.ppid], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			queue = append(queue, c)
			if withZombies || !table[c].zombie {
				out = append(out, c)
			}
		}
	}
	return out
}

// sweep ends every process still below slurmrun: SIGTERM (and SIGCONT, so a
// stopped one can act on it), then SIGKILL to those left after grace. It
// returns once none is left or after another second past the SIGKILL,
// calling reap as it polls so that none is left a zombie either.
func sweep(log *logrus.Entry, grace time.Duration, reap func()) (terminated, killed int) {
	reap()
	self := os.Getpid()
	left := Descendants(self)
	if len(left) == 0 {
		return 0, 0
	}
	terminated = len(left)
	log.WithField("processes", terminated).Info("sending SIGTERM to the processes left behind")
	for _, p := range left {
		signalProcess(p, unix.SIGTERM)
		signalProcess(p, unix.SIGCONT)
	}
	if waitGone(self, grace, reap) {
		return terminated, 0
	}
	left = Descendants(self)
	killed = len(left)
	log.WithField("processes", killed).Warn("grace period over: SIGKILL to the processes left behind")
	for _, p := range left {
		signalProcess(p, unix.SIGKILL)
	}
	waitGone(self, time.Second, reap)
	return terminated, killed
}

// signalProcess signals pid; one that is already gone needs nothing.
func signalProcess(pid int, sig unix.Signal) { _ = unix.Kill(pid, sig) }

// waitGone polls until nothing is below pid, not even a zombie, or limit
// passes.
func waitGone(pid int, limit time.Duration, reap func()) bool {
	deadline := time.Now().Add(limit)
	pause := 5 * time.Millisecond
	for {
		reap()
		if len(descendants(pid, true)) == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(min(pause, time.Until(deadline)+time.Millisecond))
		pause = min(2*pause, 100*time.Millisecond)
	}
}
