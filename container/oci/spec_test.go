package oci

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slurmrun/slurmrun/internal/must"
)

// checkOf runs CheckSpec on a bundle whose rootfs holds the given files.
func checkOf(t *testing.T, o SpecOptions, rootfsFiles ...string) []Finding {
	t.Helper()
	bundle := t.TempDir()
	rootfs := filepath.Join(bundle, "rootfs")
	for _, f := range rootfsFiles {
		must.Do(t, os.MkdirAll(filepath.Dir(filepath.Join(rootfs, f)), 0o755))
		if strings.HasSuffix(f, "/") {
			must.Do(t, os.MkdirAll(filepath.Join(rootfs, f), 0o755))
		} else {
			must.Do(t, os.WriteFile(filepath.Join(rootfs, f), []byte("x"), 0o755))
		}
	}
	s := NewSpec(o)
	if err := WriteSpec(bundle, s); err != nil {
		t.Fatal(err)
	}
	return CheckSpec(bundle, s, []string{"resourcePathNode"}, []string{"jobWorkspace", "resourcePathNode"})
}

func findings(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(f.Text + "\n")
	}
	return b.String()
}

// Every mount point spec writes, as a distribution rootfs has them.
var mountPoints = []string{"proc/", "dev/", "sys/", "tmp/"}

func TestCheckSpecJudgesPathsAsTheContainerSeesThem(t *testing.T) {
	host := t.TempDir()
	must.Do(t, os.MkdirAll(filepath.Join(host, "res"), 0o755))
	emptyUsr := t.TempDir()
	tests := []struct {
		name    string
		o       SpecOptions
		files   []string
		problem string // "" for none
	}{
		{"fresh spec, everything there",
			SpecOptions{Args: []string{"/usr/local/bin/slurmrun", "run"}, Env: []string{"resourcePathNode=" + host + "/res"},
				Binds: []Bind{{Source: host, Destination: host}}},
			append([]string{"usr/local/bin/slurmrun", strings.TrimPrefix(host, "/") + "/"}, mountPoints...), ""},
		{"resourcePathNode under spec's /tmp tmpfs",
			SpecOptions{Args: []string{"/usr/local/bin/slurmrun", "run"}, Env: []string{"resourcePathNode=/tmp/res"}},
			append([]string{"usr/local/bin/slurmrun", "tmp/res/"}, mountPoints...), "under the tmpfs mount at /tmp"},
		{"the binary hidden by a bind of /usr",
			SpecOptions{Args: []string{"/usr/local/bin/slurmrun", "run"}, Env: []string{"resourcePathNode=/"},
				Binds: []Bind{{Source: emptyUsr, Destination: "/usr", ReadOnly: true}}},
			append([]string{"usr/local/bin/slurmrun"}, mountPoints...), "process.args[0] /usr/local/bin/slurmrun: the bind of"},
		{"the binary not in the rootfs",
			SpecOptions{Args: []string{"/usr/local/bin/slurmrun", "run"}, Env: []string{"resourcePathNode=/"}},
			mountPoints, "not in the rootfs"},
	}
	for _, tt := range tests {
		got := checkOf(t, tt.o, tt.files...)
		var problems []string
		for _, f := range got {
			if f.Problem {
				problems = append(problems, f.Text)
			}
		}
		switch {
		case tt.problem == "" && len(problems) > 0:
			t.Errorf("%s: problems %q", tt.name, problems)
		case tt.problem != "" && !strings.Contains(strings.Join(problems, "\n"), tt.problem):
			t.Errorf("%s: want a problem %q, got:\n%s", tt.name, tt.problem, findings(got))
		}
		// spec's own limits and mount points are never warned about.
		if text := findings(got); strings.Contains(text, "rlimits:") || strings.Contains(text, "not a directory in the rootfs") {
			t.Errorf("%s: warns about what spec wrote:\n%s", tt.name, text)
		}
	}
}

func TestCheckSpecWarnsAboutMissingMountPoints(t *testing.T) {
	got := findings(checkOf(t, SpecOptions{Args: []string{"/slurmrun", "run"}, Env: []string{"resourcePathNode=/"}}, "slurmrun"))
	for _, d := range []string{"/proc", "/dev", "/sys", "/tmp"} {
		if !strings.Contains(got, "mounts: "+d+" is not a directory in the rootfs") {
			t.Errorf("no warning for %s:\n%s", d, got)
		}
	}
	if strings.Contains(got, "/dev/pts is not") || strings.Contains(got, "/dev/shm is not") {
		t.Errorf("warned about a mount point inside another mount:\n%s", got)
	}
}
