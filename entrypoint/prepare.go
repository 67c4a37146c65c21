package entrypoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/slurmrun/slurmrun/internal/atomicfile"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Prepare checks what can be checked before any step runs: the command's
// syntax and, for roles that need it, the wheel-path placeholder.
func (f *Flow) Prepare() error {
	cmd, err := ParseCommand(f.cfg.PytestCommand)
	if err != nil {
		return &StepError{Code: 2, Err: err}
	}
	if _, _, err := cmd.Fill(WheelPlaceholder, f.cfg.ResourcePathNode); err != nil {
		return &StepError{Code: 2, Err: err}
	}
	f.command = cmd
	f.hooks = map[string][]string{}
	for _, phase := range []string{prePytest, postPytest} {
		if f.hooks[phase], err = findHooks(f.cfg.Hooks, phase); err != nil {
			return &StepError{Code: 2, Err: err}
		}
	}
	if f.cfg.Role.NeedsPlaceholder() && !strings.Contains(cmd.Text, WheelPlaceholder) {
		fmt.Fprintf(f.errOut, "Error: placeholder '%s' not found in the command\n", WheelPlaceholder)
		return &StepError{Code: 1, Err: fmt.Errorf("pytestCommand has no %s", WheelPlaceholder)}
	}
	return nil
}

// allowAnyGitDirectory makes `safe.directory = *` part of the configuration
// of every git that pytest starts, through git's GIT_CONFIG_COUNT variables.
// Unlike slurm_run.sh's `git config --global --add` on rank 0 (lines 33-36), no file is
// shared between ranks, so there is nothing to race on and every rank has it.
func allowAnyGitDirectory(_ context.Context, f *Flow) error {
	n := 0
	if v, ok := f.env.Get("GIT_CONFIG_COUNT"); ok && v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 0 {
			return stepFailed(1, "GIT_CONFIG_COUNT=%q is not a count", v)
		}
	}
	for i := 0; i < n; i++ {
		// Bounded by the environment: git refuses a count whose keys are
		// not all there, and so does slurmrun, at the first missing one.
		k, ok := f.env.Get(fmt.Sprintf("GIT_CONFIG_KEY_%d", i))
		if !ok {
			return stepFailed(1, "GIT_CONFIG_COUNT=%d but GIT_CONFIG_KEY_%d is not set (git would refuse it too)", n, i)
		}
		v, _ := f.env.Get(fmt.Sprintf("GIT_CONFIG_VALUE_%d", i))
		if strings.EqualFold(k, "safe.directory") && v == "*" {
			return nil
		}
	}
	f.env.Set(fmt.Sprintf("GIT_CONFIG_KEY_%d", n), "safe.directory")
	f.env.Set(fmt.Sprintf("GIT_CONFIG_VALUE_%d", n), "*")
	f.env.Set("GIT_CONFIG_COUNT", strconv.Itoa(n+1))
	return nil
}

func skipUnlessGB200(f *Flow) string {
	if !strings.Contains(f.cfg.StageName, "GB200") {
		return "stage is not GB200"
	}
	return ""
}

// nvidiaParams is where the driver reports the coherent GPU mapping.
const nvidiaParams = "/proc/driver/nvidia/params"

// checkCoherentMapping prints the driver's Coherent lines on GB200 stages.
func checkCoherentMapping(_ context.Context, f *Flow) error {
	fmt.Fprintln(f.out, "Checking Coherent GPU mapping (for GB200)...")
	data, err := os.ReadFile(nvidiaParams)
	found := false
	if err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, "Coherent") {
				fmt.Fprintln(f.out, line)
				found = true
			}
		}
	}
	if !found {
		fmt.Fprintln(f.out, "Unable to grep Coherent from "+nvidiaParams)
	}
	return nil
}

// prepareLauncher makes trtllm-llmapi-launch executable and enters the
// integration test directory.
func prepareLauncher(_ context.Context, f *Flow) error {
	launcher := filepath.Join(f.srcDir, "tensorrt_llm", "llmapi", "trtllm-llmapi-launch")
	fi, err := os.Stat(launcher)
	if err != nil {
		return stepFailed(1, "trtllm-llmapi-launch: %w", err)
	}
	if !f.planning {
		if err := os.Chmod(launcher, fi.Mode().Perm()|0o111); err != nil {
			return stepFailed(1, "chmod +x trtllm-llmapi-launch: %w", err)
		}
	}
	if fi, err := os.Stat(f.defsDir); err != nil || !fi.IsDir() {
		return stepFailed(1, "integration test directory %s is missing", f.defsDir)
	}
	f.env.Set("PWD", f.defsDir)
	return nil
}

// locateScript prints the sys.path entry holding tensorrt_llm's metadata:
// the `Location:` of `pip show`, found as importlib.metadata finds it (first
// entry in path order, names normalised) with one interpreter start instead
// of two pip runs, and without importing importlib.metadata (a third of the
// start-up time). The entry is made absolute as pip shows it: the empty entry (the
// working directory, first under -c) would otherwise give an empty location.
const locateScript = `import os, sys
def norm(n): return n.lower().replace("-", "_").replace(".", "_")
for p in sys.path:
    try:
        names = sorted(os.listdir(p or "."))
    except OSError:
        continue
    for n in names:
        if n.endswith(".dist-info"):
            name = n[:-10].rpartition("-")[0]
        elif n.endswith(".egg-info"):
            name = n[:-9].partition("-")[0]
        else:
            continue
        if norm(name) == "tensorrt_llm":
            print(os.path.abspath(p or "."))
            sys.exit(0)
sys.exit("Package(s) not found: tensorrt_llm")`

// WheelLocation asks the interpreter where tensorrt_llm is installed.
func (f *Flow) WheelLocation(ctx context.Context) (string, error) {
	var out, errOut bytes.Buffer
	cmd := exec.Command(f.cfg.Python, "-c", locateScript)
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = f.env.List(), f.cfg.ResourcePathNode, &out, &errOut
	// Not Output: the interpreter's error text explains a failure.
	st, err := f.sup.RunContext(ctx, cmd, time.Second)
	if err != nil {
		return "", stepFailed(st.Code, "%s -c <find tensorrt_llm>: %w", f.cfg.Python, err)
	}
	if st.Code != 0 {
		msg := strings.TrimSpace(errOut.String())
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		return "", stepFailed(st.Code, "tensorrt_llm is not installed for %s: %s", f.cfg.Python, msg)
	}
	loc := strings.TrimSuffix(out.String(), "\n")
	if !filepath.IsAbs(loc) {
		return "", stepFailed(1, "%s -c <find tensorrt_llm>: location %q is not an absolute path", f.cfg.Python, loc)
	}
	return loc, nil
}

// resolveWheelPath finds the wheel's location, prints it, and fills the
// command's placeholder with it.
func resolveWheelPath(ctx context.Context, f *Flow) error {
	loc, err := f.WheelLocation(ctx)
	if err != nil {
		return err
	}
	f.wheelDir = loc
	fmt.Fprintf(f.out, "TRTLLM WHEEL PATH: %s\n", loc)
	if f.on("placeholder-by-role") && !f.cfg.Role.NeedsPlaceholder() {
		f.log.WithField("role", f.cfg.Role).Info("the wheel placeholder is left as it is for this role (profile)")
		return nil
	}
	filled, n, err := f.command.Fill(WheelPlaceholder, loc)
	if err != nil {
		return stepFailed(1, "%w", err)
	}
	if n == 0 {
		if f.cfg.Role.NeedsPlaceholder() {
			fmt.Fprintf(f.errOut, "Error: placeholder '%s' not found in the command\n", WheelPlaceholder)
			return stepFailed(1, "pytestCommand has no %s", WheelPlaceholder)
		}
		f.log.WithField("role", f.cfg.Role).Info("no wheel-path placeholder in this role's command")
	}
	f.command = filled
	// slurm_run.sh (line 61) assigns the filled command back to the exported variable.
	f.env.Set("pytestCommand", filled.Text)
	return nil
}

// coveragePlaceholder is what rank 0 replaces in the coverage config.
const coveragePlaceholder = "---wheel_path---"

func skipCoverage(f *Flow) string {
	if f.cfg.CoverageConfigFile == "" {
		return "coverageConfigFile is not set"
	}
	return ""
}

// shareCoverageConfig: rank 0 writes the wheel location into the coverage
// config (temporary name, then rename); every other rank waits until the
// file holds it. Polling, not inotify, because jobWorkspace is usually a
// shared filesystem whose other nodes' writes inotify does not see.
func shareCoverageConfig(ctx context.Context, f *Flow) error {
	path := f.cfg.CoverageConfigFile
	if f.cfg.Rank == 0 {
		data, err := os.ReadFile(path)
		if err != nil {
			return stepFailed(1, "coverage config: %w", err)
		}
		if !bytes.Contains(data, []byte(coveragePlaceholder)) {
			return nil // already written, e.g. by another role's rank 0
		}
		fi, err := os.Stat(path)
		if err != nil {
			return stepFailed(1, "coverage config: %w", err)
		}
		data = bytes.ReplaceAll(data, []byte(coveragePlaceholder), []byte(f.wheelDir))
		if err := atomicfile.WriteFile(path, data, fi.Mode().Perm()); err != nil {
			return stepFailed(1, "coverage config: %w", err)
		}
		return nil
	}
	err := poll(ctx, f.cfg.CoverageTimeout, func() (bool, error) {
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		return !bytes.Contains(data, []byte(coveragePlaceholder)), nil
	})
	if err != nil {
		return stepFailed(1, "waiting for rank 0 to write the wheel location into %s: %w", path, err)
	}
	return nil
}

// errTimeout is returned by poll when the bound is reached.
var errTimeout = errors.New("timed out")

// poll calls ready until it returns true, an error, ctx ends or limit
// passes; the pause grows from 10 ms to 1 s, so a quick handshake costs
// milliseconds and a long wait costs nothing noticeable.
func poll(ctx context.Context, limit time.Duration, ready func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	pause := 10 * time.Millisecond
	for {
		ok, err := ready()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w after %s", errTimeout, limit)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(min(pause, time.Until(deadline)+time.Millisecond)):
		}
		pause = min(2*pause, time.Second)
	}
}

// WithLibraryPath returns path with lib as its first entry unless lib is
// already one of its entries (compared entry by entry, not as a substring).
func WithLibraryPath(path, lib string) string {
	for _, e := range strings.Split(path, ":") {
		if e != "" && filepath.Clean(e) == filepath.Clean(lib) {
			return path
		}
	}
	return strings.TrimSuffix(lib+":"+path, ":")
}

// prependLibraryPath puts the wheel's libs directory on LD_LIBRARY_PATH and
// prints the path and the (masked) environment.
func prependLibraryPath(_ context.Context, f *Flow) error {
	current, _ := f.env.Get("LD_LIBRARY_PATH")
	f.env.Set("LD_LIBRARY_PATH", WithLibraryPath(current, filepath.Join(f.wheelDir, "tensorrt_llm", "libs")))
	v, _ := f.env.Get("LD_LIBRARY_PATH")
	fmt.Fprintln(f.out, "Library Path:")
	fmt.Fprintln(f.out, v)
	return writeLines(f.out, f.env.Dump(f.red))
}

func writeLines(w io.Writer, lines []string) error {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// printFullCommand prints the command with the placeholder filled.
func printFullCommand(_ context.Context, f *Flow) error {
	fmt.Fprintf(f.out, "Full Command: %s\n", f.command.Text)
	f.childEnv = f.env.Clone()
	return nil
}

func skipScrub(f *Flow) string {
	if f.on("scrub-roles") && (f.cfg.Role == "DISAGG_SERVER" || f.cfg.Role == "BENCHMARK") {
		return ""
	}
	if f.cfg.NumNodes != 1 {
		return fmt.Sprintf("job has %d nodes", f.cfg.NumNodes)
	}
	return ""
}

// scrubPrefixes are the variable name prefixes the single-node scrub removes
// so pytest does not initialise MPI (PMI also covers PMIX).
var scrubPrefixes = []string{"PMI", "MPI", "OMPI", "SLURM"}

// Scrub removes the PMI, PMIX, MPI, OMPI and SLURM variables from env, except
// SLURM_PROCID and the names in keep, and returns the removed names.
func Scrub(env *Env, keep []string) []string {
	return scrub(env, scrubPrefixes, keep, func(name string) bool { return name == "SLURM_PROCID" })
}

// scrub removes from env each variable whose name starts with one of
// prefixes, except the names in keep and those kept says to keep, and
// returns the removed names.
func scrub(env *Env, prefixes, keep []string, kept func(string) bool) []string {
	keepSet := make(map[string]bool, len(keep))
	for _, k := range keep {
		keepSet[k] = true
	}
	var removed []string
	for _, name := range env.Names() {
		if keepSet[name] || kept(name) {
			continue
		}
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) {
				env.Unset(name)
				removed = append(removed, name)
				break
			}
		}
	}
	return removed
}

// scrubSingleNode scrubs pytest's environment on a single-node job, and
// refuses to go on when the command needs a variable the scrub removed
// (slurm_run.sh, under `set -u` from line 4, would die on it with
// "unbound variable").
func scrubSingleNode(_ context.Context, f *Flow) error {
	var removed []string
	if f.on("scrub-keep-list") {
		removed = ScrubKeepList(f.childEnv, f.cfg.KeepEnv)
	} else {
		removed = Scrub(f.childEnv, f.cfg.KeepEnv)
	}
	gone := make(map[string]bool, len(removed))
	for _, n := range removed {
		gone[n] = true
	}
	var needed []string
	for _, ref := range f.command.References() {
		if gone[ref] {
			needed = append(needed, ref)
		}
	}
	if len(needed) > 0 {
		return stepFailed(1, "pytestCommand uses %s, removed by the single-node scrub; keep with SLURMRUN_KEEP_ENV=%s",
			strings.Join(needed, ", "), strings.Join(needed, ","))
	}
	f.log.WithField("removed", len(removed)).Debug("scrubbed MPI and Slurm variables")
	return nil
}
