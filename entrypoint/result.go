package entrypoint

import (
	"errors"
	"time"

	"github.com/slurmrun/slurmrun/config"
	"github.com/slurmrun/slurmrun/result"
)

func newResult(cfg *config.Run, host string) *result.Rank {
	return &result.Rank{
		Rank: int(cfg.Rank), LocalRank: int(cfg.LocalRank), Node: int(cfg.NodeID), Host: host,
		JobID: cfg.JobID, StepID: cfg.StepID, Role: cfg.Role.Name(), Stage: cfg.StageName,
		Started: time.Now().UTC(),
	}
}

// begin records that step name starts now.
func begin(r *result.Rank, name string) *result.Step {
	rec := &result.Step{Name: name, Start: time.Now().UTC()}
	r.Steps = append(r.Steps, rec)
	return rec
}

func skip(s *result.Step, outcome, why string) {
	s.Outcome, s.Detail = outcome, why
}

// finish records how the step ended; cancelled says that the job's
// cancellation ended it.
func finish(s *result.Step, err error, cancelled bool) {
	s.DurationMS = float64(time.Since(s.Start).Microseconds()) / 1000
	if ig, ok := errors.AsType[*IgnoredError](err); ok {
		s.Outcome, s.Detail, s.ExitCode = result.OK, ig.Error(), intp(ig.Code)
		return
	}
	switch {
	case err == nil:
		s.Outcome = result.OK
		return
	case cancelled:
		s.Outcome = result.Cancelled
	case errors.Is(err, errTimeout):
		s.Outcome = result.TimedOut
	default:
		s.Outcome = result.Failed
	}
	s.Detail, s.ExitCode = err.Error(), intp(codeOf(err))
}
