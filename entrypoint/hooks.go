package entrypoint

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Hook phases: the directories under SLURMRUN_HOOKS.
const (
	prePytest  = "pre-pytest"
	postPytest = "post-pytest"
)

// findHooks lists the executables of dir/<phase>.d in name order, as
// run-parts does: regular files (or links to them) with an execute bit,
// dotfiles and editor backups (~) left out. No directory is no hooks.
func findHooks(dir, phase string) ([]string, error) {
	if dir == "" {
		return nil, nil
	}
	d := filepath.Join(dir, phase+".d")
	entries, err := os.ReadDir(d)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("SLURMRUN_HOOKS: %w", err)
	}
	var hooks []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") {
			continue
		}
		fi, err := os.Stat(filepath.Join(d, name))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			continue
		}
		hooks = append(hooks, filepath.Join(d, name))
	}
	sort.Strings(hooks)
	return hooks, nil
}

// hookSteps is a step per pre-pytest hook (phase prePytest), or a step per
// post-pytest hook and then the sweep of what the pre hooks left running.
func (f *Flow) hookSteps(phase string) []Step {
	var out []Step
	for _, h := range f.hooks[phase] {
		out = append(out, Step{Name: phase + ":" + filepath.Base(h), Tail: phase == postPytest, Run: hookRunner(phase, h)})
	}
	if phase == postPytest && len(f.hooks[prePytest]) > 0 {
		out = append(out, Step{Name: "hook-sweep", Tail: true, Always: true, Run: sweepHookGroups})
	}
	return out
}

// exportLine is a line a pre hook prints to add a variable to pytest's
// environment: export NAME=VALUE, the value taken verbatim.
var exportLine = regexp.MustCompile(`^export ([A-Za-z_][A-Za-z0-9_]*)=(.*)$`)

func hookRunner(phase, path string) func(context.Context, *Flow) error {
	return func(ctx context.Context, f *Flow) error { return f.runHook(ctx, phase, path) }
}

// runHook runs one hook under slurmrun's supervision, in pytest's
// environment and directory. Its standard output goes to a file, not a
// pipe, so that a watcher it leaves running cannot hold the hook's end
// open: once it has exited, the `export` lines of a pre hook go into
// pytest's environment and the other lines to the rank's output.
func (f *Flow) runHook(ctx context.Context, phase, path string) error {
	out, err := os.CreateTemp("", "slurmrun-hook-*.out")
	if err != nil {
		return stepFailed(1, "%s hook %s: %w", phase, path, err)
	}
	defer os.Remove(out.Name())
	defer out.Close()
	env := append(f.childEnv.List(), "SLURMRUN_HOOK_PHASE="+phase)
	if phase == postPytest && f.codes.Pytest != nil {
		env = append(env, "SLURMRUN_PYTEST_EXIT_CODE="+strconv.Itoa(*f.codes.Pytest))
	}
	cmd := exec.Command(path)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = f.defsDir, env, out, f.stderr
	hctx, cancel := context.WithTimeoutCause(ctx, f.cfg.HookTimeout, fmt.Errorf("%w after %s", errTimeout, f.cfg.HookTimeout))
	defer cancel()
	st, runErr := f.sup.RunContext(hctx, cmd, f.cfg.Grace)
	if phase == prePytest && cmd.Process != nil {
		// Its process group is where the watchers it started live.
		f.hookGroups = append(f.hookGroups, cmd.Process.Pid)
	}
	if err := f.takeHookOutput(out, phase == prePytest && runErr == nil && st.Code == 0); err != nil {
		return stepFailed(1, "%s hook %s: %w", phase, path, err)
	}
	if runErr != nil {
		return stepFailed(st.Code, "%s hook %s: %w", phase, filepath.Base(path), runErr)
	}
	if st.Code != 0 {
		return stepFailed(st.Code, "%s hook %s: %s", phase, filepath.Base(path), st)
	}
	return nil
}

// takeHookOutput passes a hook's output on; with exports, its export lines
// set pytest's environment instead.
func (f *Flow) takeHookOutput(out *os.File, exports bool) error {
	if _, err := out.Seek(0, 0); err != nil {
		return err
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := exportLine.FindStringSubmatch(line); exports && m != nil {
			f.childEnv.Set(m[1], m[2])
			fmt.Fprintf(f.out, "Hook export: %s\n", m[1])
			continue
		}
		fmt.Fprintln(f.stdout, line)
	}
	return sc.Err()
}

// sweepHookGroups ends what the pre hooks left running in their process
// groups (watchers): SIGTERM, then SIGKILL after the grace (what is left
// of it after a cancel). A process that
// left its group (setsid) is the init's sweep's, when slurmrun exits.
func sweepHookGroups(_ context.Context, f *Flow) error {
	var live []int
	for _, g := range f.hookGroups {
		if unix.Kill(-g, 0) == nil {
			live = append(live, g)
			_ = unix.Kill(-g, syscall.SIGTERM)
		}
	}
	// After a cancel, only what is left of its grace: the rank must end
	// before Slurm's KillWait runs out.
	deadline := time.Now().Add(f.sup.Remaining(f.cfg.Grace))
	for len(live) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		live = stillThere(live)
	}
	for _, g := range live {
		_ = unix.Kill(-g, syscall.SIGKILL)
	}
	if len(live) > 0 {
		f.log.WithField("groups", live).Warn("hook watchers ignored SIGTERM: killed")
	}
	return nil
}

func stillThere(groups []int) []int {
	var out []int
	for _, g := range groups {
		if unix.Kill(-g, 0) == nil {
			out = append(out, g)
		}
	}
	return out
}
