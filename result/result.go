// Package result is the files a job leaves in its workspace, under
// <jobWorkspace>/slurmrun: one record per rank (result.job<ID>[.step<S>].<ROLE>.rank<N>.json),
// written by `slurmrun run`, and one summary per launch (launch.job<ID>.json),
// written by `slurmrun launch`. The flow, the launcher, the demo and the
// report read and write them only through this package.
package result

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/slurmrun/slurmrun/internal/atomicfile"
	"github.com/slurmrun/slurmrun/internal/redact"
)

// Rank is what a rank leaves in the job workspace: who it was, each step's
// timing and outcome, and every exit code.
type Rank struct {
	Rank       int       `json:"rank"`
	LocalRank  int       `json:"local_rank"`
	Node       int       `json:"node_id"`
	Host       string    `json:"host"`
	JobID      string    `json:"job_id"`
	StepID     string    `json:"step_id,omitempty"`
	Role       string    `json:"role"`
	Stage      string    `json:"stage"`
	Started    time.Time `json:"started"`
	Steps      []*Step   `json:"steps"`
	FailedStep string    `json:"failed_step,omitempty"`
	Signal     string    `json:"signal,omitempty"`
	Codes      ExitCodes `json:"exit_codes"`
	Final      int       `json:"final_exit_code"`
}

// Step outcomes, as result files spell them.
const (
	OK     = "ok"
	Failed = "failed"
	// Skipped: the step does not apply, or an earlier one failed.
	Skipped = "skipped"
	// Cancelled: the job was cancelled (Slurm's SIGTERM) while the step ran
	// or before it started; not a failure of the step.
	Cancelled = "cancelled"
	// TimedOut: the step's own bound ran out (a wait or an install attempt).
	TimedOut = "timed out"
)

// Step is one step's record; Outcome is one of the outcome constants.
type Step struct {
	Name       string    `json:"name"`
	Start      time.Time `json:"start"`
	DurationMS float64   `json:"duration_ms"`
	Outcome    string    `json:"outcome"`
	Detail     string    `json:"detail,omitempty"`
	ExitCode   *int      `json:"exit_code,omitempty"`
}

// End is when the step ended.
func (s *Step) End() time.Time {
	return s.Start.Add(time.Duration(s.DurationMS * float64(time.Millisecond)))
}

// End is when the rank's last step ended.
func (r *Rank) End() time.Time {
	t := r.Started
	for _, st := range r.Steps {
		if e := st.End(); e.After(t) {
			t = e
		}
	}
	return t
}

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
	// PerfSanity is perf_regression_check.py's code (profiles with the
	// PerfSanity tail).
	PerfSanity *int `json:"perf_sanity,omitempty"`
}

// Final is the rank's exit code, with slurm_run.sh's precedence: a failed
// setup step, else pytest's code if it is non-zero, else the perf check's
// if it is non-zero, else the PerfSanity check's (@38660dfb), else 0.
func (c ExitCodes) Final() int {
	switch {
	case c.Setup != 0:
		return c.Setup
	case c.Pytest != nil && *c.Pytest != 0:
		return *c.Pytest
	case c.PerfCheck != nil && *c.PerfCheck != 0:
		return *c.PerfCheck
	case c.PerfSanity != nil && *c.PerfSanity != 0:
		return *c.PerfSanity
	}
	return 0
}

// Dir is where a job workspace's result files are.
func Dir(workspace string) string { return filepath.Join(workspace, "slurmrun") }

// FileName is unique per job, step, role and rank.
func (r *Rank) FileName() string {
	step := ""
	if r.StepID != "" {
		step = ".step" + r.StepID
	}
	return fmt.Sprintf("result.job%s%s.%s.rank%d.json", r.JobID, step, r.Role, r.Rank)
}

// Write writes the record into dir, secrets masked (step details quote
// errors, and errors quote URLs and commands), and returns its path.
func (r *Rank) Write(dir string, red *redact.Redactor) (string, error) {
	path := filepath.Join(dir, r.FileName())
	return path, writeJSON(path, "result", r.masked(red.String))
}

// masked is a copy of r with mask applied to each text it holds. Masking
// the values before they are encoded, not the encoded file, keeps the file
// JSON whatever a secret or its mask does to quotes and escapes.
func (r *Rank) masked(mask func(string) string) *Rank {
	c := *r
	c.Host, c.JobID, c.StepID, c.Role = mask(r.Host), mask(r.JobID), mask(r.StepID), mask(r.Role)
	c.Stage, c.FailedStep, c.Signal = mask(r.Stage), mask(r.FailedStep), mask(r.Signal)
	c.Steps = make([]*Step, len(r.Steps))
	for i, s := range r.Steps {
		sc := *s
		sc.Name, sc.Outcome, sc.Detail = mask(s.Name), mask(s.Outcome), mask(s.Detail)
		c.Steps[i] = &sc
	}
	return &c
}

// Read reads one rank's record.
func Read(path string) (*Rank, error) { return readJSON[Rank](path, "result file") }

// writeJSON writes v as indented JSON at path, through a temporary name,
// making its directory.
func writeJSON(path, what string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", what, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("%s directory: %w", what, err)
	}
	return atomicfile.WriteFile(path, append(data, '\n'), 0o644)
}

// readJSON reads the JSON file at path into a T.
func readJSON[T any](path, what string) (*T, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	return &v, nil
}

// Files lists the records in a job workspace: of job (any when empty), of
// role (any when empty), in file-name order.
func Files(workspace, job, role string) ([]string, error) {
	pattern := "result.job*.json"
	switch {
	case job != "" && role != "":
		// With a step (launch's ranks) or without.
		a, err := filepath.Glob(filepath.Join(Dir(workspace), "result.job"+job+".step*."+role+".rank*.json"))
		if err != nil {
			return nil, err
		}
		b, err := filepath.Glob(filepath.Join(Dir(workspace), "result.job"+job+"."+role+".rank*.json"))
		files := append(a, b...)
		sort.Strings(files)
		return files, err
	case job != "":
		pattern = "result.job" + job + ".*.json"
	case role != "":
		pattern = "result.job*." + role + ".rank*.json"
	}
	return filepath.Glob(filepath.Join(Dir(workspace), pattern))
}

// ReadAll reads the records Files lists. One that cannot be read does not
// hide the others: it is named in unreadable, and the rest are read.
func ReadAll(workspace, job, role string) (ranks []*Rank, unreadable []error, err error) {
	files, err := Files(workspace, job, role)
	if err != nil {
		return nil, nil, err
	}
	for _, f := range files {
		r, err := Read(f)
		if err != nil {
			unreadable = append(unreadable, err)
			continue
		}
		ranks = append(ranks, r)
	}
	return ranks, unreadable, nil
}
