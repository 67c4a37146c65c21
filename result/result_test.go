package result

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/slurmrun/slurmrun/internal/redact"
)

// Records are found by job and role, with or without a step, and job 12's
// never stand in for job 123's.
func TestFilesAndReadAll(t *testing.T) {
	ws := t.TempDir()
	red := redact.New(nil)
	start := time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)
	for _, r := range []*Rank{
		{JobID: "12", StepID: "0", Role: "GEN_0", Rank: 0, Started: start},
		{JobID: "12", StepID: "0", Role: "GEN_0", Rank: 1, Started: start},
		{JobID: "12", Role: "aggregated", Rank: 0, Started: start},
		{JobID: "123", StepID: "1", Role: "GEN_0", Rank: 0, Started: start},
	} {
		if _, err := r.Write(Dir(ws), red); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		job, role string
		want      int
	}{{"12", "GEN_0", 2}, {"12", "aggregated", 1}, {"12", "", 3}, {"123", "", 1}, {"", "GEN_0", 3}, {"", "", 4}, {"1", "", 0}} {
		ranks, err := ReadAll(ws, tt.job, tt.role)
		if err != nil || len(ranks) != tt.want {
			t.Errorf("job %q role %q: %d records (%v), want %d", tt.job, tt.role, len(ranks), err, tt.want)
		}
		for _, r := range ranks {
			if tt.job != "" && r.JobID != tt.job || tt.role != "" && r.Role != tt.role {
				t.Errorf("job %q role %q: read %s", tt.job, tt.role, r.FileName())
			}
		}
	}
	if got := filepath.Base(LaunchFile(ws, "12")); got != "launch.job12.json" {
		t.Error(got)
	}
}

func TestEnds(t *testing.T) {
	start := time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)
	r := &Rank{Started: start, Steps: []*Step{
		{Start: start, DurationMS: 1500},
		{Start: start.Add(2 * time.Second), DurationMS: 0.5},
	}}
	if got := r.End(); !got.Equal(start.Add(2*time.Second + 500*time.Microsecond)) {
		t.Errorf("end %v", got)
	}
	if got := (&Rank{Started: start}).End(); !got.Equal(start) {
		t.Errorf("a rank without steps ends when it started: %v", got)
	}
}

// Final follows slurm_run.sh: a failed setup step, else pytest's code if
// it is non-zero, else the perf check's.
func TestExitCodePrecedence(t *testing.T) {
	code := func(n int) *int { return &n }
	for _, tt := range []struct {
		name  string
		codes ExitCodes
		want  int
	}{
		{"all passed", ExitCodes{Pytest: code(0), PerfCheck: code(0)}, 0},
		{"pytest first", ExitCodes{Pytest: code(1), PerfCheck: code(2)}, 1},
		{"perf check when pytest passed", ExitCodes{Pytest: code(0), PerfCheck: code(2)}, 2},
		{"no perf tail", ExitCodes{Pytest: code(5)}, 5},
		{"killed by signal", ExitCodes{Pytest: code(137)}, 137},
		{"setup failure", ExitCodes{Setup: 3}, 3},
		{"perf sanity after the perf check", ExitCodes{Pytest: code(0), PerfCheck: code(2), PerfSanity: code(1)}, 2},
		{"perf sanity alone", ExitCodes{Pytest: code(0), PerfCheck: code(0), PerfSanity: code(1)}, 1},
	} {
		if got := tt.codes.Final(); got != tt.want {
			t.Errorf("%s: Final() = %d, want %d", tt.name, got, tt.want)
		}
	}
}
