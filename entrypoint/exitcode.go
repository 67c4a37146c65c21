package entrypoint

// foldReport counts a failed report as a failed check when the check itself
// passed, as slurm_run.sh does.
func foldReport(check, report int) int {
	if check == 0 && report != 0 {
		return report
	}
	return check
}

func intp(v int) *int { return &v }
