// Package proc runs the job's commands: pytest through the interpreter, the
// perf scripts, the install's downloads and pip, git, srun, scontrol. Each
// command runs in a process group of its own with plain os/exec, so signals
// reach everything it started, and a cancelled command gets SIGTERM, then
// SIGKILL after a grace period. proc reaps nothing but its own children: the
// init (package container) is a separate process and owns reaping, so any
// library or subprocess call in the job is safe.
package proc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/slurmrun/slurmrun/container"
)

// Supervisor starts the job's commands and signals their process groups.
type Supervisor struct {
	log     *logrus.Entry
	signals container.SignalState // what each command starts with
	held    *Held                 // signals caught before ForwardSignals

	mu     sync.Mutex
	groups map[int]struct{}

	// deadline is when the grace period after a terminating signal ends;
	// guarded by mu.
	deadline time.Time
}

// New returns a Supervisor whose commands start with the signal state
// signals (the one the init was started with).
func New(log *logrus.Entry, signals container.SignalState) *Supervisor {
	return &Supervisor{log: log, signals: signals, groups: make(map[int]struct{})}
}

// ExitStatus is how a command ended.
type ExitStatus = container.ExitStatus

// Process is a command started by the Supervisor.
type Process struct {
	s   *Supervisor
	cmd *exec.Cmd
}

// Pid is the process id, which is also its process group id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Start starts cmd in a process group of its own.
func (s *Supervisor) Start(cmd *exec.Cmd) (*Process, error) {
	if cmd.Err != nil {
		return nil, cmd.Err
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if err := s.signals.Apply(cmd); err != nil {
		return nil, err
	}
	// Registered under the lock with the start, so a signal forwarded in
	// between cannot miss the new group.
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s.groups[cmd.Process.Pid] = struct{}{}
	return &Process{s: s, cmd: cmd}, nil
}

// Wait waits for the process and for its output to be copied.
func (p *Process) Wait() ExitStatus {
	err := p.cmd.Wait()
	p.s.mu.Lock()
	delete(p.s.groups, p.Pid())
	p.s.mu.Unlock()
	if p.cmd.ProcessState == nil {
		p.s.log.WithError(err).Error("lost the exit status of a command")
		return ExitStatus{Code: 1}
	}
	ws, _ := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return container.StatusOf(ws)
}

// Signal sends sig to the process's group.
func (p *Process) Signal(sig syscall.Signal) error {
	if err := unix.Kill(-p.Pid(), sig); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("signal process group %d: %w", p.Pid(), err)
	}
	return nil
}

// Run starts cmd and waits for it.
func (s *Supervisor) Run(cmd *exec.Cmd) (ExitStatus, error) {
	p, err := s.Start(cmd)
	if err != nil {
		return ExitStatus{Code: container.StartFailureCode(err)}, err
	}
	return p.Wait(), nil
}

// Signal sends sig to every running process group.
func (s *Supervisor) Signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for pid := range s.groups {
		if err := unix.Kill(-pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
			s.log.WithError(err).WithField("pgid", pid).Warn("cannot forward signal")
		}
	}
}

// RunContext runs cmd like Run; when ctx ends first, the command's group gets
// SIGTERM and, grace later, SIGKILL. The status is still the command's own.
func (s *Supervisor) RunContext(ctx context.Context, cmd *exec.Cmd, grace time.Duration) (ExitStatus, error) {
	p, err := s.Start(cmd)
	if err != nil {
		return ExitStatus{Code: container.StartFailureCode(err)}, err
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

// Output runs cmd like RunContext and returns what it wrote to stdout.
func (s *Supervisor) Output(ctx context.Context, cmd *exec.Cmd, grace time.Duration) ([]byte, error) {
	var out bytes.Buffer
	cmd.Stdout = &out
	st, err := s.RunContext(ctx, cmd, grace)
	if err == nil && st.Code != 0 {
		err = fmt.Errorf("%s: %s", cmd.Args[0], st)
	}
	return out.Bytes(), err
}
