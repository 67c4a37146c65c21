package proc

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

// terminating are the signals Slurm and a terminal end a job with.
var terminating = []syscall.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGHUP}

// ForwardSignals gives the job Slurm's semantics. SIGTERM, SIGINT and SIGHUP
// cancel the returned context, are forwarded to every running group and
// start the grace period, after which the groups get SIGKILL; a second
// SIGTERM or SIGINT, a second or more after the first, kills them at once. Other signals are forwarded as they
// come. A terminating signal the process was started with ignored (nohup,
// `cmd &`) stays ignored, as it does for the commands. The stop signals keep
// their default action, so the job stops as a whole. stop undoes it.
func (s *Supervisor) ForwardSignals(parent context.Context, grace time.Duration) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs)
	signal.Reset(unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU)
	for _, sig := range terminating {
		if s.signals.Ignores(sig) {
			signal.Ignore(sig)
		}
	}
	s.held.handTo(sigs)
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var kill <-chan time.Time
		var firstAt time.Time
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
				if sig == unix.SIGCHLD || sig == unix.SIGURG {
					// os/exec waits for its own children; SIGURG is the Go
					// runtime's preemption signal.
					continue
				}
				s.Signal(sig)
				s.log.WithField("signal", unix.SignalName(sig)).Info("forwarded signal")
				if sig != unix.SIGTERM && sig != unix.SIGINT && sig != unix.SIGHUP {
					continue
				}
				now := time.Now()
				switch {
				case firstAt.IsZero():
					firstAt = now
					s.setDeadline(now.Add(grace))
					cancel(&TerminatedError{Signal: sig})
					kill = time.After(grace)
				case sig == unix.SIGHUP || now.Sub(firstAt) < duplicateWindow:
					// Slurm signals every process of the step at once, and
					// the init forwards its own copy: not a second request.
				default:
					s.log.Warn("second termination signal: killing the remaining processes now")
					s.setDeadline(now)
					s.Signal(unix.SIGKILL)
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

// duplicateWindow is how soon after the first a terminating signal is taken
// for a copy of it rather than a second request.
const duplicateWindow = time.Second

func (s *Supervisor) setDeadline(t time.Time) {
	s.mu.Lock()
	s.deadline = t
	s.mu.Unlock()
}

// Remaining is how long stopping commands may still take: grace normally,
// but after a terminating signal only what is left of its grace period, so
// everything ends before Slurm's SIGKILL.
func (s *Supervisor) Remaining(grace time.Duration) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.deadline.IsZero() {
		return max(time.Until(s.deadline), 0)
	}
	return grace
}
