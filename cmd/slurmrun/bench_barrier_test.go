package main

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/slurmrun/slurmrun/config"
)

// BenchmarkBarrierRelease runs main's rank barrier side by side: the
// upstream script and `slurmrun run`, three ranks of a multi-node step on
// the differential test's fixture, the third coming once rank 0 has said
// 2/3 are ready. It prints how long after the last rank entered pytest the
// other two did (upstream's ranks sleep out their 10 s poll; slurmrun's
// target is under a second).
func BenchmarkBarrierRelease(b *testing.B) {
	needFixture(b)
	ue := &upstreamEnv{shared: sharedDir(b), links: b.TempDir()}
	srv := httptest.NewServer(http.NotFoundHandler())
	b.Cleanup(srv.Close)
	ue.url = srv.URL
	v, err := config.Resolve("main-2026-08", nil)
	if err != nil {
		b.Fatal(err)
	}
	var c diffCase
	for _, dc := range diffCases() {
		if dc.name == "barrier" {
			c = dc
		}
	}
	release := func(argv func(fx *fixture) []string) time.Duration {
		fx := ue.fixture(b, v, c)
		runs := fx.runRanks(b, c, argv(fx)...)
		for _, r := range runs {
			if r.code != 0 {
				b.Fatalf("rank %s exited %d:\n%s\n%s", r.env["SLURM_PROCID"], r.code, r.stdout, r.stderr)
			}
		}
		first, last := math.Inf(1), math.Inf(-1)
		n := 0
		for _, cl := range fx.calls(b) {
			if cl.Prog == "pytest" {
				first, last, n = math.Min(first, cl.T), math.Max(last, cl.T), n+1
			}
		}
		if n != 3 {
			b.Fatalf("%d ranks entered pytest, want 3", n)
		}
		return time.Duration((last - first) * float64(time.Second))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		up := release(func(fx *fixture) []string { return []string{"bash", fx.script(b, ue, v)} })
		ours := release(func(*fixture) []string { return []string{binary, "run"} })
		verdict := "ok"
		if ours >= time.Second {
			verdict = "MISSED"
		}
		fmt.Printf("\nrank barrier, 3 ranks, the last after rank 0's 2/3: first to last rank into pytest\n")
		fmt.Printf("%-10s %10s %10s %8s %8s\n", "", "upstream", "slurmrun", "ratio", "target")
		fmt.Printf("%-10s %10s %10s %8.3f %8s %s\n", "release", up.Round(time.Millisecond), ours.Round(time.Millisecond),
			float64(ours)/float64(up), "<1s", verdict)
		b.ReportMetric(ours.Seconds(), "s-release")
	}
}
