package result

import (
	"os"
	"path/filepath"
	"strings"
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
		ranks, bad, err := ReadAll(ws, tt.job, tt.role)
		if err != nil || len(bad) > 0 || len(ranks) != tt.want {
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

// A record stays JSON whatever its texts hold: the secrets are masked in
// the values, before encoding, so a detail ending in NAME_TOKEN=value or a
// secret JSON escapes cannot take a quote or an escape with it.
func TestRecordMasksSecretsAndStaysJSON(t *testing.T) {
	secret := `s3"cr\et` + "\n\xff"
	red := redact.New([]string{"DB_PASSWORD=" + secret})
	ws := t.TempDir()
	for i, detail := range []string{
		"pip failed: HF_TOKEN=hf_abcdefghijklmnopqrstuvwxyz0123",
		`quote " and backslash \ and` + "\nnewline",
		"password " + secret + " in the middle",
		"download https://user:" + secret + "@example.com/x failed",
		"not UTF-8: \xff\xfe, then GH_TOKEN=ghp_abcdefghijklmnopqrstuvwxyz0123456789",
	} {
		r := &Rank{JobID: "7", Role: "aggregated", Rank: i, Stage: "S", Steps: []*Step{{Name: "install", Outcome: Failed, Detail: detail}}}
		path, err := r.Write(Dir(ws), red)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Read(path)
		if err != nil {
			t.Fatalf("detail %q: %v", detail, err)
		}
		got := back.Steps[0].Detail
		for _, leak := range []string{secret, `s3"cr`, "hf_abcdefghijklmnopqrstuvwxyz0123", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"} {
			if strings.Contains(got, leak) {
				t.Errorf("detail %q written as %q: holds %q", detail, got, leak)
			}
		}
		if r.Steps[0].Detail != detail {
			t.Error("Write changed the record it was given")
		}
	}
	if back, _ := Read(filepath.Join(Dir(ws), "result.job7.aggregated.rank1.json")); back.Steps[0].Detail != `quote " and backslash \ and`+"\nnewline" {
		t.Errorf("a detail without secrets changed: %q", back.Steps[0].Detail)
	}
}

// A record that does not parse is named, and the others are still read.
func TestReadAllNamesUnreadableRecords(t *testing.T) {
	ws := t.TempDir()
	for i := 0; i < 3; i++ {
		if _, err := (&Rank{JobID: "9", Role: "GEN_0", Rank: i}).Write(Dir(ws), redact.New(nil)); err != nil {
			t.Fatal(err)
		}
	}
	broken := filepath.Join(Dir(ws), "result.job9.GEN_0.rank1.json")
	if err := os.WriteFile(broken, []byte(`{"rank": 1, "steps": [`), 0o644); err != nil {
		t.Fatal(err)
	}
	ranks, bad, err := ReadAll(ws, "9", "")
	if err != nil || len(ranks) != 2 || len(bad) != 1 || !strings.Contains(bad[0].Error(), broken) {
		t.Errorf("%d records, unreadable %v, %v", len(ranks), bad, err)
	}
}
