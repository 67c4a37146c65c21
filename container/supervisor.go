// Package container is slurmrun's process supervision: it reaps every child
// (as PID 1, or as a child subreaper when slurmrun is not PID 1), starts each
// command in its own process group, hands each command's exit status to the
// code that started it, and forwards signals to the running groups.
package container

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// Supervisor owns reaping for the whole process. Only one should exist per
// process: wait4(-1) takes every child, so a second reaper would steal the
// statuses of the first one's commands.
type Supervisor struct {
	log  *logrus.Entry
	opts Options

	// mu is held around each fork and around each reaping sweep. A command
	// that exits at once is therefore never reaped before its pid is in
	// waiters, and its status cannot be lost (the race that a global reaper
	// has with os/exec's Wait).
	mu      sync.Mutex
	waiters map[int]chan unix.WaitStatus
	groups  map[int]struct{}

	chld chan os.Signal
	stop chan struct{}
	done chan struct{}

	// deadline is when the grace period after a terminating signal ends.
	deadline atomicTime
}

// Options change how the Supervisor treats the commands it starts.
type Options struct {
	// SignalPidOnly forwards signals to each command's pid, as tini does
	// without -g, instead of to its whole process group.
	SignalPidOnly bool
	// WarnOnReap logs every orphan the reaper collects at warning level
	// (tini's -w).
	WarnOnReap bool
	// Terminal, when set, runs commands whose standard input is that
	// terminal on a pseudo-terminal of their own.
	Terminal *Terminal
}

// ExitStatus is how a supervised command ended.
type ExitStatus struct {
	// Code is the exit status, or 128+N when the command was killed by signal N.
	Code int
	// Signal is the signal that killed the command, or 0.
	Signal syscall.Signal
}

func (e ExitStatus) String() string {
	if e.Signal != 0 {
		return fmt.Sprintf("exit code %d (killed by %s)", e.Code, unix.SignalName(e.Signal))
	}
	return fmt.Sprintf("exit code %d", e.Code)
}

// NewSupervisor starts reaping. When slurmrun is not PID 1 it first becomes a
// child subreaper, so that orphans of its commands reparent to it rather than
// to the host's init (under pyxis there is no PID namespace).
func NewSupervisor(log *logrus.Entry, opts Options) *Supervisor {
	s := &Supervisor{
		log:     log,
		opts:    opts,
		waiters: make(map[int]chan unix.WaitStatus),
		groups:  make(map[int]struct{}),
		chld:    make(chan os.Signal, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	if os.Getpid() != 1 {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			log.WithError(err).Warn("cannot become a child subreaper: orphans of commands will not be reaped by slurmrun")
		}
	}
	// SIGCHLD is registered before any command starts so no exit goes unnoticed.
	signal.Notify(s.chld, unix.SIGCHLD)
	go s.reapLoop()
	return s
}

// Close stops reaping. Commands still running are not touched.
func (s *Supervisor) Close() {
	signal.Stop(s.chld)
	close(s.stop)
	<-s.done
}

func (s *Supervisor) reapLoop() {
	defer close(s.done)
	for {
		select {
		case <-s.stop:
			return
		case <-s.chld:
			s.reap()
		}
	}
}

// reap collects every child that has exited. SIGCHLDs coalesce, so one
// signal may stand for many exits: sweep until nothing is left.
func (s *Supervisor) reap() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		if ch, ok := s.waiters[pid]; ok {
			delete(s.waiters, pid)
			delete(s.groups, pid)
			ch <- ws
			continue
		}
		entry := s.log.WithFields(logrus.Fields{"pid": pid, "status": statusOf(ws).String()})
		if s.opts.WarnOnReap {
			entry.Warnf("Reaped zombie process with pid=%d", pid)
		} else {
			entry.Debug("reaped orphan")
		}
	}
}

// Process is a command started by the Supervisor.
type Process struct {
	cmd    *exec.Cmd
	status chan unix.WaitStatus
	pty    *ptySession // nil unless the command runs on a pseudo-terminal
}

// Pid is the process id, which is also its process group id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Start starts cmd in a process group of its own and registers it for
// reaping. Its exit status must be collected with Process.Wait, never with
// cmd.Wait.
func (s *Supervisor) Start(cmd *exec.Cmd) (*Process, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	p := &Process{cmd: cmd, status: make(chan unix.WaitStatus, 1)}
	if t := s.opts.Terminal; t != nil && t.owns(cmd) {
		pty, err := t.attach(cmd)
		if err != nil {
			return nil, err
		}
		p.pty = pty
	} else {
		cmd.SysProcAttr.Setpgid = true
	}
	restoreSignals(cmd)
	s.mu.Lock()
	defer s.mu.Unlock()
	err := cmd.Start()
	if p.pty != nil {
		p.pty.started(err)
	}
	if err != nil {
		return nil, err
	}
	s.waiters[cmd.Process.Pid] = p.status
	s.groups[cmd.Process.Pid] = struct{}{}
	releaseStartupPages()
	return p, nil
}

// Wait blocks until the process has exited and its output has been copied.
func (p *Process) Wait() ExitStatus {
	ws := <-p.status
	if p.pty != nil {
		p.pty.finish()
	}
	// The reaper already took the status, so cmd.Wait reports ECHILD; it is
	// still needed to finish copying output when Stdout or Stderr are not files.
	_ = p.cmd.Wait()
	// That failed Wait leaves the process's pidfd open.
	_ = p.cmd.Process.Release()
	return statusOf(ws)
}

// Run starts cmd and waits for it.
func (s *Supervisor) Run(cmd *exec.Cmd) (ExitStatus, error) {
	p, err := s.Start(cmd)
	if err != nil {
		return ExitStatus{Code: StartFailureCode(err)}, err
	}
	return p.Wait(), nil
}

// Signal sends sig to every running process group.
func (s *Supervisor) Signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for pid := range s.groups {
		target := -pid
		if s.opts.SignalPidOnly {
			target = pid
		}
		if err := unix.Kill(target, sig); err != nil && !errors.Is(err, unix.ESRCH) {
			s.log.WithError(err).WithField("pid", target).Warn("cannot forward signal")
		}
	}
}

// StartFailureCode is the shell's exit code for a command that could not be
// started: 127 when it does not exist, 126 when it cannot be executed.
func StartFailureCode(err error) int {
	switch {
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, os.ErrNotExist):
		return 127
	case errors.Is(err, os.ErrPermission), errors.Is(err, unix.ENOEXEC), errors.Is(err, unix.EISDIR):
		return 126
	default:
		return 126
	}
}

func statusOf(ws unix.WaitStatus) ExitStatus {
	if ws.Signaled() {
		return ExitStatus{Code: 128 + int(ws.Signal()), Signal: ws.Signal()}
	}
	return ExitStatus{Code: ws.ExitStatus()}
}

// Signal sends sig to the process's group.
func (p *Process) Signal(sig syscall.Signal) error {
	if err := unix.Kill(-p.Pid(), sig); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("signal process group %d: %w", p.Pid(), err)
	}
	return nil
}

// RunContext runs cmd like Run; when ctx ends first, the command's group gets
// SIGTERM and, grace later, SIGKILL. The status is still the command's own.
func (s *Supervisor) RunContext(ctx context.Context, cmd *exec.Cmd, grace time.Duration) (ExitStatus, error) {
	p, err := s.Start(cmd)
	if err != nil {
		return ExitStatus{Code: StartFailureCode(err)}, err
	}
	exited := make(chan ExitStatus, 1)
	go func() { exited <- p.Wait() }()
	select {
	case st := <-exited:
		return st, nil
	case <-ctx.Done():
	}
	_ = p.Signal(unix.SIGTERM)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case st := <-exited:
		return st, context.Cause(ctx)
	case <-timer.C:
	}
	_ = p.Signal(unix.SIGKILL)
	return <-exited, context.Cause(ctx)
}

// Output runs cmd like RunContext and returns what it wrote to stdout. Every
// command slurmrun runs while it reaps must go through the Supervisor:
// os/exec's own Wait would find the status already taken.
func (s *Supervisor) Output(ctx context.Context, cmd *exec.Cmd, grace time.Duration) ([]byte, error) {
	var out bytes.Buffer
	cmd.Stdout = &out
	st, err := s.RunContext(ctx, cmd, grace)
	if err == nil && st.Code != 0 {
		err = fmt.Errorf("%s: %s", cmd.Args[0], st)
	}
	return out.Bytes(), err
}
