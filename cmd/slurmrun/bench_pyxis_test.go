package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/slurmrun/slurmrun/internal/must"
)

// pytestStart runs one single-node step of `slurmrun run` whose command
// records when it started, and returns srun's start to the command's start,
// and slurmrun's own part of it (its record's start to the pytest step's).
func pytestStart(b *testing.B, tr *tree, img string, container bool) (total, own time.Duration) {
	mark := filepath.Join(tr.dir, "started")
	os.Remove(mark)
	os.RemoveAll(filepath.Join(tr.ws, "slurmrun"))
	tr.env["pytestCommand"] = "python3 -c 'import time,sys; open(sys.argv[1],\"w\").write(repr(time.time()))' " + mark
	argv := []string{"srun", "-N1", "-n1", binary, "run"}
	if container {
		argv = pyxisSrun(tr, img, 1, "/usr/local/bin/slurmrun", "run")
	}
	cmd := exec.Command("timeout", append([]string{"120"}, argv...)...)
	for k, v := range tr.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	begin := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("container=%v: %v\n%s", container, err, out)
	}
	total = readUnixTime(b, mark).Sub(begin)
	res := resultOf(b, tr.ws, 0)
	for _, st := range res.Steps {
		if st.Name == "pytest" {
			own = st.Start.Sub(res.Started)
		}
	}
	return total, own
}

// BenchmarkPyxisStart measures, in one run, the time from srun to pytest's
// start with and without pyxis + enroot, and slurmrun's own part of it.
func BenchmarkPyxisStart(b *testing.B) {
	pyxisUp(b)
	img := pyxisImage(b)
	tr := newTree(b)
	for _, k := range []string{"SLURM_JOB_ID", "SLURM_PROCID", "SLURM_JOB_NUM_NODES"} {
		delete(tr.env, k)
	}
	tr.env["DISAGG_SERVING_TYPE"] = "GEN_0"
	tr.env["perfMode"] = "false"
	must.Do(b, os.MkdirAll(tr.ws, 0o755))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var plain, boxed, plainOwn, boxedOwn []time.Duration
		for r := 0; r < 5; r++ {
			t, o := pytestStart(b, tr, img, false)
			plain, plainOwn = append(plain, t), append(plainOwn, o)
			t, o = pytestStart(b, tr, img, true)
			boxed, boxedOwn = append(boxed, t), append(boxedOwn, o)
		}
		p, c := median(plain), median(boxed)
		fmt.Printf("\n%-40s %14s %14s %8s\n", "srun -> pytest start (median of 5)", "no container", "pyxis+enroot", "ratio")
		fmt.Printf("%-40s %14s %14s %8.2f\n", "total", p.Round(time.Millisecond), c.Round(time.Millisecond), float64(c)/float64(p))
		fmt.Printf("%-40s %14s %14s\n", "of which slurmrun (start -> pytest)", median(plainOwn).Round(time.Millisecond), median(boxedOwn).Round(time.Millisecond))
		fmt.Printf("%-40s %14s %14s\n", "pyxis + enroot (the difference)", "", (c - p).Round(time.Millisecond))
		b.ReportMetric(float64(c)/float64(p), "container-ratio")
	}
}
