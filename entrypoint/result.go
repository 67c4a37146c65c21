package entrypoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/slurmrun/slurmrun/internal/redact"
)

// Result is what a rank leaves in the job workspace: who it was, each step's
// timing and outcome, and every exit code.
type Result struct {
	Rank       int           `json:"rank"`
	LocalRank  int           `json:"local_rank"`
	Node       int           `json:"node_id"`
	Host       string        `json:"host"`
	JobID      string        `json:"job_id"`
	StepID     string        `json:"step_id,omitempty"`
	Role       string        `json:"role"`
	Stage      string        `json:"stage"`
	Started    time.Time     `json:"started"`
	Steps      []*StepRecord `json:"steps"`
	FailedStep string        `json:"failed_step,omitempty"`
	Signal     string        `json:"signal,omitempty"`
	Codes      ExitCodes     `json:"exit_codes"`
	Final      int           `json:"final_exit_code"`
}

// Step outcomes, as result files spell them.
const (
	OutcomeOK     = "ok"
	OutcomeFailed = "failed"
	// OutcomeSkipped: the step does not apply, or an earlier one failed.
	OutcomeSkipped = "skipped"
	// OutcomeCancelled: the job was cancelled (Slurm's SIGTERM) while the
	// step ran or before it started; not a failure of the step.
	OutcomeCancelled = "cancelled"
	// OutcomeTimedOut: the step's own bound ran out (a wait or an install
	// attempt).
	OutcomeTimedOut = "timed out"
)

// StepRecord is one step's outcome: one of the Outcome constants.
type StepRecord struct {
	Name       string    `json:"name"`
	Start      time.Time `json:"start"`
	DurationMS float64   `json:"duration_ms"`
	Outcome    string    `json:"outcome"`
	Detail     string    `json:"detail,omitempty"`
	ExitCode   *int      `json:"exit_code,omitempty"`
}

func newResult(cfg *Config, host string) *Result {
	return &Result{
		Rank: int(cfg.Rank), LocalRank: int(cfg.LocalRank), Node: int(cfg.NodeID), Host: host,
		JobID: cfg.JobID, StepID: cfg.StepID, Role: cfg.Role.Name(), Stage: cfg.StageName,
		Started: time.Now().UTC(),
	}
}

func (r *Result) begin(name string) *StepRecord {
	rec := &StepRecord{Name: name, Start: time.Now().UTC()}
	r.Steps = append(r.Steps, rec)
	return rec
}

func (s *StepRecord) skip(outcome, why string) {
	s.Outcome, s.Detail = outcome, why
}

// finish records how the step ended; cancelled says that the job's
// cancellation ended it.
func (s *StepRecord) finish(err error, cancelled bool) {
	s.DurationMS = float64(time.Since(s.Start).Microseconds()) / 1000
	switch {
	case err == nil:
		s.Outcome = OutcomeOK
		return
	case cancelled:
		s.Outcome = OutcomeCancelled
	case errors.Is(err, errTimeout):
		s.Outcome = OutcomeTimedOut
	default:
		s.Outcome = OutcomeFailed
	}
	s.Detail, s.ExitCode = err.Error(), intp(codeOf(err))
}

// FileName is unique per job, step, role and rank.
func (r *Result) FileName() string {
	step := ""
	if r.StepID != "" {
		step = ".step" + r.StepID
	}
	return fmt.Sprintf("result.job%s%s.%s.rank%d.json", r.JobID, step, r.Role, r.Rank)
}

// ReadResult reads a result file.
func ReadResult(path string) (*Result, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("result file %s: %w", path, err)
	}
	return &r, nil
}

func (r *Result) write(dir string, red *redact.Redactor) (string, error) {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode result: %w", err)
	}
	// Step details quote errors, and errors quote URLs and commands.
	data = []byte(red.String(string(data)))
	path := filepath.Join(dir, r.FileName())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("result directory: %w", err)
	}
	return path, WriteFileAtomic(path, append(data, '\n'), 0o644)
}

// WriteFileAtomic writes data to a temporary name beside path and renames
// it, so that no reader, on this node or another, sees a half-written file.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), perm)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
