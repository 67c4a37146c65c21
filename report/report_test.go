package report

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"
	"time"

	"github.com/slurmrun/slurmrun/entrypoint"
)

// A 256-rank job of two roles, one rank failing and one cancelled: the
// counts, the suites and the first failure.
func TestJUnitAndSummaryOfALargeJob(t *testing.T) {
	start := time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC)
	code := func(n int) *int { return &n }
	j := &Job{}
	for rank := 0; rank < 256; rank++ {
		role := "GEN_0"
		if rank >= 128 {
			role = "CTX_0"
		}
		r := &entrypoint.Result{Rank: rank, JobID: "77", Role: role, Stage: "S", Started: start}
		pytest := &entrypoint.StepRecord{Name: "pytest", Start: start.Add(time.Second), DurationMS: 1000, Outcome: "ok"}
		switch rank {
		case 200:
			pytest.Outcome, pytest.Detail, pytest.ExitCode = "failed", "pytestCommand failed", code(3)
			r.Final = 3
		case 7:
			r.Final, r.Signal = 143, "terminated"
			pytest.Outcome, pytest.Detail = "skipped", "cancelled: terminated by SIGTERM"
		}
		r.Steps = []*entrypoint.StepRecord{{Name: "workdir", Start: start, DurationMS: 1, Outcome: "ok"}, pytest}
		j.Ranks = append(j.Ranks, r)
	}
	var b bytes.Buffer
	if err := j.JUnit(&b); err != nil {
		t.Fatal(err)
	}
	var got junitSuites
	if err := xml.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Tests != 256*3 || got.Failures != 3 || got.Skipped != 1 || len(got.Suites) != 2 {
		t.Errorf("tests %d failures %d skipped %d suites %d", got.Tests, got.Failures, got.Skipped, len(got.Suites))
	}
	var s strings.Builder
	if err := j.Summary(&s); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s.String(), "First failure: CTX_0 rank 200, step pytest: pytestCommand failed") ||
		!strings.Contains(s.String(), "143 (terminated)") {
		t.Errorf("summary:\n%s", s.String()[max(0, s.Len()-400):])
	}
}
