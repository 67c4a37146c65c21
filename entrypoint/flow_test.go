package entrypoint

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/slurmrun/slurmrun/config"
	"github.com/slurmrun/slurmrun/container"
	"github.com/slurmrun/slurmrun/internal/redact"
	"github.com/slurmrun/slurmrun/proc"

	"github.com/slurmrun/slurmrun/internal/must"
)

// The commands the tests start take the inherited signal state through
// this binary (see container.SignalState.Apply).
func TestMain(m *testing.M) {
	container.DispatchSigExec()
	os.Exit(m.Run())
}

// newTestFlow is a flow over an empty tree in dir whose output is discarded.
func newTestFlow(t *testing.T, dir string) *Flow {
	t.Helper()
	log := logrus.New()
	log.SetOutput(io.Discard)
	sup := proc.New(logrus.NewEntry(log), container.Inherited())
	seed, err := config.Resolve("seed", nil)
	must.Do(t, err)
	cfg := &config.Run{ResourcePathNode: dir, StageName: "T-Disagg", Python: "python3", Common: config.Common{Grace: time.Second}, Version: seed}
	environ := []string{"PATH=" + os.Getenv("PATH"), "DROP=1"}
	f := NewFlow(cfg, environ, redact.New(environ), logrus.NewEntry(log), sup, io.Discard, io.Discard)
	must.Do(t, os.MkdirAll(f.defsDir, 0o755))
	f.childEnv = f.env.Clone()
	if _, err := os.Stat(filepath.Join(dir)); err != nil {
		t.Fatal(err)
	}
	return f
}

// Every step variant of every version and opt-in has its code: a row of
// config.Versions cannot name a step the flow would panic on.
func TestEveryStepVariantHasItsCode(t *testing.T) {
	steps := map[config.Step]bool{config.ScrubKeepList: true}
	for _, v := range config.Versions() {
		for _, s := range v.Steps {
			steps[s] = true
		}
	}
	for s := range steps {
		if _, ok := implementations()[s]; !ok && s != config.PreHooks && s != config.PostHooks {
			t.Errorf("no code for step variant %s (%s)", s.Variant, s.Name)
		}
	}
}
