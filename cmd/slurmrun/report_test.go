package main

import (
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// keepRecords copies a real run's records (ws/slurmrun/*.json) into
// $SLURMRUN_RECORD/name/slurmrun: report/testdata holds such copies, and
// `SLURMRUN_RECORD=report/testdata go test -run 'TestDemo|TestReportFromRealRuns|TestLaunchCancelled' ./cmd/slurmrun`
// (from the repository root, as root for the launch) records them again.
func keepRecords(t testing.TB, name, ws string) {
	t.Helper()
	root := os.Getenv("SLURMRUN_RECORD")
	if root == "" {
		return
	}
	if !filepath.IsAbs(root) {
		root = filepath.Join("..", "..", root)
	}
	dst := filepath.Join(root, name, "slurmrun")
	os.RemoveAll(dst)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(ws, "slurmrun", "*.json"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(f)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("records kept in %s", dst)
}

// report from the records of real runs: two ranks of one job, rank 0's test
// failing. The JUnit file has a suite per role, a case per rank and step
// plus the final code, and the failures and skips the records hold; the
// page marks the failure.
func TestReportFromRealRuns(t *testing.T) {
	tr := newTree(t)
	tr.env["perfMode"] = "false"
	tr.env["SLURM_JOB_NUM_NODES"] = "2" // two ranks of one job, on "two nodes"
	failing := tr.pytest("test_cases.py::test_fail")
	passing := tr.pytest("test_demo.py", "-k", "'not single_node'")
	for rank, command := range []string{failing, passing} {
		env := asLocalRank(tr.env, rank)
		env["SLURM_LOCALID"], env["SLURM_NODEID"] = "0", []string{"0", "1"}[rank]
		env["pytestCommand"] = command
		r := runBin(t, env, "run")
		if hint := "Report of the job's ranks, when all have finished: slurmrun report " + tr.ws; (rank == 0) != strings.Contains(r.stdout, hint) {
			t.Errorf("rank %d: the report hint is wrong (only rank 0 prints it):\n%s", rank, r.stdout)
		}
	}
	keepRecords(t, "failing-rank", tr.ws)
	out := t.TempDir()
	r := runBin(t, map[string]string{"PATH": os.Getenv("PATH")}, "report", "--out", out, tr.ws)
	if r.code != 0 {
		t.Fatalf("exit code %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "First failure: aggregated rank 0, step pytest: pytestCommand failed") ||
		!regexp.MustCompile(`(?m)^aggregated\s+1\s+\S+\s+final\s+0\s+ok$`).MatchString(r.stdout) ||
		!strings.HasSuffix(r.stdout, "Report: "+filepath.Join(out, "report.html")+"\n") {
		t.Errorf("summary:\n%s", r.stdout)
	}
	data, err := os.ReadFile(filepath.Join(out, "junit.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var suites struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Name    string `xml:"name,attr"`
			Skipped int    `xml:"skipped,attr"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(data, &suites); err != nil {
		t.Fatalf("junit.xml: %v\n%s", err, data)
	}
	var tests, failures, skipped int
	for rank := 0; rank < 2; rank++ {
		res := resultOf(t, tr.ws, rank)
		tests += len(res.Steps) + 1
		for _, st := range res.Steps {
			switch st.Outcome {
			case "failed":
				failures++
			case "skipped":
				skipped++
			}
		}
		if res.Final != 0 {
			failures++
		}
	}
	if len(suites.Suites) != 1 || suites.Tests != tests || suites.Failures != failures || suites.Suites[0].Skipped != skipped {
		t.Errorf("junit: %d suites, tests %d failures %d; want 1, %d, %d (%d skipped)\n%s",
			len(suites.Suites), suites.Tests, suites.Failures, tests, failures, skipped, data)
	}
	if failures < 2 {
		t.Errorf("the failing rank's pytest and final are not both failures: %d", failures)
	}
	page, err := os.ReadFile(filepath.Join(out, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`<rect class="step o-failed first-failure"[^>]*><title>pytest \(aggregated rank 0 `).Match(page) {
		t.Errorf("the page does not mark rank 0's pytest as the first failure")
	}
	t.Logf("slurmrun report:\n%s", lastLines(r.stdout, 6))
}

// make demo's job: two ranks on the embedded tree, the report's summary,
// and its page's path as the last line.
func TestDemo(t *testing.T) {
	needSystemPytest(t)
	dir := t.TempDir()
	r := runBin(t, map[string]string{"PATH": os.Getenv("PATH"), "HOME": dir}, "demo", "--dir", filepath.Join(dir, "demo"))
	if r.code != 0 {
		t.Fatalf("exit code %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	ws := filepath.Join(dir, "demo", "workspace")
	keepRecords(t, "demo", ws)
	page := filepath.Join(ws, "slurmrun", "report.html")
	for _, want := range []string{"aggregated  0     ", "rank 1: exit code 0", "JUnit: " + filepath.Join(ws, "slurmrun", "junit.xml")} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.HasSuffix(r.stdout, "Report: "+page+"\n") {
		t.Errorf("the last line is not the page's path:\n%s", lastLines(r.stdout, 3))
	}
	if _, err := os.Stat(page); err != nil {
		t.Error(err)
	}
}

// needSystemPytest skips the demo's tests where the demo would refuse to
// run: python3 cannot import pytest.
func needSystemPytest(t *testing.T) {
	t.Helper()
	if err := exec.Command("python3", "-c", "import pytest").Run(); err != nil {
		t.Skip("python3 cannot import pytest (make deps installs python3-pytest)")
	}
}

// make demo in a clean clone, as the README says: it builds, runs the two
// ranks and ends with the page's path.
func TestMakeDemoInACleanClone(t *testing.T) {
	needSystemPytest(t)
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, ".git")); err != nil {
		t.Skip("not in a git checkout")
	}
	clone := filepath.Join(t.TempDir(), "clone")
	if out, err := exec.Command("git", "clone", "-q", root, clone).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	// The working tree under test, not only what is committed.
	if out, err := exec.Command("bash", "-c", "cd "+root+" && git diff HEAD --binary | git -C "+clone+" apply --allow-empty && git ls-files -o --exclude-standard -z | xargs -0r cp --parents -t "+clone).CombinedOutput(); err != nil {
		t.Fatalf("copy the working tree: %v\n%s", err, out)
	}
	cmd := exec.Command("make", "demo")
	cmd.Dir = clone
	// As a person types it: not a sub-make of the make test that runs this.
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); name != "MAKEFLAGS" && name != "MAKELEVEL" && name != "MFLAGS" && name != "MAKEOVERRIDES" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make demo: %v\n%s", err, out)
	}
	last := lines(string(out))[len(lines(string(out)))-1]
	page, ok := strings.CutPrefix(last, "Report: ")
	if !ok || !strings.HasSuffix(page, "/workspace/slurmrun/report.html") {
		t.Fatalf("make demo does not end with the page's path:\n%s", lastLines(string(out), 5))
	}
	if _, err := os.Stat(page); err != nil {
		t.Error(err)
	}
	t.Logf("make demo:\n%s", lastLines(string(out), 4))
}
