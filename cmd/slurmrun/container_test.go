package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slurmrun/slurmrun/internal/must"
)

// runtimeUp skips unless crun can run containers here (root; `make test`
// runs scripts/crun-setup.sh first).
func runtimeUp(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("crun bundles need root here")
	}
	if _, err := exec.LookPath("crun"); err != nil {
		if out, err := exec.Command("../../scripts/crun-setup.sh").CombinedOutput(); err != nil {
			t.Fatalf("crun setup: %v\n%s", err, out)
		}
	}
}

// newBundle makes a bundle whose rootfs holds the static binary and reuses
// the host's userland (/usr and /etc bound read-only), with the fixture
// tree and the venv bound at their own paths, running args.
func newBundle(t testing.TB, tr *tree, args ...string) string {
	t.Helper()
	b := filepath.Join(tr.dir, "bundle")
	root := filepath.Join(b, "rootfs")
	for _, d := range []string{"usr", "etc", "proc", "dev", "sys", "tmp"} {
		must.Do(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	for _, l := range []string{"bin", "lib", "lib64", "sbin"} {
		must.Do(t, os.Symlink("usr/"+l, filepath.Join(root, l)))
	}
	data := must.Read(t, binary)
	must.Do(t, os.WriteFile(filepath.Join(root, "slurmrun"), data, 0o755))
	venvRoot := filepath.Dir(venvBin)
	specArgs := []string{"spec", "--bundle", b, "--shm-size", "2g", "--bind", "/usr:/usr:ro", "--bind", "/etc:/etc:ro",
		"--bind", venvRoot, "--bind", tr.dir, "--"}
	r := runBin(t, tr.env, append(specArgs, args...)...)
	if r.code != 0 {
		t.Fatalf("slurmrun spec: %d\n%s", r.code, r.stderr)
	}
	return b
}

func TestCrunRunsTheFlowInABundle(t *testing.T) {
	runtimeUp(t)
	for _, tc := range []struct {
		selection string
		want      int
	}{{"test_demo.py", 0}, {"test_cases.py::test_fail", 1}} {
		tr := newTree(t)
		tr.env["pytestCommand"] = tr.pytest(tc.selection)
		if tc.want != 0 {
			tr.env["perfMode"] = "false"
		}
		b := newBundle(t, tr, "/slurmrun", "run")
		id := "slurmrun-test-" + filepath.Base(filepath.Dir(tr.dir))
		cmd := exec.Command("crun", "run", "--bundle", b, id)
		out, err := cmd.CombinedOutput()
		defer exec.Command("crun", "delete", "--force", id).Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.want {
			t.Fatalf("crun run: exit code %d, want %d\n%s", code, tc.want, out)
		}
		mustContainInOrder(t, string(out), "Rank0 Final Slurm run finished execution with exit code "+map[int]string{0: "0", 1: "1"}[tc.want])
		res := resultOf(t, tr.ws, 0)
		if res.Final != tc.want {
			t.Errorf("result file final %d", res.Final)
		}
		if tc.want == 0 {
			t.Logf("crun run of %s:\n%s", b, lastLines(string(out), 4))
		}
	}
}

func lastLines(s string, n int) string {
	ls := lines(s)
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

func TestSpecCheck(t *testing.T) {
	tr := newTree(t)
	b := newBundle(t, tr, "/slurmrun", "run")
	r := runBin(t, tr.env, "spec", "--check", b)
	if r.code != 0 || !strings.Contains(r.stdout, "the flow has what it needs") {
		t.Fatalf("good bundle: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// What a hand-made bundle typically lacks.
	var spec map[string]any
	data := must.Read(t, filepath.Join(b, "config.json"))
	json.Unmarshal(data, &spec)
	proc := spec["process"].(map[string]any)
	proc["env"] = []string{"PATH=/usr/bin"}
	proc["args"] = []string{"/usr/bin/pytest"}
	proc["rlimits"] = nil
	spec["mounts"] = []any{}
	data, _ = json.Marshal(spec)
	must.Do(t, os.WriteFile(filepath.Join(b, "config.json"), data, 0o644))
	r = runBin(t, tr.env, "spec", "--check", b)
	if r.code != 1 {
		t.Fatalf("bad bundle: exit code %d\n%s", r.code, r.stdout)
	}
	for _, want := range []string{"problem: process.env: resourcePathNode is not set", "problem: process.env: pytestCommand is not set",
		"warning: process.args", "warning: mounts: no /dev/shm", "warning: rlimits: RLIMIT_NOFILE 0"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("check lacks %q:\n%s", want, r.stdout)
		}
	}
}

// ociConf points Slurm's OCI containers at slurmrun oci-run (read per step).
func ociConf(t testing.TB) {
	t.Helper()
	conf := `RunTimeRun="` + binary + ` oci-run --bundle %b --id %n.%u.%j.%s.%t --node %n --task %t"
RunTimeQuery="crun --root=/run/crun-slurm state %n.%u.%j.%s.%t"
RunTimeKill="crun --root=/run/crun-slurm kill -a %n.%u.%j.%s.%t"
RunTimeDelete="crun --root=/run/crun-slurm delete --force %n.%u.%j.%s.%t"
`
	// The host's oci.conf (or its absence) comes back after the test: one
	// naming this test's temporary binary would break every later
	// `srun --container` on the cluster.
	const path = "/etc/slurm/oci.conf"
	before, err := os.ReadFile(path)
	existed := err == nil
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if existed {
			must.Do(t, os.WriteFile(path, before, 0o644))
		} else {
			os.Remove(path)
		}
	})
}

// slurmContainerTree is a fixture for jobs in Slurm's OCI containers.
func slurmContainerTree(t *testing.T) *tree {
	slurmUp(t)
	runtimeUp(t)
	ociConf(t)
	tr := newTree(t)
	// Slurm sets these for the job; the tree's stand-ins would confuse srun.
	for _, k := range []string{"SLURM_JOB_ID", "SLURM_PROCID", "SLURM_JOB_NUM_NODES"} {
		delete(tr.env, k)
	}
	return tr
}

// Two nodes, one task each, in Slurm's own OCI containers: each rank gets
// its SLURM_PROCID from oci-run and writes its result file.
func TestSlurmContainerTwoNodes(t *testing.T) {
	tr := slurmContainerTree(t)
	// A two-node job keeps the Slurm variables: the single-node test does not apply.
	tr.env["pytestCommand"] = tr.pytest("test_demo.py", "-k", "'not single_node'")
	b := newBundle(t, tr, "/slurmrun", "run")
	cmd := exec.Command("timeout", "120", "srun", "-N2", "--ntasks-per-node=1", "--container="+b, "/slurmrun", "run")
	for k, v := range tr.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("srun --container: %v\n%s", err, out)
	}
	for rank := 0; rank < 2; rank++ {
		res := resultOf(t, tr.ws, rank)
		if res.Final != 0 || res.Rank != rank {
			t.Errorf("rank %d: %+v", rank, res)
		}
	}
	mustContainInOrder(t, string(out), "Rank1 Final Slurm run finished execution with exit code 0")
	mustContainInOrder(t, string(out), "Rank0 Final Slurm run finished execution with exit code 0")
	t.Logf("srun --container output (tail):\n%s", lastLines(string(out), 3))
}

func TestSlurmContainerCancelled(t *testing.T) {
	tr := slurmContainerTree(t)
	mark := filepath.Join(tr.dir, "sleeping")
	tr.env["SLEEP_MARK"] = mark
	tr.env["pytestCommand"] = tr.pytest("test_cases.py::test_sleep")
	b := newBundle(t, tr, "/slurmrun", "run")
	id := cancelMidPytest(t, tr, mark, "srun -N2 --ntasks-per-node=1 --container="+b+" /slurmrun run")
	out, _ := exec.Command("crun", "--root=/run/crun-slurm", "list", "-q").Output()
	if strings.Contains(string(out), "."+id+".") {
		t.Errorf("containers left: %s", out)
	}
}

// cancelMidPytest submits script as a two-node batch job whose pytest
// sleeps (it writes mark first), scancels the job once it sleeps, and checks
// that both ranks recorded 143 and the signal. It returns the job id.
func cancelMidPytest(t *testing.T, tr *tree, mark, script string) string {
	t.Helper()
	j := &disaggJob{tr: tr, out: tr.dir, env: tr.env}
	id := j.submitScript(t, script)
	if !waitFile(mark, 2*time.Minute) {
		log := must.Show(filepath.Join(tr.ws, "job-output.log"))
		t.Fatalf("pytest never started sleeping\n%s", log)
	}
	time.Sleep(500 * time.Millisecond)
	exec.Command("scancel", id).Run()
	waitJob(t, id, time.Minute)
	for rank := 0; rank < 2; rank++ {
		res := resultOf(t, tr.ws, rank)
		if res.Final != 143 || res.Signal != "terminated" {
			t.Errorf("rank %d: final %d signal %q", rank, res.Final, res.Signal)
		}
	}
	return id
}

// spec --check says a bundle is broken exactly when crun cannot run the
// flow in it: the binary hidden by a bind of /usr, and resourcePathNode on
// the host but under the container's own /tmp tmpfs.
func TestSpecCheckAgreesWithCrun(t *testing.T) {
	runtimeUp(t)
	unbound, err := os.MkdirTemp("/tmp", "slurmrun-unbound-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(unbound)
	if _, err := os.Stat("/usr/local/bin/slurmrun"); err == nil {
		t.Fatal("the host has /usr/local/bin/slurmrun: the hidden-binary case cannot be made")
	}
	for _, tc := range []struct {
		name, binary, problem string
		env                   map[string]string
	}{
		{"binary hidden by the bind of /usr", "/usr/local/bin/slurmrun", "problem: process.args[0] /usr/local/bin/slurmrun: the bind of /usr", nil},
		{"resourcePathNode under the tmpfs", "/slurmrun", "under the tmpfs mount at /tmp", map[string]string{"resourcePathNode": unbound}},
	} {
		tr := newTree(t)
		tr.env["perfMode"] = "false"
		b := newBundle(t, tr, tc.binary, "run")
		// Set after spec (which binds resourcePathNode when it knows it),
		// as a hand-edited or reused bundle has it.
		for k, v := range tc.env {
			var spec map[string]any
			data := must.Read(t, filepath.Join(b, "config.json"))
			json.Unmarshal(data, &spec)
			proc := spec["process"].(map[string]any)
			var env []any
			for _, kv := range proc["env"].([]any) {
				if !strings.HasPrefix(kv.(string), k+"=") {
					env = append(env, kv)
				}
			}
			proc["env"] = append(env, k+"="+v)
			data, _ = json.Marshal(spec)
			must.Do(t, os.WriteFile(filepath.Join(b, "config.json"), data, 0o600))
		}
		data := must.Read(t, binary)
		must.Do(t, os.MkdirAll(filepath.Join(b, "rootfs", "usr", "local", "bin"), 0o755))
		must.Do(t, os.WriteFile(filepath.Join(b, "rootfs", "usr", "local", "bin", "slurmrun"), data, 0o755))
		r := runBin(t, tr.env, "spec", "--check", b)
		if r.code != 1 || !strings.Contains(r.stdout, tc.problem) {
			t.Errorf("%s: check exit code %d, want 1 with %q:\n%s", tc.name, r.code, tc.problem, r.stdout)
		}
		id := "slurmrun-check-" + filepath.Base(filepath.Dir(tr.dir))
		out, err := exec.Command("timeout", "60", "crun", "run", "--bundle", b, id).CombinedOutput()
		exec.Command("crun", "delete", "--force", id).Run()
		if err == nil || strings.Contains(string(out), "Final Slurm run finished execution with exit code 0") {
			t.Errorf("%s: crun ran the flow:\n%s", tc.name, out)
		}
		t.Logf("%s: crun: %v: %s", tc.name, err, lastLines(string(out), 1))
	}
}
