package entrypoint

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/slurmrun/slurmrun/container"
)

// newTestFlow is a flow over an empty tree in dir whose output is discarded.
func newTestFlow(t *testing.T, dir string) *Flow {
	t.Helper()
	log := logrus.New()
	log.SetOutput(io.Discard)
	sup := container.NewSupervisor(logrus.NewEntry(log), container.Options{})
	t.Cleanup(sup.Close)
	cfg := &Config{ResourcePathNode: dir, StageName: "T-Disagg", Python: "python3", Grace: 1e9}
	f := NewFlow(cfg, []string{"PATH=" + os.Getenv("PATH"), "DROP=1"}, logrus.NewEntry(log), sup, io.Discard, io.Discard)
	os.MkdirAll(f.defsDir, 0o755)
	f.childEnv = f.env.Clone()
	if _, err := os.Stat(filepath.Join(dir)); err != nil {
		t.Fatal(err)
	}
	return f
}
