package result

import (
	"fmt"
	"path/filepath"
	"time"
)

// Launch is what `slurmrun launch` leaves in the job workspace: the job's
// exit code and one row per srun step it ran.
type Launch struct {
	JobID    string       `json:"job_id"`
	ExitCode int          `json:"exit_code"`
	Steps    []LaunchStep `json:"steps"`
}

// LaunchStep is one srun step of a launch: a role, or the install.
type LaunchStep struct {
	Role      string   `json:"role"`
	StepID    string   `json:"step_id"`
	Nodes     []string `json:"nodes"`
	Ranks     int      `json:"ranks"`
	ExitCode  *int     `json:"exit_code"`
	RankCodes []int    `json:"rank_exit_codes"`
	// Started is when launch started the srun, on the batch node's clock.
	Started    time.Time `json:"started"`
	DurationMS int64     `json:"duration_ms"`
	StoppedBy  string    `json:"stopped_by,omitempty"`
	Log        string    `json:"log"`
}

// LaunchFile is where a job's launch summary is.
func LaunchFile(workspace, job string) string {
	return filepath.Join(Dir(workspace), fmt.Sprintf("launch.job%s.json", job))
}

// Write writes the summary into the workspace and returns its path.
func (l *Launch) Write(workspace string) (string, error) {
	path := LaunchFile(workspace, l.JobID)
	return path, writeJSON(path, "launch summary", l)
}

// ReadLaunch reads a launch summary.
func ReadLaunch(path string) (*Launch, error) { return readJSON[Launch](path, "launch summary") }

// LaunchFiles lists a workspace's launch summaries.
func LaunchFiles(workspace string) ([]string, error) {
	return filepath.Glob(filepath.Join(Dir(workspace), "launch.job*.json"))
}
