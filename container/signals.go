package container

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// TerminatedError is the cause of a context cancelled by a terminating signal.
type TerminatedError struct{ Signal syscall.Signal }

func (e *TerminatedError) Error() string { return "terminated by " + unix.SignalName(e.Signal) }

// TerminatingSignal returns the signal that cancelled ctx, or 0.
func TerminatingSignal(ctx context.Context) syscall.Signal {
	if t, ok := errors.AsType[*TerminatedError](context.Cause(ctx)); ok {
		return t.Signal
	}
	return 0
}

// ForwardSignals forwards every signal slurmrun receives to the running
// process groups, except SIGCHLD (reaping) and SIGURG (the Go runtime's
// preemption signal). SIGTERM, SIGINT and SIGHUP also cancel the returned
// context and start the grace period, after which the groups are killed; a
// second SIGTERM or SIGINT kills them at once. stop undoes it.
func (s *Supervisor) ForwardSignals(parent context.Context, grace time.Duration) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs)
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var kill <-chan time.Time
		terminating := false
		for {
			select {
			case <-quit:
				return
			case <-kill:
				s.log.WithField("grace", grace).Warn("grace period over: killing the remaining processes")
				s.Signal(unix.SIGKILL)
				kill = nil
			case v := <-sigs:
				sig := v.(syscall.Signal)
				switch sig {
				case unix.SIGCHLD, unix.SIGURG:
					// The reaper has its own subscription; SIGURG is the Go
					// runtime's preemption signal.
					continue
				case unix.SIGTTIN, unix.SIGTTOU:
					// Ignored, as tini does, so that a background write or
					// read of the terminal cannot stop slurmrun.
					continue
				case unix.SIGWINCH:
					if t := s.opts.Terminal; t != nil {
						t.Resize()
						continue
					}
				}
				s.Signal(sig)
				s.log.WithField("signal", unix.SignalName(sig)).Info("forwarded signal")
				if sig != unix.SIGTERM && sig != unix.SIGINT && sig != unix.SIGHUP {
					continue
				}
				if !terminating {
					terminating = true
					cancel(&TerminatedError{Signal: sig})
					s.deadline.Store(time.Now().Add(grace))
					kill = time.After(grace)
				} else if sig != unix.SIGHUP {
					s.log.Warn("second termination signal: killing the remaining processes now")
					s.Signal(unix.SIGKILL)
					s.deadline.Store(time.Now())
					kill = nil
				}
			}
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(quit)
		<-finished
		cancel(nil)
	}
}

// SweepGrace is how long the processes left behind get between SIGTERM and
// SIGKILL: the full grace normally, but after a terminating signal only what
// is left of its grace period, so everything ends before Slurm's SIGKILL.
func (s *Supervisor) SweepGrace(grace time.Duration) time.Duration {
	if d := s.deadline.Load(); !d.IsZero() {
		return max(time.Until(d), 0)
	}
	return grace
}
