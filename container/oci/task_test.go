package oci

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/slurmrun/slurmrun/internal/must"
)

// An id that is not one plain name cannot place the task's bundle, or its
// removal, outside the state directory: the shared bundle stays as it was.
func TestTaskBundleConfinesTheID(t *testing.T) {
	root := t.TempDir()
	bundle := filepath.Join(root, "bundle")
	state := filepath.Join(root, "state")
	s := NewSpec(SpecOptions{Args: []string{"/slurmrun", "run"}, Env: []string{"SLURM_STEP_NODELIST=node1"}})
	if err := WriteSpec(bundle, s); err != nil {
		t.Fatal(err)
	}
	before := must.Read(t, filepath.Join(bundle, "config.json"))
	nodes := func(string) ([]string, error) { return []string{"node1"}, nil }
	for _, id := range []string{"../bundle", "..", "a/b", "/abs", ""} {
		if dir, err := TaskBundle(bundle, state, id, TaskIdentity{Node: "node1"}, nodes); err == nil {
			RemoveTaskBundle(dir)
			t.Errorf("id %q accepted (%s)", id, dir)
		}
	}
	after, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil || !bytes.Equal(before, after) {
		t.Fatalf("the shared bundle changed: %v", err)
	}
	dir, err := TaskBundle(bundle, state, "node1.root.7.0.0", TaskIdentity{Node: "node1"}, nodes)
	if err != nil || filepath.Dir(dir) != state {
		t.Fatalf("a plain id: %s %v", dir, err)
	}
	if err := RemoveTaskBundle(dir); err != nil {
		t.Fatal(err)
	}
}
