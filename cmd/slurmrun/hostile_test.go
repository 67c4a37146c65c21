package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slurmrun/slurmrun/internal/must"
)

// Paths and identifiers that cannot work are configuration errors (exit 2,
// every one named, nothing run); a record lost at the end is a failure.
func TestBadPathsAreConfigurationErrors(t *testing.T) {
	tr := newTree(t)
	file := filepath.Join(tr.dir, "a-file")
	must.Do(t, os.WriteFile(file, nil, 0o644))
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
	must.Do(t, os.MkdirAll(tr.ws, 0o755))
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

// Secrets never reach what slurmrun writes (stdout, logs, the record, the
// install lock, plan); pytest and the install still get the real values.
func TestSecretsAreMaskedEverywhereSlurmrunWrites(t *testing.T) {
	secrets := map[string]string{
		"PIP_INDEX_URL":                   "https://user:pip-s3cret@pypi.example/simple",
		"HTTPS_PROXY":                     "http://proxy:proxy-s3cret@proxy.example:3128",
		"DATABASE_URL":                    "postgres://app:db-s3cret@db.example/x",
		"SENTRY_DSN":                      "https://dsn-s3cret@sentry.example/1",
		"AZURE_STORAGE_CONNECTION_STRING": "AccountName=a;AccountKey=az-s3cret;EndpointSuffix=core",
		"CI_JOB_JWT":                      "eyJhbGciOiJI.eyJzdWIiOiIx.jwt-s3cret",
		"GH_PAT":                          "gh-pat-s3cret",
		"MYSQL_PWD":                       "mysql-s3cret",
		"SSHPASS":                         "ssh-s3cret",
		"NPM_AUTH":                        "npm-s3cret",
	}
	tr := newTree(t)
	for k, v := range secrets {
		tr.env[k] = v
	}
	envOut := filepath.Join(tr.dir, "pytest-env")
	tr.env["ENV_OUT"] = envOut
	tr.env["perfMode"] = "false"
	tr.env["pytestCommand"] = "HF_TOKEN=hf-inline-s3cret " + tr.pytest("test_cases.py::test_env")
	for _, sub := range []string{"plan", "run"} {
		r := runBin(t, tr.env, sub)
		if r.code != 0 {
			t.Fatalf("%s: exit code %d\n%s", sub, r.code, r.stderr)
		}
		written := r.stdout + r.stderr
		if sub == "run" {
			matches, _ := filepath.Glob(filepath.Join(tr.ws, "slurmrun", "*.json"))
			for _, m := range matches {
				data := must.Read(t, m)
				written += string(data)
			}
		}
		if !strings.Contains(written, "********") {
			t.Errorf("%s: nothing masked at all:\n%s", sub, written)
		}
		if strings.Contains(written, "s3cret") {
			for _, l := range strings.Split(written, "\n") {
				if strings.Contains(l, "s3cret") {
					t.Errorf("%s wrote a secret: %s", sub, l)
				}
			}
		}
	}
	seen := must.Read(t, envOut)
	for k, v := range secrets {
		if !strings.Contains(string(seen), k+"="+v+"\n") {
			t.Errorf("pytest did not get the real %s", k)
		}
	}
	if !strings.Contains(string(seen), "HF_TOKEN=hf-inline-s3cret") {
		t.Error("pytest did not get the inline HF_TOKEN")
	}

	// The install: a password in llmTarfile, a download that fails.
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	env := installEnv(t, strings.Replace(srv.URL, "http://", "http://user:tar-s3cret@", 1)+"/llm.tar.gz")
	env["SLURMRUN_INSTALL_RETRIES"] = "1"
	r := runBin(t, env, "run")
	if r.code == 0 {
		t.Fatal("the install did not fail")
	}
	written := r.stdout + r.stderr
	for _, pattern := range []string{filepath.Join(env["resourcePathNode"], "install_lock_*"), filepath.Join(env["jobWorkspace"], "slurmrun", "*.json")} {
		matches, _ := filepath.Glob(pattern)
		if len(matches) == 0 {
			t.Errorf("nothing at %s", pattern)
		}
		for _, m := range matches {
			data := must.Read(t, m)
			written += string(data)
		}
	}
	if strings.Contains(written, "tar-s3cret") || !strings.Contains(written, "user:********@") {
		t.Errorf("the install wrote its password, or masked nothing:\n%s", written)
	}
}
