package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func readUnixTime(b *testing.B, path string) time.Time {
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatalf("timestamp: %v", err)
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(string(data)), 64)
	if err != nil {
		b.Fatalf("timestamp %s: %v", path, err)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9))
}

// launchTimes runs one job and returns job start -> BENCHMARK start and
// BENCHMARK end -> the job and all its steps gone.
// bound is slurmrun's SLURMRUN_ROLE_EXIT_TIMEOUT.
func launchTimes(b *testing.B, draft bool, bound string) (toBenchmark, teardown time.Duration) {
	slurmUp(b)
	j := newDisaggJob(b)
	// The role programs poll as upstream's do: every 10 s.
	j.env["ROLE_POLL"] = "10"
	j.env["SLURMRUN_BIN"] = binary
	var id string
	if draft {
		j.env["ROLE_WRITE_STATUS"] = "1"
		script, _ := filepath.Abs("testdata/draft_launch.sh")
		id = j.submitScript(b, "exec bash "+script)
	} else {
		j.env["SLURMRUN_ROLE_EXIT_TIMEOUT"] = bound
		id = j.submit(b)
	}
	waitJob(b, id, 3*time.Minute)
	gone := time.Now()
	start := readUnixTime(b, filepath.Join(j.out, "job_start"))
	benchStart := readUnixTime(b, filepath.Join(j.out, "benchmark_process_start"))
	benchEnd := readUnixTime(b, filepath.Join(j.out, "benchmark_end"))
	return benchStart.Sub(start), gone.Sub(benchEnd)
}

// BenchmarkLaunchVersusDraft runs the same disaggregated job on the local
// two-node Slurm under slurmrun launch and under the bash draft's design,
// with the same role programs (polling every 10 s, as upstream's), and
// prints the two times and their ratios. The draft's teardown is the job's
// end: Slurm kills what is left. slurmrun gives the roles a bounded time to
// exit on their own first (pytest's own teardown, junit files); the table
// shows it with that bound at 0 s and at 1 s.
func BenchmarkLaunchVersusDraft(b *testing.B) {
	for i := 0; i < b.N; i++ {
		draftTo, draftDown := launchTimes(b, true, "")
		oursTo, oursDown0 := launchTimes(b, false, "0s")
		_, oursDown1 := launchTimes(b, false, "1s")
		fmt.Printf("\n%-42s %12s %12s %8s\n", "measure", "bash draft", "slurmrun", "ratio")
		row := func(name string, draft, ours time.Duration) float64 {
			r := float64(ours) / float64(draft)
			fmt.Printf("%-42s %12s %12s %8.3f\n", name, draft.Round(time.Millisecond), ours.Round(time.Millisecond), r)
			return r
		}
		b.ReportMetric(row("job start -> BENCHMARK start", draftTo, oursTo), "start-ratio")
		b.ReportMetric(row("BENCHMARK end -> last step gone (bound 0s)", draftDown, oursDown0), "teardown-ratio")
		row("BENCHMARK end -> last step gone (bound 1s)", draftDown, oursDown1)
	}
}
