package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slurmrun/slurmrun/container"

	"github.com/slurmrun/slurmrun/internal/must"
)

func TestPassingRun(t *testing.T) {
	tr := newTree(t)
	r := runBin(t, tr.env, "run")
	if r.code != 0 {
		t.Fatalf("exit code %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	mustContainInOrder(t, r.stdout,
		"TRTLLM WHEEL PATH: "+siteDir,
		"Library Path:",
		siteDir+"/tensorrt_llm/libs",
		"Full Command: "+strings.ReplaceAll(tr.env["pytestCommand"], "__PLACEHOLDER_TRTLLM_WHL_PATH__", siteDir),
		"Rank0 Pytest finished execution with exit code 0",
		"Check Perf Result",
		"Create Perf Report",
		"Rank0 Perf report finished execution with exit code 0",
		"Rank0 Perf check finished execution with exit code 0",
		"Rank0 Final Slurm run finished execution with exit code 0",
	)
	if !strings.Contains(r.stdout, "6 passed") {
		t.Errorf("the demo tests did not all pass:\n%s", r.stdout)
	}
	res := resultOf(t, tr.ws, 0)
	if res.Final != 0 || *res.Codes.Pytest != 0 || *res.Codes.PerfCheck != 0 || res.Stage != stage || res.JobID != "4242" {
		t.Errorf("result file: %+v", res)
	}
	if len(res.Steps) != 13 {
		t.Errorf("want 13 steps recorded, got %d", len(res.Steps))
	}
	if _, err := os.Stat(filepath.Join(tr.defs, stage, "report.pdf")); err != nil {
		t.Errorf("perf report not written: %v", err)
	}
	for _, l := range []string{"level=info msg=\"step done\"", "step=pytest"} {
		if !strings.Contains(r.stderr, l) {
			t.Errorf("log lacks %q:\n%s", l, r.stderr)
		}
	}
}

// After a test failure every later line still runs (the seed's ERR trap
// skipped them: its ERR trap outlives `set +e`), and pytest's code wins over the perf check's.
func TestTestFailureKeepsTheBookkeeping(t *testing.T) {
	tr := newTree(t)
	tr.env["pytestCommand"] = tr.pytest("test_demo.py", "test_cases.py::test_fail")
	r := runBin(t, tr.env, "run")
	if r.code != 1 {
		t.Fatalf("exit code %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	mustContainInOrder(t, r.stdout,
		"Rank0 Pytest finished execution with exit code 1",
		"Check Perf Result",
		"Rank0 Perf check finished execution with exit code 0",
		"Rank0 Final Slurm run finished execution with exit code 1")
	if !strings.Contains(r.stderr, "exit_code=1") || !strings.Contains(r.stderr, "step=pytest") {
		t.Errorf("the failing step does not name itself and its exit code:\n%s", r.stderr)
	}
}

func TestUsageErrorDiagnostics(t *testing.T) {
	tr := newTree(t)
	tr.env["pytestCommand"] = tr.pytest("--no-such-option", "test_demo.py")
	tr.env["perfMode"] = "false"
	r := runBin(t, tr.env, "run")
	if r.code != 4 {
		t.Fatalf("exit code %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	conftest := must.Read(t, filepath.Join(tr.defs, "conftest.py"))
	_ = conftest
	mustContainInOrder(t, r.stdout,
		"Rank0 Pytest finished execution with exit code 4",
		"DEBUG: Pytest failed with usage error (exit code 4)",
		"DEBUG: Directory state at "+tr.defs+":",
		"DEBUG: Directory state at "+tr.defs+":",
		"DEBUG: conftest.py content:",
		md5Line(t, filepath.Join(tr.defs, "conftest.py")),
		"DEBUG: pytest.ini content:",
		md5Line(t, filepath.Join(tr.defs, "pytest.ini")),
		"DEBUG: Check importability of conftest.py",
		"DEBUG: conftest imported successfully",
		"Rank0 Final Slurm run finished execution with exit code 4")
	if !strings.Contains(r.stdout, "conftest.py\n") {
		t.Errorf("no directory listing:\n%s", r.stdout)
	}
}

func md5Line(t *testing.T, path string) string {
	t.Helper()
	out, err := execOutput("md5sum", path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

func TestNoTestsCollected(t *testing.T) {
	tr := newTree(t)
	tr.env["pytestCommand"] = tr.pytest("-k", "no_such_test", "test_demo.py")
	tr.env["perfMode"] = "false"
	r := runBin(t, tr.env, "run")
	if r.code != 5 {
		t.Fatalf("exit code %d\n%s", r.code, r.stdout)
	}
	mustContainInOrder(t, r.stdout, "Rank0 Pytest finished execution with exit code 5",
		"Rank0 Final Slurm run finished execution with exit code 5")
	if strings.Contains(r.stdout, "DEBUG:") {
		t.Error("diagnostics printed for exit code 5")
	}
}

func TestPerfRegression(t *testing.T) {
	tr := newTree(t)
	os.WriteFile(filepath.Join(tr.defs, "perf", "base_perf_pytorch.csv"), []byte(
		"perf_case_name,network_name,metric_type,perf_metric,threshold,absolute_threshold\n"+
			"demo-sum-of-squares,demo,INFERENCE_TIME,0.0001,10,0\n"), 0o644)
	r := runBin(t, tr.env, "run")
	if r.code != 1 {
		t.Fatalf("exit code %d\n%s", r.code, r.stdout)
	}
	mustContainInOrder(t, r.stdout,
		"Rank0 Pytest finished execution with exit code 0",
		"Rank0 Perf report finished execution with exit code 0",
		"Rank0 Perf check finished execution with exit code 1",
		"Rank0 Final Slurm run finished execution with exit code 1")
}

func TestPerfReportFailureCountsAsCheckFailure(t *testing.T) {
	tr := newTree(t)
	must.Do(t, os.WriteFile(filepath.Join(tr.defs, "perf", "create_perf_comparison_report.py"), []byte("import sys\nsys.exit(3)\n"), 0o644))
	r := runBin(t, tr.env, "run")
	if r.code != 3 {
		t.Fatalf("exit code %d\n%s", r.code, r.stdout)
	}
	mustContainInOrder(t, r.stdout,
		"Rank0 Perf report finished execution with exit code 3",
		"Rank0 Perf check finished execution with exit code 3",
		"Rank0 Final Slurm run finished execution with exit code 3")
	res := resultOf(t, tr.ws, 0)
	if *res.Codes.PerfReport != 3 || *res.Codes.PerfCheck != 3 || *res.Codes.Pytest != 0 {
		t.Errorf("codes %+v", res.Codes)
	}
}

func TestKilledBySignal(t *testing.T) {
	tr := newTree(t)
	tr.env["pytestCommand"] = tr.pytest("test_cases.py::test_kill_self")
	tr.env["perfMode"] = "false"
	r := runBin(t, tr.env, "run")
	if r.code != 137 {
		t.Fatalf("exit code %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	mustContainInOrder(t, r.stdout, "Rank0 Pytest finished execution with exit code 137",
		"Rank0 Final Slurm run finished execution with exit code 137")
}

func TestMissingPlaceholder(t *testing.T) {
	tr := newTree(t)
	tr.env["pytestCommand"] = "python3 -m pytest test_demo.py"
	r := runBin(t, tr.env, "run")
	if r.code != 1 || !strings.Contains(r.stderr, "Error: placeholder '__PLACEHOLDER_TRTLLM_WHL_PATH__' not found in the command\n") {
		t.Fatalf("exit code %d\n%s", r.code, r.stderr)
	}
	if strings.Contains(r.stdout, "Rank0 Pytest") {
		t.Error("pytest ran")
	}
	// Worker roles may have no placeholder: upstream submit.py strips --cov from them.
	tr.env["DISAGG_SERVING_TYPE"] = "GEN_0"
	tr.env["perfMode"] = "false"
	tr.env["pytestCommand"] = "python3 -m pytest -p no:cacheprovider test_demo.py -k 'libs or single_node'"
	r = runBin(t, tr.env, "run")
	if r.code != 0 {
		t.Fatalf("GEN_0 without placeholder: exit code %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

func TestMultiNodeKeepsEnvironment(t *testing.T) {
	for _, nodes := range []string{"1", "2"} {
		tr := newTree(t)
		out := filepath.Join(tr.dir, "env.txt")
		tr.env["SLURM_JOB_NUM_NODES"] = nodes
		tr.env["PMI_RANK"], tr.env["OMPI_COMM_WORLD_SIZE"], tr.env["SLURM_LOCALID"] = "0", "2", "0"
		tr.env["HF_TOKEN"] = "hf_secret_value"
		tr.env["ENV_OUT"] = out
		tr.env["perfMode"] = "false"
		tr.env["pytestCommand"] = tr.pytest("test_cases.py::test_env")
		r := runBin(t, tr.env, "run")
		if r.code != 0 {
			t.Fatalf("nodes=%s: exit code %d\n%s\n%s", nodes, r.code, r.stdout, r.stderr)
		}
		data := must.Read(t, out)
		env := "\n" + string(data) + "\n"
		kept := strings.Contains(env, "\nPMI_RANK=0\n") && strings.Contains(env, "\nOMPI_COMM_WORLD_SIZE=2\n") &&
			strings.Contains(env, "\nSLURM_LOCALID=0\n")
		if kept != (nodes == "2") {
			t.Errorf("nodes=%s: MPI/Slurm variables kept=%v:\n%s", nodes, kept, env)
		}
		for _, want := range []string{"\nSLURM_PROCID=0\n", "\nLD_LIBRARY_PATH=" + siteDir + "/tensorrt_llm/libs\n",
			"\nGIT_CONFIG_COUNT=1\n", "\nPWD=" + tr.defs + "\n", "\nHF_TOKEN=hf_secret_value\n", "\nLLM_ROOT="} {
			if !strings.Contains(env, want) {
				t.Errorf("nodes=%s: pytest's environment lacks %q", nodes, strings.TrimSpace(want))
			}
		}
		if strings.Contains(r.stdout, "hf_secret_value") || !strings.Contains(r.stdout, "\nHF_TOKEN=********\n") {
			t.Errorf("secret not masked in the environment dump")
		}
	}
}

// A command that needs a variable the single-node scrub removes fails
// before pytest with a message that names it (under slurm_run.sh's
// `set -u`: "unbound variable"), unless it is kept.
func TestScrubbedVariableIsNamed(t *testing.T) {
	tr := newTree(t)
	tr.env["SLURM_LOCALID"] = "3"
	tr.env["perfMode"] = "false"
	tr.env["pytestCommand"] = "FLASHINFER_JIT_DIR=/tmp/jit_${SLURM_LOCALID} " + tr.pytest("test_demo.py", "-k", "libs")
	r := runBin(t, tr.env, "run")
	if r.code != 1 || !strings.Contains(r.stderr, "SLURMRUN_KEEP_ENV=SLURM_LOCALID") || strings.Contains(r.stdout, "Rank0 Pytest") {
		t.Fatalf("exit code %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	tr.env["SLURMRUN_KEEP_ENV"] = "SLURM_LOCALID"
	if r := runBin(t, tr.env, "run"); r.code != 0 {
		t.Fatalf("with SLURMRUN_KEEP_ENV: exit code %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

func TestGitTrustsRepositoriesOfOtherUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a repository to another user")
	}
	tr := newTree(t)
	tr.env["perfMode"] = "false"
	tr.env["pytestCommand"] = tr.pytest("test_cases.py::test_git_trusts_repositories_of_other_users")
	r := runBin(t, tr.env, "run")
	if r.code != 0 {
		t.Fatalf("exit code %d\n%s", r.code, r.stdout)
	}
	if _, err := os.Stat(filepath.Join(tr.env["HOME"], ".gitconfig")); err == nil {
		t.Error("the global git config was written")
	}
}

// Rank 1 starts first and must not run pytest before rank 0 wrote the
// wheel location into the coverage config (test_coverage_config_names_the_wheel
// checks it inside pytest).
func TestRanksShareTheCoverageConfig(t *testing.T) {
	tr := newTree(t)
	tr.env["pytestCommand"] = tr.pytest("test_demo.py", "-k", "'coverage or perf'")
	env1 := asLocalRank(tr.env, 1)
	c1, o1, e1 := start(t, env1, "run")
	// Rank 1 has found the wheel and goes on to the coverage config, which
	// still holds the placeholder: rank 0 has not started.
	waitOutput(t, o1, "TRTLLM WHEEL PATH")
	if cov := string(must.Read(t, tr.env["coverageConfigFile"])); !strings.Contains(cov, "---wheel_path---") {
		t.Fatalf("the coverage config was written before rank 0 ran:\n%s", cov)
	}
	r0 := runBin(t, tr.env, "run")
	r1 := wait(t, c1, o1, e1)
	if r0.code != 0 || r1.code != 0 {
		t.Fatalf("rank 0: %d\n%s\n%s\nrank 1: %d\n%s\n%s", r0.code, r0.stdout, r0.stderr, r1.code, r1.stdout, r1.stderr)
	}
	mustContainInOrder(t, r1.stdout, "Rank1 Pytest finished execution with exit code 0",
		"Rank1 Final Slurm run finished execution with exit code 0")
	if strings.Contains(r1.stdout, "Check Perf Result") {
		t.Error("rank 1 ran the perf tail")
	}
	resultOf(t, tr.ws, 0)
	resultOf(t, tr.ws, 1)
}

// SIGTERM mid-pytest still gives the Rank lines and the result file, both
// when only slurmrun gets it (scancel of a step without proctrack) and when
// every process of the step gets it at once, as Slurm's proctrack sends it:
// pytest then sees it twice, which must not cost the record.
func TestSigtermKeepsTheRecord(t *testing.T) {
	for _, everyProcess := range []bool{false, true} {
		tr := newTree(t)
		mark := filepath.Join(tr.dir, "sleeping")
		tr.env["SLEEP_MARK"] = mark
		tr.env["pytestCommand"] = tr.pytest("test_cases.py::test_sleep")
		cmd, o, e := start(t, tr.env, "run")
		deadline := time.Now().Add(30 * time.Second)
		for {
			if _, err := os.Stat(mark); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("pytest never started sleeping")
			}
			time.Sleep(50 * time.Millisecond)
		}
		targets := []int{cmd.Process.Pid}
		if everyProcess {
			targets = append(targets, container.Descendants(cmd.Process.Pid)...)
		}
		for _, pid := range targets {
			syscall.Kill(pid, syscall.SIGCONT)
			syscall.Kill(pid, syscall.SIGTERM)
		}
		r := wait(t, cmd, o, e)
		if r.code != 143 {
			t.Fatalf("every process=%v: exit code %d\n%s\n%s", everyProcess, r.code, r.stdout, r.stderr)
		}
		mustContainInOrder(t, r.stdout, "Rank0 Pytest finished execution with exit code 143",
			"Rank0 Final Slurm run finished execution with exit code 143")
		res := resultOf(t, tr.ws, 0)
		if res.Signal != "terminated" || res.Final != 143 {
			t.Errorf("result file: signal %q final %d", res.Signal, res.Final)
		}
		if strings.Contains(r.stdout, "Check Perf Result") {
			t.Error("the perf tail ran after SIGTERM")
		}
	}
}

func TestBadConfigurationNamesEveryVariable(t *testing.T) {
	tr := newTree(t)
	delete(tr.env, "resourcePathNode")
	tr.env["SLURM_PROCID"] = "one"
	tr.env["DISAGG_SERVING_TYPE"] = "ROUTER"
	r := runBin(t, tr.env, "run")
	if r.code != 2 {
		t.Fatalf("exit code %d", r.code)
	}
	for _, w := range []string{"resourcePathNode: must be set", `SLURM_PROCID="one"`, `DISAGG_SERVING_TYPE="ROUTER"`} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
		}
	}
	if r.stdout != "" {
		t.Errorf("a step ran: %s", r.stdout)
	}
}

func TestRefusedCommandRunsNothing(t *testing.T) {
	tr := newTree(t)
	tr.env["pytestCommand"] = tr.pytest("test_demo.py") + " $(touch " + filepath.Join(tr.dir, "pwned") + ")"
	r := runBin(t, tr.env, "run")
	if r.code != 2 || !strings.Contains(r.stderr, "command substitution") {
		t.Fatalf("exit code %d\n%s", r.code, r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("steps ran:\n%s", r.stdout)
	}
	if _, err := os.Stat(filepath.Join(tr.dir, "pwned")); err == nil {
		t.Fatal("the substitution ran")
	}
}

// A wheel location that is hostile as shell text reaches pytest verbatim.
func TestHostileWheelLocation(t *testing.T) {
	for _, name := range []string{`we ird'"quote`, "$(touch pwned)", "star*{a,b}", "~tilde", "back`tick`"} {
		tr := newTree(t)
		site := filepath.Join(tr.dir, name)
		if err := os.MkdirAll(site, 0o755); err != nil {
			t.Fatal(err)
		}
		// The same install as pip's, under a hostile directory name.
		if out, err := execOutput("cp", "-r", filepath.Join(siteDir, "tensorrt_llm"),
			filepath.Join(siteDir, "tensorrt_llm-0.0.0.dist-info"), site); err != nil {
			t.Fatal(err, out)
		}
		tr.env["PYTHONPATH"] = site
		tr.env["PATH"] = "/usr/bin:/bin"
		tr.env["SLURMRUN_PYTHON"] = "/usr/bin/python3"
		tr.env["perfMode"] = "false"
		tr.env["pytestCommand"] = strings.Replace(tr.pytest("test_demo.py", "-k", "'wheel or libs'"), "python3", "/usr/bin/python3", 1)
		r := runBin(t, tr.env, "run")
		if r.code != 0 {
			t.Fatalf("%q: exit code %d\n%s\n%s", name, r.code, r.stdout, r.stderr)
		}
		mustContainInOrder(t, r.stdout, "TRTLLM WHEEL PATH: "+site)
		if !strings.Contains(r.stdout, "3 passed") {
			t.Errorf("%q: tests did not see the location:\n%s", name, r.stdout)
		}
		if matches, _ := filepath.Glob(filepath.Join(tr.dir, "*", "pwned")); len(matches) > 0 {
			t.Fatalf("%q: the location was executed", name)
		}
		if _, err := os.Stat(filepath.Join(tr.defs, "pwned")); err == nil {
			t.Fatalf("%q: the location was executed", name)
		}
	}
}

func TestHelpListsVariables(t *testing.T) {
	r := runBin(t, nil, "run", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "pytestCommand") || !strings.Contains(r.stdout, "SLURM_JOB_NUM_NODES") {
		t.Fatalf("exit code %d\n%s", r.code, r.stdout)
	}
	r = runBin(t, nil, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "slurmrun ") {
		t.Fatalf("version: %d %q", r.code, r.stdout)
	}
}

func TestPlanRunsNothing(t *testing.T) {
	tr := newTree(t)
	tr.env["HF_TOKEN"] = "hf_secret_value"
	tr.env["PMI_RANK"] = "0"
	tr.env["pytestCommand"] = "unset UCX_TLS && " + tr.pytest("test_demo.py", "-k", "'not slow'")
	r := runBin(t, tr.env, "plan")
	if r.code != 0 {
		t.Fatalf("exit code %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"stageName=" + stage, " 3. install                  skipped: disaggregated stage",
		`"--trtllm-wheel=` + siteDir + `/tensorrt_llm/"`, `"not slow"`,
		"+ GIT_CONFIG_COUNT=1", "+ LD_LIBRARY_PATH=" + siteDir + "/tensorrt_llm/libs", "- PMI_RANK", "- SLURM_JOB_ID",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("plan lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "hf_secret_value") {
		t.Error("plan printed a secret")
	}
	if _, err := os.Stat(filepath.Join(tr.ws, "slurmrun")); err == nil {
		t.Error("plan wrote a result file")
	}
	data := must.Read(t, filepath.Join(tr.ws, ".coveragerc"))
	if !strings.Contains(string(data), "---wheel_path---") {
		t.Error("plan rewrote the coverage config")
	}
}
