package oci

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/slurmrun/slurmrun/internal/safename"
)

// TaskIdentity is what Slurm 22.05 leaves empty inside `srun --container`
// (one task per node): derived from the node's place in the step's node list.
type TaskIdentity struct {
	Node      string // %n
	LocalTask int    // %t
	Nodes     []string
}

// Env returns the per-task variables for the node.
func (t TaskIdentity) Env() ([]string, error) {
	idx := -1
	for i, n := range t.Nodes {
		if n == t.Node {
			idx = i
		}
	}
	if idx < 0 {
		return nil, fmt.Errorf("node %s is not in the step's node list %v", t.Node, t.Nodes)
	}
	// One task per node: the node's index is the global rank too.
	return []string{
		"SLURM_PROCID=" + strconv.Itoa(idx),
		"SLURM_LOCALID=" + strconv.Itoa(t.LocalTask),
		"SLURM_NODEID=" + strconv.Itoa(idx),
		"SLURMD_NODENAME=" + t.Node,
	}, nil
}

// TaskBundle writes, under stateDir/<id>, a bundle whose config.json is the
// original's with the per-task variables set, and whose root is the original
// rootfs (by absolute path): the shared bundle itself is never modified, so
// tasks on nodes sharing a filesystem cannot race on it.
//
// The node list is the step's, from the environment Slurm put into the
// bundle (the RunTimeRun command itself does not get it); hostnames expands it.
func TaskBundle(bundle, stateDir, id string, task TaskIdentity, hostnames func(string) ([]string, error)) (string, error) {
	// The id names a directory under stateDir, nothing else.
	if err := safename.Check("container id", id); err != nil {
		return "", err
	}
	s, err := ReadSpec(bundle)
	if err != nil {
		return "", err
	}
	if s.Process == nil || s.Root == nil {
		return "", fmt.Errorf("%s/config.json: no process or root", bundle)
	}
	if len(task.Nodes) == 0 {
		list := ""
		for _, kv := range s.Process.Env {
			if v, ok := strings.CutPrefix(kv, "SLURM_STEP_NODELIST="); ok && v != "" {
				list = v
			}
		}
		if list == "" {
			return "", fmt.Errorf("%s/config.json: SLURM_STEP_NODELIST is not set: cannot tell this node's rank", bundle)
		}
		if task.Nodes, err = hostnames(list); err != nil {
			return "", err
		}
	}
	vars, err := task.Env()
	if err != nil {
		return "", err
	}
	s.Process.Env = setEnv(s.Process.Env, vars)
	if !filepath.IsAbs(s.Root.Path) {
		abs, err := filepath.Abs(filepath.Join(bundle, s.Root.Path))
		if err != nil {
			return "", err
		}
		s.Root = &specs.Root{Path: abs, Readonly: s.Root.Readonly}
	}
	dir := filepath.Join(stateDir, id)
	if err := WriteSpec(dir, s); err != nil {
		return "", err
	}
	return dir, nil
}

// setEnv replaces or adds NAME=VALUE entries; an entry that is present but
// empty (as Slurm leaves them) is replaced too.
func setEnv(env, vars []string) []string {
	out := make([]string, 0, len(env)+len(vars))
	set := map[string]string{}
	for _, kv := range vars {
		k, _, _ := strings.Cut(kv, "=")
		set[k] = kv
	}
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if _, ok := set[k]; !ok {
			out = append(out, kv)
		}
	}
	return append(out, vars...)
}

// RemoveTaskBundle removes what TaskBundle wrote.
func RemoveTaskBundle(dir string) error {
	if err := os.Remove(filepath.Join(dir, "config.json")); err != nil && !os.IsNotExist(err) {
		return err
	}
	return os.Remove(dir)
}
