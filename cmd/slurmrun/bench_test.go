package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/slurmrun/slurmrun/internal/must"
)

// seedScript is the bash script slurmrun replaces (../shared/seed beside
// the repository, as CI lays it out).
func seedScript(b *testing.B) string {
	if p := os.Getenv("SLURMRUN_SEED"); p != "" {
		return p
	}
	p, _ := filepath.Abs(filepath.Join("..", "..", "..", "shared", "seed", "slurm_run.sh"))
	if _, err := os.Stat(p); err != nil {
		b.Fatalf("seed script not found at %s (set SLURMRUN_SEED): %v", p, err)
	}
	return p
}

// timeRun runs argv with env in dir and returns its wall time.
func timeRun(b *testing.B, dir string, env map[string]string, argv ...string) time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		b.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return d
}

func median(ds []time.Duration) time.Duration {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2]
}

// BenchmarkOverheadVersusSeed runs the seed script (with bash) and
// `slurmrun run` side by side on the same fixture and a trivial pytest, and
// prints each one's overhead over running that pytest alone, per rank.
func BenchmarkOverheadVersusSeed(b *testing.B) {
	seed := seedScript(b)
	tr := newTree(b)
	must.Do(b, os.WriteFile(filepath.Join(tr.defs, "test_trivial.py"), []byte("def test_ok():\n    pass\n"), 0o644))
	env := tr.env
	env["perfMode"] = "false"
	env["SLURMRUN_COVERAGE_TIMEOUT"] = "60s"
	env["LD_LIBRARY_PATH"] = "/usr/local/lib" // the seed's set -u needs it
	pytest := []string{"python3", "-m", "pytest", "-q", "--trtllm-wheel=" + "__PLACEHOLDER_TRTLLM_WHL_PATH__" + "/tensorrt_llm/", "test_trivial.py"}
	env["pytestCommand"] = strings.Join(pytest, " ")
	bare := append([]string{filepath.Join(venvBin, "python3")}, pytest[1:]...)
	bare[4] = "--trtllm-wheel=" + siteDir + "/tensorrt_llm/"
	coverage := filepath.Join(tr.ws, ".coveragerc")
	original := must.Read(b, coverage)

	const runs = 5
	measure := func(rank string, seedRuns int) (bareT, seedT, oursT time.Duration) {
		env["SLURM_PROCID"] = rank
		var bs, ss, os_ []time.Duration
		// Rank 0 finds the placeholder; the other ranks find the file as
		// rank 0 left it.
		config := original
		if rank != "0" {
			config = []byte(strings.ReplaceAll(string(original), "---wheel_path---", siteDir))
		}
		for i := 0; i < runs; i++ {
			bs = append(bs, timeRun(b, tr.defs, env, bare...))
			must.Do(b, os.WriteFile(coverage, config, 0o644))
			os_ = append(os_, timeRun(b, tr.dir, env, binary, "run"))
			if i < seedRuns {
				must.Do(b, os.WriteFile(coverage, config, 0o644))
				ss = append(ss, timeRun(b, tr.dir, env, "bash", seed))
			}
		}
		return median(bs), median(ss), median(os_)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fmt.Printf("\n%-7s %12s %12s %12s %15s %15s %8s %8s\n", "rank", "pytest", "seed", "slurmrun", "seed overhead", "ours overhead", "ratio", "target")
		for _, c := range []struct {
			rank     string
			seedRuns int
			target   float64
		}{{"0", runs, 0.1}, {"1", 1, 0.01}} {
			bareT, seedT, oursT := measure(c.rank, c.seedRuns)
			seedO, oursO := seedT-bareT, max(oursT-bareT, 0)
			ratio := float64(oursO) / float64(seedO)
			verdict := "ok"
			if ratio > c.target {
				verdict = "MISSED"
			}
			fmt.Printf("%-7s %12s %12s %12s %15s %15s %8.4f %5.2f %s\n", c.rank, bareT.Round(time.Millisecond),
				seedT.Round(time.Millisecond), oursT.Round(time.Millisecond), seedO.Round(time.Millisecond),
				oursO.Round(time.Millisecond), ratio, c.target, verdict)
			b.ReportMetric(ratio, "ratio-rank"+c.rank)
		}
	}
}
