package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slurmrun/slurmrun/entrypoint"
	"github.com/slurmrun/slurmrun/result"

	"github.com/slurmrun/slurmrun/internal/must"
)

// slurmUp skips unless the local two-node Slurm (scripts/slurm-local.sh,
// started by `make test` as root) answers.
func slurmUp(t testing.TB) {
	t.Helper()
	out, err := exec.Command("sinfo", "-h", "-N", "-o", "%N %t").Output()
	if err != nil || strings.Count(string(out), "node") < 2 {
		if os.Geteuid() == 0 {
			start := exec.Command("../../scripts/slurm-local.sh", "start")
			if b, err := start.CombinedOutput(); err != nil {
				t.Fatalf("cannot start the local Slurm: %v\n%s", err, b)
			}
			return
		}
		t.Skip("no local Slurm (scripts/slurm-local.sh start needs root)")
	}
}

// disaggJob is one disaggregated job on the local cluster.
type disaggJob struct {
	tr  *tree
	out string // the roles' shared output directory
	env map[string]string
}

func newDisaggJob(t testing.TB) *disaggJob {
	tr := newTree(t)
	role := must.Read(t, "testdata/role.py")
	script := filepath.Join(tr.dir, "role.py")
	must.Do(t, os.WriteFile(script, role, 0o644))
	out := filepath.Join(tr.ws, "roles")
	must.Do(t, os.MkdirAll(out, 0o755))
	env := tr.env
	delete(env, "pytestCommand")
	env["perfMode"] = "false"
	cmd := "python3 " + script + " " + out
	for k, v := range map[string]string{
		"numGenServers": "1", "numCtxServers": "1", "gpusPerNode": "2", "gpusPerGenServer": "2", "gpusPerCtxServer": "2",
		"nodesPerGenServer": "1", "nodesPerCtxServer": "1", "totalNodes": "2", "NUM_WORKERS": "2",
		"pytestCommandWorker":        "unset UCX_TLS && " + cmd,
		"pytestCommandDisaggServer":  cmd,
		"pytestCommandBenchmark":     cmd + " --cov=" + entrypoint.WheelPlaceholder + "/tensorrt_llm/",
		"SLURMRUN_STATUS_FILE":       filepath.Join(out, "benchmark_status.0.txt"),
		"SLURMRUN_LAUNCH_INSTALL":    "false",
		"SLURMRUN_GRACE":             "3s",
		"SLURMRUN_ROLE_EXIT_TIMEOUT": "10s",
	} {
		env[k] = v
	}
	return &disaggJob{tr: tr, out: out, env: env}
}

// submit runs `slurmrun launch` as the batch script of a two-node job.
func (j *disaggJob) submit(t testing.TB, srunArgs ...string) string {
	return j.submitScript(t, "exec "+binary+" launch -- "+strings.Join(srunArgs, " "))
}

// submitScript submits body as the batch script; the script first records
// when it started (the job's start, as the job sees it).
func (j *disaggJob) submitScript(t testing.TB, body string) string {
	t.Helper()
	script := filepath.Join(j.tr.dir, "launch.sh")
	must.Do(t, os.WriteFile(script, []byte("#!/bin/bash\ndate +%s.%N > "+filepath.Join(j.out, "job_start")+"\n"+body+"\n"), 0o755))
	cmd := exec.Command("sbatch", "--parsable", "-N2", "--exclusive", "-J", "slurmrun-test",
		"-o", filepath.Join(j.tr.ws, "job-output.log"), script)
	for k, v := range j.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sbatch: %v\n%s", err, out)
	}
	id := strings.TrimSpace(strings.Split(string(out), ";")[0])
	t.Cleanup(func() { exec.Command("scancel", id).Run() })
	return id
}

// waitJob polls squeue (sbatch --wait backs off to 32 s) until the job is gone.
func waitJob(t testing.TB, id string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		out, err := exec.Command("squeue", "-h", "-j", id).Output()
		if err == nil && strings.TrimSpace(string(out)) == "" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	exec.Command("scancel", id).Run()
	t.Fatalf("job %s still running after %v", id, limit)
}

func (j *disaggJob) summary(t *testing.T, id string) (result.Launch, string) {
	t.Helper()
	log := must.Show(filepath.Join(j.tr.ws, "job-output.log"))
	data, err := os.ReadFile(filepath.Join(j.tr.ws, "slurmrun", "launch.job"+id+".json"))
	if err != nil {
		t.Fatalf("no summary: %v\njob log:\n%s", err, log)
	}
	var s result.Launch
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	return s, string(log)
}

func rowOf(t *testing.T, s result.Launch, role string) result.LaunchStep {
	t.Helper()
	for _, r := range s.Steps {
		if r.Role == role {
			return r
		}
	}
	t.Fatalf("no %s row in %+v", role, s)
	return result.LaunchStep{}
}

// noRolesLeft checks that no role program outlived the job.
func noRolesLeft(t *testing.T, j *disaggJob) {
	t.Helper()
	out, _ := exec.Command("pgrep", "-f", filepath.Join(j.tr.dir, "role.py")).Output()
	if s := strings.TrimSpace(string(out)); s != "" {
		exec.Command("pkill", "-9", "-f", filepath.Join(j.tr.dir, "role.py")).Run()
		t.Errorf("role programs left running: %s", s)
	}
}

func TestLaunchHappyPath(t *testing.T) {
	slurmUp(t)
	j := newDisaggJob(t)
	id := j.submit(t)
	waitJob(t, id, 2*time.Minute)
	s, log := j.summary(t, id)
	if s.ExitCode != 0 {
		t.Fatalf("exit code %d\n%s", s.ExitCode, log)
	}
	for role, ranks := range map[string]int{"GEN_0": 2, "CTX_0": 2, "DISAGG_SERVER": 1, "BENCHMARK": 1} {
		r := rowOf(t, s, role)
		if r.ExitCode == nil || *r.ExitCode != 0 || r.Ranks != ranks || r.StepID == "" {
			t.Errorf("%s: %+v", role, r)
		}
	}
	if !strings.Contains(log, "Disagg server and benchmark completed successfully") || !strings.Contains(log, "ROLE") {
		t.Errorf("job log:\n%s", log)
	}
	bench := must.Read(t, filepath.Join(j.tr.ws, "benchmark.log"))
	if !strings.Contains(string(bench), "benchmark: GEN_0") || !strings.Contains(string(bench), "benchmark: CTX_0") {
		t.Errorf("the benchmark did not reach the servers:\n%s", bench)
	}
	noRolesLeft(t, j)
	t.Logf("happy run:\n%s", log)
}

func TestLaunchWorkerCrash(t *testing.T) {
	slurmUp(t)
	j := newDisaggJob(t)
	j.env["ROLE_CRASH"] = "GEN_0"
	id := j.submit(t)
	waitJob(t, id, 2*time.Minute)
	s, log := j.summary(t, id)
	if s.ExitCode != 3 || !regexp.MustCompile(`GEN_0 rank [01] exited 3 before the benchmark finished. Check `+regexp.QuoteMeta(j.tr.ws+"/gen_server_0.log")).MatchString(log) {
		t.Fatalf("exit code %d\n%s", s.ExitCode, log)
	}
	for _, role := range []string{"CTX_0", "DISAGG_SERVER", "BENCHMARK"} {
		if r := rowOf(t, s, role); r.StoppedBy != "another step failed" {
			t.Errorf("%s not stopped: %+v", role, r)
		}
	}
	// Stopped through Slurm (scancel --signal=TERM of the step), every
	// stopped rank ran slurmrun's cancel path and wrote its record.
	for role, ranks := range map[string]int{"CTX_0": 2, "DISAGG_SERVER": 1, "BENCHMARK": 1} {
		matches, _ := filepath.Glob(filepath.Join(j.tr.ws, "slurmrun", "result.job"+id+".step*."+role+".rank*.json"))
		if len(matches) != ranks {
			t.Errorf("%s: %d records, want %d: %v", role, len(matches), ranks, matches)
		}
		for _, m := range matches {
			if res, err := result.Read(m); err != nil || res.Final != 143 || res.Signal != "terminated" {
				t.Errorf("%s: %v %+v", filepath.Base(m), err, res)
			}
		}
	}
	noRolesLeft(t, j)
	t.Logf("worker crash:\n%s", lastLines(log, 7))
}

// One rank of two fails (exit 3); --kill-on-bad-exit ends the other (143)
// and srun returns 143: launch names the failing rank and exits with its
// code, and the other rank's record says it was stopped.
func TestLaunchOneRankFails(t *testing.T) {
	slurmUp(t)
	j := newDisaggJob(t)
	j.env["ROLE_CRASH"], j.env["ROLE_CRASH_RANK"] = "GEN_0", "0"
	id := j.submit(t)
	waitJob(t, id, 2*time.Minute)
	s, log := j.summary(t, id)
	if s.ExitCode != 3 || !strings.Contains(log, "GEN_0 rank 0 exited 3 before the benchmark finished") {
		t.Fatalf("exit code %d\n%s", s.ExitCode, log)
	}
	if r := rowOf(t, s, "GEN_0"); len(r.RankCodes) != 2 {
		t.Errorf("GEN_0 ranks: %+v", r)
	}
	// The report's first failure is the rank that failed, not the one
	// --kill-on-bad-exit stopped.
	if !regexp.MustCompile(`First failure: GEN_0 rank 0, step pytest: `).MatchString(log) {
		t.Errorf("launch's report:\n%s", log)
	}
	t.Logf("one rank fails:\n%s", lastLines(log, 7))
	noRolesLeft(t, j)
}

func TestLaunchBenchmarkFails(t *testing.T) {
	slurmUp(t)
	j := newDisaggJob(t)
	j.env["ROLE_CRASH"] = "BENCHMARK"
	id := j.submit(t)
	waitJob(t, id, 2*time.Minute)
	s, log := j.summary(t, id)
	if s.ExitCode != 3 || !strings.Contains(log, "Benchmark failed: BENCHMARK rank 0 exited 3") {
		t.Fatalf("exit code %d\n%s", s.ExitCode, log)
	}
	// The servers, stopped once the benchmark is over, each wrote a record.
	for role, ranks := range map[string]int{"GEN_0": 2, "CTX_0": 2, "DISAGG_SERVER": 1} {
		if r := rowOf(t, s, role); len(r.RankCodes) != ranks {
			t.Errorf("%s: %d rank records, want %d: %+v", role, len(r.RankCodes), ranks, r)
		}
	}
	t.Logf("benchmark fails:\n%s", lastLines(log, 7))
	noRolesLeft(t, j)
}

func TestLaunchCancelled(t *testing.T) {
	slurmUp(t)
	j := newDisaggJob(t)
	j.env["ROLE_BENCH_SECONDS"] = "120"
	id := j.submit(t)
	if !waitFile(filepath.Join(j.out, "benchmark_started"), time.Minute) {
		log := must.Show(filepath.Join(j.tr.ws, "job-output.log"))
		t.Fatalf("the benchmark never started; job log:\n%s", log)
	}
	time.Sleep(300 * time.Millisecond)
	exec.Command("scancel", id).Run()
	waitJob(t, id, time.Minute)
	s, log := j.summary(t, id)
	if s.ExitCode != 143 {
		t.Errorf("exit code %d\n%s", s.ExitCode, log)
	}
	for role, ranks := range map[string]int{"GEN_0": 2, "CTX_0": 2, "DISAGG_SERVER": 1, "BENCHMARK": 1} {
		if r := rowOf(t, s, role); r.Ranks != ranks {
			t.Errorf("%s: %d result files, want %d: %+v", role, r.Ranks, ranks, r)
		}
	}
	out, _ := exec.Command("squeue", "-h", "-s", "-j", id).Output()
	if strings.TrimSpace(string(out)) != "" {
		t.Errorf("steps left: %s", out)
	}
	noRolesLeft(t, j)
	// launch made the job's report: every rank cancelled, none failing.
	keepRecords(t, "cancelled-launch", j.tr.ws)
	page := filepath.Join(j.tr.ws, "slurmrun", "report.html")
	if !strings.Contains(log, "Cancelled: 6 of 6 ranks ended by a signal (terminated)") || !strings.Contains(log, "Report: "+page) ||
		strings.Contains(log, "First failure:") {
		t.Errorf("launch's report:\n%s", log)
	}
	if html, err := os.ReadFile(page); err != nil || !strings.Contains(string(html), `class="step o-cancelled"`) {
		t.Errorf("the page shows no cancelled step: %v", err)
	}
	t.Logf("cancelled run:\n%s", log)
}

// The install step fails on one of the two nodes: the launch stops there
// and names the install and its log.
func TestLaunchInstallFailsOnOneNode(t *testing.T) {
	slurmUp(t)
	tarball := sourceTarball(t, "0.0.3", nil)
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) > 1 {
			http.Error(w, "gone", http.StatusGone)
			return
		}
		w.Write(tarball)
	}))
	defer srv.Close()
	j := newDisaggJob(t)
	// A venv of its own: the node whose download works pip-installs into it.
	ienv := installEnv(t, srv.URL+"/llm.tar.gz")
	for _, k := range []string{"PATH", "llmTarfile", "tarName", "SLURMRUN_PIP_ARGS", "SLURMRUN_APT_PACKAGES", "SLURMRUN_NVIDIA_SMI"} {
		j.env[k] = ienv[k]
	}
	j.env["resourcePathNode"] = ienv["resourcePathNode"]
	j.env["SLURMRUN_INSTALL_RETRIES"] = "1"
	j.env["SLURMRUN_LAUNCH_INSTALL"] = "true"
	id := j.submit(t)
	waitJob(t, id, 2*time.Minute)
	s, log := j.summary(t, id)
	// Each node's install wrote its record: the launch names the rank that
	// failed, and its summary counts both.
	if s.ExitCode != 1 || !regexp.MustCompile(`INSTALL rank [01] exited 1`).MatchString(log) || !strings.Contains(log, j.tr.ws+"/install.log") {
		t.Fatalf("exit code %d\n%s", s.ExitCode, log)
	}
	if len(s.Steps) != 1 {
		t.Fatalf("roles started after a failed install: %+v", s.Steps)
	}
	if st := s.Steps[0]; st.Ranks != 2 || !slices.Contains(st.RankCodes, 1) {
		t.Errorf("the install row: %d ranks, codes %v", st.Ranks, st.RankCodes)
	}
	install := must.Read(t, filepath.Join(j.tr.ws, "install.log"))
	if !strings.Contains(string(install), "410 Gone") {
		t.Errorf("install log lacks the failure:\n%s", install)
	}
}

func TestLaunchDryRun(t *testing.T) {
	slurmUp(t)
	j := newDisaggJob(t)
	j.env["SLURM_JOB_ID"] = "99"
	j.env["SLURM_JOB_NODELIST"] = "node[1-2]"
	r := runBin(t, j.env, "launch", "--dry-run", "--", "--container-image=nvcr.io/x:1", "--container-mounts=/a:/b,/c:/d")
	if r.code != 0 {
		t.Fatalf("exit code %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{
		"DISAGG_SERVING_TYPE=GEN_0 'pytestCommand=unset UCX_TLS && python3 ",
		"srun --container-image=nvcr.io/x:1 --container-mounts=/a:/b,/c:/d --container-env=DISAGG_SERVING_TYPE,pytestCommand --job-name=GEN_0 --kill-on-bad-exit=1 -N 1 -w node1 --ntasks=2 --ntasks-per-node=2 /usr/local/bin/slurmrun run",
		"--job-name=CTX_0 --kill-on-bad-exit=1 -N 1 -w node2 ",
		"--job-name=DISAGG_SERVER --kill-on-bad-exit=1 --overlap -N 1 -w node1 --ntasks=1",
		"--job-name=BENCHMARK",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("dry run lacks %q:\n%s", want, r.stdout)
		}
	}
	if _, err := os.Stat(filepath.Join(j.tr.ws, "gen_server_0.log")); err == nil {
		t.Error("the dry run started a step")
	}
}
