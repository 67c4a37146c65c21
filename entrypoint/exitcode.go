package entrypoint

// ExitCodes are the codes a rank collects, as slurm_run.sh keeps them.
// A nil code means the command did not run.
type ExitCodes struct {
	// Setup is the code of the first failing step before pytest, or 0.
	Setup int `json:"setup"`
	// Pytest is pytestCommand's code (128+N when killed by signal N).
	Pytest *int `json:"pytest"`
	// PerfCheck is the perf check's code, with a failed report folded in.
	PerfCheck *int `json:"perf_check"`
	// PerfReport is the perf report's own code.
	PerfReport *int `json:"perf_report"`
}

// Final is the rank's exit code: a failed setup step, else pytest's code if
// it is non-zero, else the perf check's if it is non-zero, else 0.
func (c ExitCodes) Final() int {
	switch {
	case c.Setup != 0:
		return c.Setup
	case c.Pytest != nil && *c.Pytest != 0:
		return *c.Pytest
	case c.PerfCheck != nil && *c.PerfCheck != 0:
		return *c.PerfCheck
	}
	return 0
}

// foldReport counts a failed report as a failed check when the check itself
// passed, as slurm_run.sh does.
func foldReport(check, report int) int {
	if check == 0 && report != 0 {
		return report
	}
	return check
}

func intp(v int) *int { return &v }
