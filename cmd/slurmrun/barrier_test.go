package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slurmrun/slurmrun/internal/must"
	"github.com/slurmrun/slurmrun/result"
)

// barrierTree is a multi-node GEN step of main's profile whose ranks wait
// for each other before a quick command.
func barrierTree(t *testing.T, ntasks string) *tree {
	tr := newTree(t)
	tr.env["SLURMRUN_PROFILE"], tr.env["perfMode"] = "main-2026-08", "false"
	tr.env["DISAGG_SERVING_TYPE"], tr.env["SLURM_JOB_NUM_NODES"], tr.env["SLURM_NTASKS"] = "GEN_0", "2", ntasks
	tr.env["SLURM_STEP_ID"], tr.env["SLURM_STEP_NODELIST"], tr.env["SLURM_STEP_TASKS_PER_NODE"] = "3", "node[1-2]", "2,1"
	tr.env["pytestCommand"] = "python3 -c pass"
	must.Do(t, os.Remove(filepath.Join(tr.ws, ".coveragerc")))
	delete(tr.env, "coverageConfigFile")
	return tr
}

// A rank that never comes: the others give up at the bound with
// upstream's line, word for word, and a line naming the missing rank and
// the node it was to run on; exit 1, pytest not run, the record says the
// barrier timed out, and their markers are gone.
func TestBarrierTimeoutNamesTheMissingRanks(t *testing.T) {
	tr := barrierTree(t, "3")
	tr.env["SLURMRUN_BARRIER_TIMEOUT"] = "2s"
	c1, o1, e1 := start(t, asLocalRank(tr.env, 1), "run")
	// Rank 0 comes when rank 1 waits, so the first count it prints is 2/3.
	if !waitFile(filepath.Join(tr.ws, "run_ready_job_*", "rank_1.ready"), 30*time.Second) {
		t.Fatal("rank 1 never reached the barrier")
	}
	r0 := runBin(t, tr.env, "run")
	r1 := wait(t, c1, o1, e1)
	if r0.code != 1 || r1.code != 1 {
		t.Fatalf("exit codes %d and %d, want 1\n%s\n%s", r0.code, r1.code, r0.stdout, r0.stderr)
	}
	mustContainInOrder(t, r0.stdout,
		"(Waiting for all 3 ranks to be ready) ready: 2/3",
		"ERROR: rank 0 timed out after 2s waiting for all 3 ranks to be ready; ready: 2/3",
		"Rank barrier: 1 of 3 ranks never arrived: 2 on node2",
		"Rank0 Final Slurm run finished execution with exit code 1")
	mustContainInOrder(t, r1.stdout, "ERROR: rank 1 timed out after 2s waiting for all 3 ranks to be ready; ready: 2/3")
	if strings.Contains(r1.stdout, "(Waiting for all") {
		t.Error("rank 1 reported progress: only rank 0 does")
	}
	if strings.Contains(r0.stdout+r1.stdout, "Pytest finished") {
		t.Error("pytest ran after the barrier timed out")
	}
	res := resultOf(t, tr.ws, 0)
	if res.FailedStep != "rank-barrier" || res.Final != 1 {
		t.Errorf("record: failed step %q, final %d", res.FailedStep, res.Final)
	}
	for _, s := range res.Steps {
		if s.Name == "rank-barrier" && (s.Outcome != result.TimedOut || !strings.Contains(s.Detail, "2 on node2")) {
			t.Errorf("barrier step recorded %s: %s", s.Outcome, s.Detail)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(tr.ws, "run_ready_job_*")); len(m) > 0 {
		t.Errorf("markers left: %v", m)
	}
}

// Markers of another job, another step or a rank beyond the step's never
// count: rank 0 of a 2-task step, alone, stays at 1/2.
func TestBarrierCountsOnlyItsStepsRanks(t *testing.T) {
	tr := barrierTree(t, "2")
	tr.env["SLURMRUN_BARRIER_TIMEOUT"], tr.env["SLURM_STEP_TASKS_PER_NODE"] = "1500ms", "1(x2)"
	for _, p := range []string{"run_ready_job_4242_step_2/rank_1.ready", "run_ready_job_999_step_3/rank_1.ready",
		"run_ready_job_4242_step_3/rank_7.ready", "run_ready_job_4242_step_3/rank_1.tmp"} {
		must.Do(t, os.MkdirAll(filepath.Join(tr.ws, filepath.Dir(p)), 0o755))
		must.Do(t, os.WriteFile(filepath.Join(tr.ws, p), nil, 0o644))
	}
	r := runBin(t, tr.env, "run")
	if r.code != 1 {
		t.Fatalf("exit code %d, want 1\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	mustContainInOrder(t, r.stdout, "ERROR: rank 0 timed out after 1.5s waiting for all 2 ranks to be ready; ready: 1/2",
		"Rank barrier: 1 of 2 ranks never arrived: 1 on node2")
}

// SIGTERM while a rank waits: 143, the Rank line and the record, the
// barrier step cancelled, and the markers gone: no other rank waits.
func TestBarrierCancelled(t *testing.T) {
	tr := barrierTree(t, "2")
	cmd, stdout, stderr := start(t, tr.env, "run")
	waitOutput(t, stdout, "(Waiting for all 2 ranks to be ready) ready: 1/2")
	must.Do(t, cmd.Process.Signal(syscall.SIGTERM))
	r := wait(t, cmd, stdout, stderr)
	if r.code != 143 {
		t.Fatalf("exit code %d, want 143\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	mustContainInOrder(t, r.stdout, "Rank0 Final Slurm run finished execution with exit code 143")
	res := resultOf(t, tr.ws, 0)
	for _, s := range res.Steps {
		if s.Name == "rank-barrier" && s.Outcome != result.Cancelled {
			t.Errorf("barrier step recorded %s: %s", s.Outcome, s.Detail)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(tr.ws, "run_ready_job_*")); len(m) > 0 {
		t.Errorf("the cancelled rank's marker was left: %v", m)
	}
}

// Ranks a scrub leaves without SLURM_NTASKS (one node) have no barrier, as
// upstream; plan shows the step and why it is skipped.
func TestBarrierInPlan(t *testing.T) {
	tr := barrierTree(t, "2")
	step := func(out string) string {
		for _, l := range lines(out) {
			if strings.Contains(l, " rank-barrier ") {
				return strings.Join(strings.Fields(l), " ")
			}
		}
		return ""
	}
	r := runBin(t, tr.env, "plan")
	if got := step(r.stdout); r.code != 0 || !strings.HasSuffix(got, "rank-barrier runs") {
		t.Errorf("plan of a 2-node GEN step: %q\n%s%s", got, r.stdout, r.stderr)
	}
	tr.env["SLURM_JOB_NUM_NODES"], tr.env["DISAGG_SERVING_TYPE"] = "1", ""
	r = runBin(t, tr.env, "plan")
	if got := step(r.stdout); !strings.HasSuffix(got, "rank-barrier skipped: SLURM_NTASKS is not in pytest's environment") {
		t.Errorf("plan of a 1-node step: %q\n%s%s", got, r.stdout, r.stderr)
	}
}
