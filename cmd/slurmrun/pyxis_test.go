package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slurmrun/slurmrun/internal/must"
)

// pyxisUp makes sure the local Slurm has pyxis and enroot
// (scripts/pyxis-setup.sh, run by `make test` as root).
func pyxisUp(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		// enroot's data, cache and runtime directories are set up for root.
		t.Skip("the local pyxis and enroot (scripts/pyxis-setup.sh) are set up for root")
	}
	slurmUp(t)
	if out, _ := exec.Command("srun", "--help").Output(); strings.Contains(string(out), "--container-image") {
		return
	}
	if b, err := exec.Command("../../scripts/pyxis-setup.sh").CombinedOutput(); err != nil {
		t.Fatalf("cannot set up pyxis: %v\n%s", err, b)
	}
}

// pyxisImage is the test image: the static binary alone at
// /usr/local/bin/slurmrun, with merged-/usr links so that the host's
// userland mounted in (/usr/bin, /usr/lib, /usr/lib64) gives it /bin/sh and
// python3. No registry is reachable here, and building a Debian image
// offline would test Debian, not slurmrun.
func pyxisImage(t testing.TB) string { return pyxisImageWith(t, nil) }

// pyxisImageWith adds files (path in the image: content) to the image:
// /etc/rc is what enroot runs as the image's entrypoint (enroot import
// writes it from ENTRYPOINT), /etc/environment its ENV.
func pyxisImageWith(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "rootfs")
	for _, d := range []string{"usr/local/bin", "usr/bin", "usr/lib", "usr/lib64", "usr/sbin", "etc", "tmp", "proc", "sys", "dev", "run", "root", "var/tmp"} {
		must.Do(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	for link, target := range map[string]string{"bin": "usr/bin", "lib": "usr/lib", "lib64": "usr/lib64", "sbin": "usr/sbin"} {
		must.Do(t, os.Symlink(target, filepath.Join(root, link)))
	}
	data, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	must.Do(t, os.WriteFile(filepath.Join(root, "usr/local/bin/slurmrun"), data, 0o755))
	for name, content := range files {
		must.Do(t, os.WriteFile(filepath.Join(root, name), []byte(content), 0o755))
	}
	img := filepath.Join(dir, "slurmrun.sqsh")
	if out, err := exec.Command("mksquashfs", root, img, "-noappend", "-all-root", "-quiet").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v\n%s", err, out)
	}
	return img
}

// pyxisEnv is what the README tells users to name in --container-env, and
// PATH: the job's venv must stay first (pyxis gives the task the image's
// PATH otherwise).
const pyxisEnv = "pytestCommand,stageName,resourcePathNode,jobWorkspace,coverageConfigFile,perfMode,PATH"

// pyxisSrun is the srun line for tr on nodes nodes, one task each, the
// container's command last.
func pyxisSrun(tr *tree, img string, nodes int, command ...string) []string {
	mounts := strings.Join([]string{"/usr/bin:/usr/bin", "/usr/lib:/usr/lib", "/usr/lib64:/usr/lib64",
		tr.dir + ":" + tr.dir, filepath.Dir(binary) + ":" + filepath.Dir(binary)}, ",")
	return append([]string{"srun", fmt.Sprintf("-N%d", nodes), "--ntasks-per-node=1", "--container-image=" + img,
		"--container-mounts=" + mounts, "--container-workdir=" + tr.dir, "--container-env=" + pyxisEnv}, command...)
}

func pyxisTree(t *testing.T) *tree {
	pyxisUp(t)
	tr := newTree(t)
	// Slurm sets these for the job.
	for _, k := range []string{"SLURM_JOB_ID", "SLURM_PROCID", "SLURM_JOB_NUM_NODES"} {
		delete(tr.env, k)
	}
	must.Do(t, os.MkdirAll(tr.ws, 0o755))
	return tr
}

// srun --container-image on two nodes: rank 0 and 1 with their
// SLURM_PROCID, the wheel placeholder filled from inside the container, the
// records and the Rank lines; a failing test fails the step and both
// records say so.
func TestPyxisTwoNodes(t *testing.T) {
	tr := pyxisTree(t)
	img := pyxisImage(t)
	for _, tt := range []struct {
		selection string
		final     int
	}{{"test_demo.py -k 'not single_node'", 0}, {"test_cases.py::test_fail", 1}} {
		os.RemoveAll(filepath.Join(tr.ws, "slurmrun"))
		tr.env["pytestCommand"] = tr.pytest(tt.selection)
		argv := append([]string{"timeout", "180"}, pyxisSrun(tr, img, 2, "/usr/local/bin/slurmrun", "run")...)
		cmd := exec.Command(argv[0], argv[1:]...)
		for k, v := range tr.env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		out, err := cmd.CombinedOutput()
		if (err == nil) != (tt.final == 0) {
			t.Fatalf("%s: srun: %v\n%s", tt.selection, err, out)
		}
		for rank := 0; rank < 2; rank++ {
			res := resultOf(t, tr.ws, rank)
			if res.Rank != rank || res.Final != tt.final || res.StepID == "" {
				t.Errorf("%s: rank %d: rank %d final %d step %q", tt.selection, rank, res.Rank, res.Final, res.StepID)
			}
		}
		for rank := 0; rank < 2; rank++ {
			mustContainInOrder(t, string(out), "TRTLLM WHEEL PATH: "+siteDir,
				"Rank"+string(rune('0'+rank))+" Final Slurm run finished execution with exit code "+string(rune('0'+tt.final)))
		}
		t.Logf("%s: srun --container-image output (tail):\n%s", tt.selection, lastLines(string(out), 2))
	}
}

// scancel mid-pytest: every rank records 143 and the signal, nothing of the
// step is left on the host, and pyxis has removed its containers.
func TestPyxisCancelled(t *testing.T) {
	tr := pyxisTree(t)
	img := pyxisImage(t)
	mark := filepath.Join(tr.dir, "sleeping")
	tr.env["SLEEP_MARK"] = mark
	tr.env["pytestCommand"] = tr.pytest("test_cases.py::test_sleep")
	line := pyxisSrun(tr, img, 2, "/usr/local/bin/slurmrun", "run")
	line[len(line)-3] = strings.Replace(line[len(line)-3], pyxisEnv, pyxisEnv+",SLEEP_MARK", 1)
	id := cancelMidPytest(t, tr, mark, strings.Join(line, " "))
	if out, _ := exec.Command("pgrep", "-f", "test_cases.py::test_sleep").Output(); len(out) > 0 {
		t.Errorf("processes of the step left: %s", out)
	}
	if left, _ := filepath.Glob("/var/tmp/enroot-test/*/data/pyxis_" + id + ".*"); len(left) > 0 {
		t.Errorf("enroot containers left: %v", left)
	}
}

// hostMounts gives an image holding only slurmrun the host's userland.
const hostMounts = "--container-mounts=/usr/bin:/usr/bin,/usr/lib:/usr/lib,/usr/lib64:/usr/lib64"

// pyxisRun runs srun with env added to the job's environment, bounded.
func pyxisRun(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command("timeout", append([]string{"60", "srun"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	if code == 124 {
		t.Fatalf("srun %q still running after 60 s:\n%s", args, out)
	}
	return string(out), code
}

// The image's ENTRYPOINT is slurmrun exec --. pyxis runs it only when asked
// (--container-entrypoint, or execute_entrypoint=1 in plugstack), and then
// as a stop probe (ENTRYPOINT sh -c 'kill -STOP $$ ; exit 0'): slurmrun
// mirrors the stop, so the step starts, and the task's exit code passes
// through srun. (tini as the entrypoint hangs there until cancelled.)
func TestPyxisEntrypoint(t *testing.T) {
	pyxisUp(t)
	img := pyxisImageWith(t, map[string]string{"etc/rc": "#!/bin/sh\nexec /usr/local/bin/slurmrun exec -- \"$@\"\n"})
	task := []string{"sh", "-c", "echo rank=$SLURM_PROCID; exit 7"}
	for _, entrypoint := range []string{"--container-entrypoint", "--no-container-entrypoint"} {
		out, code := pyxisRun(t, nil, append([]string{"-N2", "--ntasks-per-node=1", entrypoint, "--container-image=" + img, hostMounts}, task...)...)
		if code != 7 || !strings.Contains(out, "rank=0") || !strings.Contains(out, "rank=1") {
			t.Errorf("%s: exit code %d, want 7 from both tasks:\n%s", entrypoint, code, out)
		}
	}
}

// Which value a task sees for a variable the image sets (/etc/environment)
// and the job sets too: the image's, unless --container-env names it. PATH
// is the image's, HOME is /root, LANG is dropped: what the README says.
func TestPyxisEnvironmentPrecedence(t *testing.T) {
	pyxisUp(t)
	img := pyxisImageWith(t, map[string]string{"etc/environment": "PRECEDENCE=image\n"})
	env := []string{"PRECEDENCE=job", "LANG=C.UTF-8", "PATH=/opt/job/bin:/usr/bin:/bin"}
	show := []string{"sh", "-c", "echo PRECEDENCE=$PRECEDENCE PATH=$PATH HOME=$HOME LANG=${LANG-unset}"}
	out, _ := pyxisRun(t, env, append([]string{"-N1", "--container-image=" + img, hostMounts}, show...)...)
	if want := "PRECEDENCE=image PATH=/usr/bin:/bin:/usr/sbin:/sbin HOME=/root LANG=unset"; !strings.Contains(out, want) {
		t.Errorf("without --container-env: want %q, got:\n%s", want, out)
	}
	out, _ = pyxisRun(t, env, append([]string{"-N1", "--container-image=" + img, hostMounts, "--container-env=PRECEDENCE,PATH,LANG"}, show...)...)
	if want := "PRECEDENCE=job PATH=/opt/job/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8"; !strings.Contains(out, want) {
		t.Errorf("with --container-env: want %q, got:\n%s", want, out)
	}
}

// The image pipeline end to end: `make sqsh` (make image, then enroot
// import from podman's store) on a base image made here offline, and the
// .sqsh run by pyxis on two nodes through its ENTRYPOINT.
func TestImageToSquashfsUnderPyxis(t *testing.T) {
	pyxisUp(t)
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skip("podman is not installed (make deps installs it)")
	}
	dir := t.TempDir()
	// The base: merged-/usr links and the mount points, as a distribution
	// image has them; the userland itself is the host's, mounted in.
	base := fmt.Sprintf("localhost/slurmrun-testbase:%d", os.Getpid())
	tag := fmt.Sprintf("localhost/slurmrun-sqsh:%d", os.Getpid())
	sqsh := filepath.Join(dir, "slurmrun.sqsh")
	script := "set -e; r=" + dir + "/base; mkdir -p $r/usr/bin $r/usr/lib $r/usr/lib64 $r/usr/sbin $r/etc $r/tmp; " +
		"ln -s usr/bin $r/bin; ln -s usr/lib $r/lib; ln -s usr/lib64 $r/lib64; ln -s usr/sbin $r/sbin; " +
		"tar -C $r -c . | podman import - " + base
	if out, err := exec.Command("sh", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("base image: %v\n%s", err, out)
	}
	defer exec.Command("podman", "rmi", "-f", tag, base).Run()
	build := exec.Command("make", "-C", "../..", "sqsh", "PREBUILT=1", "BASE_IMAGE="+base, "IMAGE="+tag, "SQSH="+sqsh)
	// enroot's cache and data for the import: this test's, not the nodes'.
	build.Env = append(os.Environ(), "ENROOT_CACHE_PATH="+dir+"/cache", "ENROOT_DATA_PATH="+dir+"/data", "ENROOT_RUNTIME_PATH="+dir+"/run")
	out, err := build.CombinedOutput()
	if err != nil {
		t.Fatalf("make sqsh: %v\n%s", err, out)
	}
	t.Logf("make sqsh:\n%s", lastLines(string(out), 2))
	got, code := pyxisRun(t, nil, "-N2", "--ntasks-per-node=1", "--container-entrypoint", "--container-image="+sqsh, hostMounts,
		"sh", "-c", "/usr/local/bin/slurmrun version; cat /proc/$$/status | grep PPid; exit 5")
	if code != 5 || strings.Count(got, "slurmrun ") < 2 {
		t.Fatalf("srun the .sqsh: exit code %d, want 5 with the version from both tasks:\n%s", code, got)
	}
	t.Logf("srun --container-image=%s:\n%s", filepath.Base(sqsh), lastLines(got, 4))
}

// slurmrun launch with --container-image among its srun arguments, as
// upstream launches disaggregated jobs: every role's step runs the image's
// slurmrun (the default binary in container steps), and the happy path
// holds on two nodes.
func TestPyxisLaunch(t *testing.T) {
	pyxisUp(t)
	img := pyxisImage(t)
	// The steps run the image's slurmrun: that they ran at all shows they
	// ran in pyxis's containers, as long as the host has none there.
	if _, err := os.Stat("/usr/local/bin/slurmrun"); err == nil {
		t.Fatal("the host has /usr/local/bin/slurmrun: the test could not tell the image's apart")
	}
	j := newDisaggJob(t)
	mounts := strings.Join([]string{"/usr/bin:/usr/bin", "/usr/lib:/usr/lib", "/usr/lib64:/usr/lib64",
		j.tr.dir + ":" + j.tr.dir, filepath.Dir(binary) + ":" + filepath.Dir(binary)}, ",")
	id := j.submit(t, "--container-image="+img, "--container-mounts="+mounts, "--container-workdir="+j.tr.dir,
		"--container-env=PATH")
	waitJob(t, id, 3*time.Minute)
	s, log := j.summary(t, id)
	if s.ExitCode != 0 {
		roles := must.Show(filepath.Join(j.tr.ws, "disagg_server.log"))
		t.Fatalf("exit code %d\n%s\ndisagg_server.log:\n%s", s.ExitCode, log, roles)
	}
	for role, ranks := range map[string]int{"GEN_0": 2, "CTX_0": 2, "DISAGG_SERVER": 1, "BENCHMARK": 1} {
		r := rowOf(t, s, role)
		if r.ExitCode == nil || *r.ExitCode != 0 || r.Ranks != ranks {
			t.Errorf("%s: %+v", role, r)
		}
	}
	noRolesLeft(t, j)
	t.Logf("launch in containers:\n%s", lastLines(log, 6))
}
