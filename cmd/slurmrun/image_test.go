package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slurmrun/slurmrun/internal/must"
)

// The image: `make image` with a prebuilt binary on an empty base (no
// registry is reachable here), its entrypoint, and `slurmrun version` run
// from its exported rootfs with crun, through that entrypoint.
func TestImageWithPrebuiltBinary(t *testing.T) {
	runtimeUp(t)
	if _, err := exec.LookPath("podman"); err != nil {
		if _, err := exec.LookPath("buildah"); err != nil {
			t.Skip("neither podman nor buildah is installed (make deps installs podman)")
		}
	}
	tag := fmt.Sprintf("localhost/slurmrun-test:%d", os.Getpid())
	build := exec.Command("make", "-C", "../..", "image", "PREBUILT=1", "BASE_IMAGE=scratch", "IMAGE="+tag)
	out, err := build.CombinedOutput()
	if err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	t.Logf("make image:\n%s", lastLines(string(out), 4))
	tool := "podman"
	if _, err := exec.LookPath("podman"); err != nil {
		tool = "buildah"
	}
	defer exec.Command(tool, "rmi", "-f", tag).Run()
	meta, err := exec.Command(tool, "inspect", "--format", "{{json .Config.Entrypoint}} {{json .Config.Cmd}}", tag).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(meta)); got != `["/usr/local/bin/slurmrun","exec","--"] ["/bin/bash"]` {
		t.Errorf("entrypoint and cmd: %s", got)
	}
	if strings.Contains(string(meta), "Env") {
		t.Errorf("the image sets configuration variables: %s", meta)
	}

	bundle := t.TempDir()
	rootfs := filepath.Join(bundle, "rootfs")
	must.Do(t, os.Mkdir(rootfs, 0o755))
	var cid string
	if tool == "podman" {
		o, err := exec.Command("podman", "create", tag).Output()
		if err != nil {
			t.Fatal(err)
		}
		cid = strings.TrimSpace(string(o))
		defer exec.Command("podman", "rm", "-f", cid).Run()
		exp := exec.Command("sh", "-c", "podman export "+cid+" | tar -x -C "+rootfs)
		if o, err := exp.CombinedOutput(); err != nil {
			t.Fatalf("export: %v\n%s", err, o)
		}
	} else {
		o, err := exec.Command("buildah", "from", tag).Output()
		if err != nil {
			t.Fatal(err)
		}
		cid = strings.TrimSpace(string(o))
		defer exec.Command("buildah", "rm", cid).Run()
		mnt, err := exec.Command("buildah", "mount", cid).Output()
		if err != nil {
			t.Fatal(err)
		}
		if o, err := exec.Command("cp", "-a", strings.TrimSpace(string(mnt))+"/.", rootfs).CombinedOutput(); err != nil {
			t.Fatal(err, string(o))
		}
	}
	for _, d := range []string{"proc", "dev", "sys", "tmp"} {
		must.Do(t, os.MkdirAll(filepath.Join(rootfs, d), 0o755))
	}
	// The image's entrypoint, then the command a user would give.
	r := runBin(t, map[string]string{"PATH": os.Getenv("PATH")}, "spec", "--bundle", bundle, "--shm-size", "64m", "--",
		"/usr/local/bin/slurmrun", "exec", "--", "/usr/local/bin/slurmrun", "version")
	if r.code != 0 {
		t.Fatal(r.stderr)
	}
	id := fmt.Sprintf("slurmrun-image-%d", os.Getpid())
	got, err := exec.Command("crun", "run", "--bundle", bundle, id).CombinedOutput()
	exec.Command("crun", "delete", "--force", id).Run()
	if err != nil {
		t.Fatalf("crun run: %v\n%s", err, got)
	}
	if !strings.HasPrefix(string(got), "slurmrun ") {
		t.Fatalf("version from the image: %q", got)
	}
	t.Logf("from the image: %s", strings.TrimSpace(string(got)))
}
