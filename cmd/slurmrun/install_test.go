package main

import (
	"archive/tar"
	"compress/gzip"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/slurmrun/slurmrun/embed"

	"github.com/slurmrun/slurmrun/internal/must"
	"github.com/slurmrun/slurmrun/result"
)

// sourceTarball packs the demo's TensorRT-LLM/src and a wheel of version
// as TensorRT-LLM/, the layout of upstream's tarball; files replace the
// demo's or are added.
func sourceTarball(t *testing.T, version string, files map[string][]byte) []byte {
	t.Helper()
	dir := t.TempDir()
	whl, err := buildWheel(dir, version)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "llm.tar.gz")
	out, _ := os.Create(path)
	gz := gzip.NewWriter(out)
	tw := tar.NewWriter(gz)
	tree := embed.DemoTree()
	add := func(name string, data []byte, mode int64) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write(data)
	}
	fs.WalkDir(tree, "TensorRT-LLM", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || files[p] != nil {
			return err
		}
		data, _ := fs.ReadFile(tree, p)
		add(p, data, 0o755)
		return nil
	})
	data := must.Read(t, whl)
	add("TensorRT-LLM/"+filepath.Base(whl), data, 0o644)
	add("TensorRT-LLM/src/tests/integration/defs/test_cases.py", []byte(extraTests), 0o644)
	for name, data := range files {
		add(name, data, 0o644)
	}
	tw.Close()
	gz.Close()
	out.Close()
	tarball := must.Read(t, path)
	return tarball
}

// installEnv is an aggregated stage in a fresh venv that does not have the
// wheel yet; the install must download, extract and pip-install it.
func installEnv(t *testing.T, url string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	venv := filepath.Join(dir, "venv")
	if out, err := execOutput("/usr/bin/python3", "-m", "venv", "--system-site-packages", venv); err != nil {
		t.Fatal(err, out)
	}
	ws := filepath.Join(dir, "workspace")
	must.Do(t, os.Mkdir(ws, 0o755))
	must.Do(t, os.WriteFile(filepath.Join(ws, ".coveragerc"), []byte("[paths]\nsource = ---wheel_path---/tensorrt_llm/\n"), 0o644))
	home := filepath.Join(dir, "home")
	must.Do(t, os.Mkdir(home, 0o755))
	const aggStage = "A10-PyTorch-1"
	defs := filepath.Join(dir, "TensorRT-LLM", "src", "tests", "integration", "defs")
	return map[string]string{
		"PATH":                          filepath.Join(venv, "bin") + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME":                          home,
		"resourcePathNode":              dir,
		"stageName":                     aggStage,
		"perfMode":                      "false",
		"jobWorkspace":                  ws,
		"coverageConfigFile":            filepath.Join(ws, ".coveragerc"),
		"llmTarfile":                    url,
		"tarName":                       "llm.tar.gz",
		"SLURM_PROCID":                  "0",
		"SLURM_LOCALID":                 "0",
		"SLURM_JOB_NUM_NODES":           "1",
		"SLURM_JOB_ID":                  "77",
		"HOST_NODE_NAME":                "node-a",
		"SLURMRUN_PIP_ARGS":             "--no-index",
		"SLURMRUN_APT_PACKAGES":         "-",
		"SLURMRUN_NVIDIA_SMI":           "off",
		"SLURMRUN_INSTALL_RETRIES":      "2",
		"SLURMRUN_INSTALL_RETRY_DELAY":  "0s",
		"PIP_DISABLE_PIP_VERSION_CHECK": "1",
		"pytestCommand": "python3 -m pytest -v --rootdir " + defs + " --test-prefix=" + aggStage +
			" --trtllm-wheel=__PLACEHOLDER_TRTLLM_WHL_PATH__/tensorrt_llm/ --coverage-config=" +
			filepath.Join(ws, ".coveragerc") + " test_demo.py -k 'wheel or libs'",
	}
}

// The aggregated install: local rank 0 downloads over loopback HTTP,
// extracts and pip-installs while local rank 1 waits on the lock; then both
// run pytest against the freshly installed wheel.
func TestAggregatedInstallFromTarball(t *testing.T) {
	tarball := sourceTarball(t, "0.0.1", nil)
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 1 {
			// The first attempt fails: the retry must recover.
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		w.Write(tarball)
	}))
	defer srv.Close()
	env := installEnv(t, srv.URL+"/llm.tar.gz")
	env1 := asLocalRank(env, 1)
	c1, o1, e1 := start(t, env1, "run")
	r0 := runBin(t, env, "run")
	r1 := wait(t, c1, o1, e1)
	if r0.code != 0 || r1.code != 0 {
		t.Fatalf("rank 0: %d\n%s\n%s\nrank 1: %d\n%s\n%s", r0.code, r0.stdout, r0.stderr, r1.code, r1.stdout, r1.stderr)
	}
	mustContainInOrder(t, r0.stdout,
		"Command failed with exit code 1. Attempt 1/2.",
		"Retrying in 0 seconds...",
		"HOST_NODE_NAME = node-a ; GPU_UUIDS =  ; STAGE_NAME = A10-PyTorch-1",
		"(Writing install lock) Current directory: "+env["resourcePathNode"],
		"Rank0 Final Slurm run finished execution with exit code 0")
	mustContainInOrder(t, r1.stdout,
		"(Waiting for install lock) Current directory: "+env["resourcePathNode"],
		"Rank1 Pytest finished execution with exit code 0")
	if !strings.Contains(r0.stdout, "Successfully installed tensorrt-llm-0.0.1") {
		t.Errorf("the wheel was not pip-installed:\n%s", r0.stdout)
	}
	if strings.Contains(r1.stdout, "Successfully installed") {
		t.Error("local rank 1 installed too")
	}
	if matches, _ := filepath.Glob(filepath.Join(env["resourcePathNode"], ".llm.tar.gz.tmp*")); len(matches) > 0 {
		t.Errorf("temporary download left behind: %v", matches)
	}
}

// A failed install fails every local rank at once (slurm_install.sh swallows a failed retry and polls its lock without a bound): the waiting
// rank reads the failure from the lock instead of waiting out its bound.
func TestFailedInstallFailsEveryLocalRank(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	env := installEnv(t, srv.URL+"/missing.tar.gz")
	env["SLURMRUN_INSTALL_TIMEOUT"] = "60s"
	env1 := asLocalRank(env, 1)
	c1, o1, e1 := start(t, env1, "run")
	r0 := runBin(t, env, "run")
	r1 := wait(t, c1, o1, e1)
	if r0.code == 0 || r1.code == 0 {
		t.Fatalf("rank 0: %d, rank 1: %d", r0.code, r1.code)
	}
	mustContainInOrder(t, r0.stdout, "Command failed after max attempts.",
		"Rank0 Final Slurm run finished execution with exit code 1")
	if !strings.Contains(r0.stderr, "404") || !strings.Contains(r0.stderr, "step=install") {
		t.Errorf("rank 0 does not say what failed:\n%s", r0.stderr)
	}
	if !strings.Contains(r1.stderr, "local rank 0's install failed") {
		t.Errorf("rank 1 does not say why:\n%s", r1.stderr)
	}
	if strings.Contains(r0.stdout+r1.stdout, "Pytest finished") {
		t.Error("pytest ran after a failed install")
	}
	res := resultOf(t, env["jobWorkspace"], 0)
	if res.FailedStep != "install" || res.Final != 1 {
		t.Errorf("result: failed step %q final %d", res.FailedStep, res.Final)
	}
}

// `slurmrun install` runs the install step alone (the disaggregated
// launcher's install srun), for a Disagg stage too.
func TestInstallSubcommand(t *testing.T) {
	tarball := sourceTarball(t, "0.0.2", nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(tarball) }))
	defer srv.Close()
	env := installEnv(t, srv.URL+"/llm.tar.gz")
	env["stageName"] = "GB200-PyTorch-Disagg-PerfSanity-1"
	r := runBin(t, env, "install")
	if r.code != 0 || !strings.Contains(r.stdout, "Successfully installed tensorrt-llm-0.0.2") {
		t.Fatalf("exit code %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, "Pytest") {
		t.Error("install ran pytest")
	}
	// Its record, as launch and the report read it.
	matches, _ := filepath.Glob(filepath.Join(env["jobWorkspace"], "slurmrun", "result.job*.INSTALL.rank0.json"))
	if len(matches) != 1 {
		t.Fatalf("install records: %v", matches)
	}
	res, err := result.Read(matches[0])
	must.Do(t, err)
	if res.Final != 0 || len(res.Steps) != 1 || res.Steps[0].Name != "install" || res.Steps[0].Outcome != result.OK {
		t.Errorf("install record: %+v %+v", res, res.Steps)
	}
}

// A lock an earlier run left (same job id: `local`, or a reused one) does not
// let local rank 1 skip the install: it starts first, beside the stale lock,
// and waits until this run's rank 0 has installed.
func TestStaleInstallLockIsNotThisRuns(t *testing.T) {
	tarball := sourceTarball(t, "0.0.3", nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(tarball) }))
	defer srv.Close()
	env := installEnv(t, srv.URL+"/llm.tar.gz")
	lock := filepath.Join(env["resourcePathNode"], "install_lock_job_77_node_0_restart_0.lock")
	for _, stale := range []string{"ok\n", "run 1@1\nok\n"} {
		must.Do(t, os.WriteFile(lock, []byte(stale), 0o644))
		c1, o1, e1 := start(t, asLocalRank(env, 1), "run")
		// Rank 1 says it waits for the lock, and is still waiting: it has not
		// gone on to the wheel lookup, nor exited.
		waitOutput(t, o1, "Waiting for install lock")
		if !alive(c1.Process.Pid) || strings.Contains(o1.String(), "TRTLLM WHEEL PATH") {
			t.Fatalf("stale lock %q: rank 1 did not wait:\n%s\n%s", stale, o1, e1)
		}
		r0 := runBin(t, env, "run")
		r1 := wait(t, c1, o1, e1)
		if r0.code != 0 || r1.code != 0 {
			t.Fatalf("rank 0: %d\n%s\nrank 1: %d\n%s\n%s", r0.code, r0.stderr, r1.code, r1.stdout, r1.stderr)
		}
		if !strings.Contains(r0.stdout, "Successfully installed tensorrt-llm-0.0.3") {
			t.Fatalf("rank 0 did not install:\n%s", r0.stdout)
		}
	}
}
