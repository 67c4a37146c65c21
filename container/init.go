// Package container is slurmrun's init: the small process that starts one
// child and, until it exits, reaps every zombie (as PID 1) or orphan (as a
// child subreaper: pyxis and enroot have no PID namespace), forwards every
// signal, mirrors the child's stops, hands it the terminal, and when it has
// exited ends whatever it left behind. The job itself (the flow, the
// launcher) runs as that child, so nothing here knows about it.
package container

import (
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// Options say how the init treats its child.
type Options struct {
	Log *logrus.Entry
	// Group forwards signals to the child's process group instead of the
	// child alone (tini's -g). The stop and continue signals always go to
	// the group, as a terminal sends them.
	Group bool
	// WarnOnReap logs every orphan reaped at warning level (tini's -w).
	WarnOnReap bool
	// KillAfter, when positive, kills the child's group that long after a
	// forwarded SIGTERM or SIGINT. Off by default: an init that kills on
	// its own initiative is not transparent.
	KillAfter time.Duration
	// SweepGrace is how long what the child leaves behind gets between
	// SIGTERM and SIGKILL; after a terminating signal, only what is left of
	// it counted from that signal.
	SweepGrace time.Duration
	// Signals is the signal state the child starts with (Inherited, as a
	// rule).
	Signals SignalState
}

// Run starts cmd as the init's only child and returns how it ended. cmd's
// standard streams must be files (or nil): the init copies nothing.
func Run(cmd *exec.Cmd, o Options) (ExitStatus, error) {
	in := &initProcess{o: o}
	if os.Getpid() != 1 {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			o.Log.WithError(err).Warn("cannot become a child subreaper: orphans will not be reaped by slurmrun")
		}
	}
	// SIGCHLD has a channel of its own: one pending is enough, as each one
	// starts a sweep of every exited child.
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, unix.SIGCHLD)
	defer signal.Stop(chld)
	sigs := make(chan os.Signal, 128)
	signal.Notify(sigs)
	defer signal.Stop(sigs)

	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if in.tty = foregroundTerminal(cmd.Stdin); in.tty != nil {
		cmd.SysProcAttr.Foreground = true
		cmd.SysProcAttr.Ctty = int(in.tty.f.Fd())
	}
	if err := o.Signals.Apply(cmd); err != nil {
		return ExitStatus{Code: 126}, err
	}
	if err := cmd.Start(); err != nil {
		return ExitStatus{Code: StartFailureCode(err)}, err
	}
	in.child = cmd.Process.Pid
	status := in.loop(chld, sigs)
	// The status is taken; Wait only releases what os/exec holds.
	_ = cmd.Wait()
	_ = cmd.Process.Release()
	if in.tty != nil {
		in.tty.reclaim(in.child)
	}
	grace := o.SweepGrace
	if !in.signalled.IsZero() {
		grace = max(time.Until(in.signalled.Add(o.SweepGrace)), 0)
	}
	sweep(o.Log, grace, func() { in.reap() })
	return status, nil
}

type initProcess struct {
	o         Options
	child     int
	tty       *terminal
	exited    *ExitStatus
	signalled time.Time // the first terminating signal forwarded
}

// loop reaps and forwards until the child has exited.
func (in *initProcess) loop(chld, sigs <-chan os.Signal) ExitStatus {
	var kill <-chan time.Time
	for in.exited == nil {
		select {
		case <-chld:
			in.reap()
		case <-kill:
			in.o.Log.WithField("after", in.o.KillAfter).Warn("killing the child's process group")
			in.send(-in.child, unix.SIGKILL)
			kill = nil
		case v := <-sigs:
			sig := v.(syscall.Signal)
			if in.forward(sig) && in.o.KillAfter > 0 && kill == nil {
				kill = time.After(in.o.KillAfter)
			}
		}
	}
	return *in.exited
}

// forward passes sig on and reports whether it was SIGTERM or SIGINT.
func (in *initProcess) forward(sig syscall.Signal) (terminating bool) {
	switch sig {
	case unix.SIGCHLD:
		return false
	case unix.SIGURG:
		// The Go runtime preempts goroutines with SIGURG and lets it
		// through to os/signal: it is not the child's.
		return false
	case unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU:
		// Like a terminal, to the whole group; slurmrun stops itself when
		// the child has stopped (reap).
		in.send(-in.child, sig)
		return false
	case unix.SIGCONT:
		// `fg` continues slurmrun's group: the terminal, if slurmrun now
		// has it, goes back to the child, and the child continues too.
		if in.tty != nil && in.tty.foreground() == unix.Getpgrp() {
			if err := in.tty.give(in.child); err != nil {
				in.o.Log.WithError(err).Warn("cannot give the terminal back to the child")
			}
		}
		in.send(-in.child, sig)
		return false
	}
	target := in.child
	if in.o.Group {
		target = -in.child
	}
	in.send(target, sig)
	if in.o.Log.Logger.IsLevelEnabled(logrus.DebugLevel) {
		in.o.Log.WithField("signal", unix.SignalName(sig)).Debug("forwarded signal")
	}
	if sig == unix.SIGTERM || sig == unix.SIGINT || sig == unix.SIGHUP {
		if in.signalled.IsZero() {
			in.signalled = time.Now()
		}
	}
	return sig == unix.SIGTERM || sig == unix.SIGINT
}

func (in *initProcess) send(target int, sig syscall.Signal) {
	if err := unix.Kill(target, sig); err != nil && !errors.Is(err, unix.ESRCH) {
		in.o.Log.WithError(err).WithField("pid", target).Warn("cannot forward signal")
	}
}

// reap collects every child that has exited. SIGCHLDs coalesce, so one
// signal may stand for many exits: sweep until nothing is left. A stop of
// the main child is mirrored: slurmrun stops too, so that the shell or
// pyxis waiting for it sees the stop, and continues both on SIGCONT.
func (in *initProcess) reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG|unix.WUNTRACED, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		switch {
		case pid == in.child && ws.Stopped():
			in.stopSelf(ws.StopSignal())
		case pid == in.child:
			st := StatusOf(syscall.WaitStatus(ws))
			in.exited = &st
		case ws.Stopped():
			// An orphan that stopped is still there: not reaped.
		case in.o.WarnOnReap:
			in.orphanEntry(pid, ws).Warnf("Reaped zombie process with pid=%d", pid)
		case in.o.Log.Logger.IsLevelEnabled(logrus.DebugLevel):
			// Not built otherwise: the reap loop is the init's hot path.
			in.orphanEntry(pid, ws).Debug("reaped orphan")
		}
	}
}

func (in *initProcess) orphanEntry(pid int, ws unix.WaitStatus) *logrus.Entry {
	return in.o.Log.WithFields(logrus.Fields{"pid": pid, "status": StatusOf(syscall.WaitStatus(ws)).String()})
}

func (in *initProcess) stopSelf(by syscall.Signal) {
	if os.Getpid() == 1 {
		// A namespace's init cannot be stopped from inside it, and there
		// is no job-control shell above it to see the stop.
		in.o.Log.WithField("signal", unix.SignalName(by)).Info("the child stopped")
		return
	}
	in.o.Log.WithField("signal", unix.SignalName(by)).Debug("the child stopped: stopping too")
	_ = unix.Kill(os.Getpid(), unix.SIGSTOP)
}
