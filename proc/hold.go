package proc

import (
	"os"
	"os/signal"

	"github.com/slurmrun/slurmrun/container"
)

// Held keeps the terminating signals that arrive before a Supervisor
// forwards them. Slurm signals every process of a step at once and the
// init forwards its own copy: without a hold, a SIGTERM in the job's first
// milliseconds (reading its configuration, opening its log) would end it
// with the default action, before it printed its Rank lines or wrote its
// record.
type Held struct{ ch chan os.Signal }

// Hold starts holding SIGTERM, SIGINT and SIGHUP, except those the process
// was started with ignored (they stay ignored).
func Hold(signals container.SignalState) *Held {
	h := &Held{ch: make(chan os.Signal, len(terminating))}
	for _, sig := range terminating {
		if !signals.Ignores(sig) {
			signal.Notify(h.ch, sig)
		}
	}
	return h
}

// Holding makes ForwardSignals take over the signals h holds.
func (s *Supervisor) Holding(h *Held) *Supervisor {
	s.held = h
	return s
}

// handTo stops holding and passes what was held to sigs, whose handler is
// in place. A signal that came in between reaches both: ForwardSignals
// counts a repeat within a second as the same request.
func (h *Held) handTo(sigs chan<- os.Signal) {
	if h == nil {
		return
	}
	signal.Stop(h.ch)
	for {
		select {
		case sig := <-h.ch:
			sigs <- sig
		default:
			return
		}
	}
}
