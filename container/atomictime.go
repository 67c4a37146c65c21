package container

import (
	"sync/atomic"
	"time"
)

// atomicTime is a time shared between the signal loop and the code that
// sweeps up after the main command.
type atomicTime struct{ ns atomic.Int64 }

func (a *atomicTime) Store(t time.Time) { a.ns.Store(t.UnixNano()) }

// Load returns the stored time, or the zero time.
func (a *atomicTime) Load() time.Time {
	if ns := a.ns.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}
