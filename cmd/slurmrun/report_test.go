package main

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// report from the records of real runs: two ranks of one job, rank 0's test
// failing. The JUnit file has a suite per role, a case per rank and step
// plus the final code, and the failures and skips the records hold.
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
		runBin(t, env, "run")
	}
	r := runBin(t, map[string]string{"PATH": os.Getenv("PATH")}, "report", tr.ws)
	if r.code != 0 {
		t.Fatalf("exit code %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "First failure: aggregated rank 0, step pytest: pytestCommand failed") ||
		!strings.Contains(r.stdout, "aggregated  1     final") {
		t.Errorf("summary:\n%s", r.stdout)
	}
	data, err := os.ReadFile(filepath.Join(tr.ws, "slurmrun", "junit.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var suites struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Skipped  int `xml:"skipped,attr"`
		Suites   []struct {
			Name  string `xml:"name,attr"`
			Cases []struct {
				Name, Classname string
				Failure         *struct {
					Message string `xml:"message,attr"`
				} `xml:"failure"`
			} `xml:"testcase"`
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
	if len(suites.Suites) != 1 || suites.Tests != tests || suites.Failures != failures || suites.Skipped != skipped {
		t.Errorf("junit: %d suites, tests %d failures %d skipped %d; want 1, %d, %d, %d\n%s",
			len(suites.Suites), suites.Tests, suites.Failures, suites.Skipped, tests, failures, skipped, data)
	}
	if failures < 2 {
		t.Errorf("the failing rank's pytest and final are not both failures: %d", failures)
	}
	t.Logf("slurmrun report:\n%s", lastLines(r.stdout, 6))
}

// make demo's job: two ranks on the embedded tree, the report's summary,
// and the JUnit file it writes.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	r := runBin(t, map[string]string{"PATH": os.Getenv("PATH"), "HOME": dir}, "demo", "--dir", filepath.Join(dir, "demo"))
	if r.code != 0 {
		t.Fatalf("exit code %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"aggregated  0     pytest", "aggregated  1     final", "rank 1: exit code 0", "JUnit: " + filepath.Join(dir, "demo", "workspace", "slurmrun", "junit.xml")} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, r.stdout)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "demo", "workspace", "slurmrun", "junit.xml")); err != nil {
		t.Error(err)
	}
}
