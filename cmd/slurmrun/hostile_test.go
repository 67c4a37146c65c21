package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Paths and identifiers that cannot work are configuration errors (exit 2,
// every one named, nothing run); a record lost at the end is a failure.
func TestBadPathsAreConfigurationErrors(t *testing.T) {
	tr := newTree(t)
	file := filepath.Join(tr.dir, "a-file")
	os.WriteFile(file, nil, 0o644)
	ran := filepath.Join(tr.dir, "ran")
	tr.env["DISAGG_SERVING_TYPE"] = "GEN_0"
	tr.env["pytestCommand"] = "touch " + ran
	tr.env["resourcePathNode"] = filepath.Join(tr.dir, "missing")
	tr.env["coverageConfigFile"] = tr.defs
	tr.env["jobWorkspace"] = file
	tr.env["SLURM_JOB_ID"] = strings.Repeat("7", 5000)
	r := runBin(t, tr.env, "run")
	if r.code != 2 {
		t.Fatalf("exit code %d\n%s", r.code, r.stderr)
	}
	for _, w := range []string{`resourcePathNode="` + tr.dir + `/missing": no such file or directory`,
		`coverageConfigFile="` + tr.defs + `": a directory`, `jobWorkspace="` + file + `": result files cannot be written`,
		"SLURM_JOB_ID is 5000 characters long"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("the error does not say %q:\n%s", w, r.stderr)
		}
	}
	if _, err := os.Stat(ran); err == nil {
		t.Error("the command ran")
	}
}

func TestLostRecordFailsTheRun(t *testing.T) {
	tr := newTree(t)
	tr.env["DISAGG_SERVING_TYPE"] = "GEN_0"
	tr.env["perfMode"] = "false"
	// The command passes and leaves a file where the result directory goes.
	tr.env["pytestCommand"] = "sh -c 'rm -rf " + tr.ws + "/slurmrun && touch " + tr.ws + "/slurmrun'"
	os.MkdirAll(tr.ws, 0o755)
	r := runBin(t, tr.env, "run")
	if r.code == 0 || !strings.Contains(r.stderr, "the result file was not written") || !strings.Contains(r.stderr, tr.ws+"/slurmrun") {
		t.Fatalf("exit code %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "Rank0 Final Slurm run finished execution with exit code 1") {
		t.Errorf("the final Rank line does not say 1:\n%s", r.stdout)
	}
}

// spec writes the job's environment: only where it is told, only for its
// owner.
func TestSpecNeedsABundle(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(binary, "spec")
	cmd.Dir, cmd.Env = dir, []string{"PATH=" + os.Getenv("PATH"), "HF_TOKEN=hf_secret"}
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "--bundle DIR is required") {
		t.Fatalf("%v\n%s", err, out)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("spec wrote %v", entries)
	}
	b := filepath.Join(dir, "bundle")
	if r := runBin(t, map[string]string{"PATH": os.Getenv("PATH")}, "spec", "--bundle", b); r.code != 0 {
		t.Fatalf("exit code %d\n%s", r.code, r.stderr)
	}
	if fi, err := os.Stat(filepath.Join(b, "config.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config.json: %v %v", fi.Mode(), err)
	}
}
