package entrypoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/slurmrun/slurmrun/config"
	"github.com/slurmrun/slurmrun/internal/atomicfile"
)

// Prepare checks what can be checked before any step runs: the command's
// syntax and, for roles that need it, the wheel-path placeholder.
func (f *Flow) Prepare() error {
	cmd, err := ParseCommand(f.cfg.PytestCommand)
	if err != nil {
		return &StepError{Code: 2, Err: err}
	}
	fills := !f.cfg.Version.Has(config.WheelPathPrint)
	if fills {
		if _, _, err := cmd.Fill(WheelPlaceholder, f.cfg.ResourcePathNode); err != nil {
			return &StepError{Code: 2, Err: err}
		}
	}
	f.command = cmd
	f.hooks = map[string][]string{}
	for _, phase := range []string{prePytest, postPytest} {
		if f.hooks[phase], err = findHooks(f.cfg.Hooks, phase); err != nil {
			return &StepError{Code: 2, Err: err}
		}
	}
	if fills && f.cfg.Role.NeedsPlaceholder() && !strings.Contains(cmd.Text, WheelPlaceholder) {
		fmt.Fprintf(f.errOut, "Error: placeholder '%s' not found in the command\n", WheelPlaceholder)
		return &StepError{Code: 1, Err: fmt.Errorf("pytestCommand has no %s", WheelPlaceholder)}
	}
	return nil
}

// allowAnyGitDirectory makes `safe.directory = *` part of the configuration
// of every git that the install and pytest start, through git's
// GIT_CONFIG_COUNT variables, instead of slurm_run.sh's `git config --global
// --add` on rank 0 (lines 33-36): no file is shared between ranks, so there
// is nothing to race on, and every rank has it.
func allowAnyGitDirectory(_ context.Context, f *Flow) error {
	return addGitConfig(f.env, "safe.directory", "*")
}

// configureGit is allowAnyGitDirectory and, when GITHUB_CLONE_TOKEN is set,
// main's installer's insteadOf URL that authenticates github.com with it,
// also given through the environment rather than `git config --global`:
// the token is in no file, no argument list and no line slurmrun prints
// unmasked, and every rank has it (upstream's ~/.gitconfig reaches the
// ranks that share the installing rank's home).
func configureGit(ctx context.Context, f *Flow) error {
	if err := allowAnyGitDirectory(ctx, f); err != nil {
		return err
	}
	if token, ok := f.env.Get("GITHUB_CLONE_TOKEN"); ok && token != "" {
		return addGitConfig(f.env, "url.https://x-access-token:"+token+"@github.com/.insteadOf", "https://github.com/")
	}
	return nil
}

// addGitConfig adds key = value to the configuration env's GIT_CONFIG_COUNT
// variables give git, unless the same entry is there.
func addGitConfig(env *Env, key, value string) error {
	n := 0
	if v, ok := env.Get("GIT_CONFIG_COUNT"); ok && v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 0 {
			return stepFailed(1, "GIT_CONFIG_COUNT=%q is not a count", v)
		}
	}
	for i := 0; i < n; i++ {
		// Bounded by the environment: git refuses a count whose keys are
		// not all there, and so does slurmrun, at the first missing one.
		k, ok := env.Get(fmt.Sprintf("GIT_CONFIG_KEY_%d", i))
		if !ok {
			return stepFailed(1, "GIT_CONFIG_COUNT=%d but GIT_CONFIG_KEY_%d is not set (git would refuse it too)", n, i)
		}
		v, _ := env.Get(fmt.Sprintf("GIT_CONFIG_VALUE_%d", i))
		if strings.EqualFold(k, key) && v == value {
			return nil
		}
	}
	env.Set(fmt.Sprintf("GIT_CONFIG_KEY_%d", n), key)
	env.Set(fmt.Sprintf("GIT_CONFIG_VALUE_%d", n), value)
	env.Set("GIT_CONFIG_COUNT", strconv.Itoa(n+1))
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

// fillRule says which ranks' commands get the wheel location in place of
// the placeholder.
type fillRule int

const (
	fillAlways fillRule = iota // the seed: every command, which must hold it
	fillByRole                 // {id:3595982320}: aggregated and BENCHMARK commands
	fillNever                  // main: the command runs as given
)

// resolveWheelPath finds the wheel's location, prints it, and fills the
// command's placeholder with it as rule says.
func resolveWheelPath(rule fillRule) func(context.Context, *Flow) error {
	return func(ctx context.Context, f *Flow) error {
		loc, err := f.WheelLocation(ctx)
		if err != nil {
			return err
		}
		f.wheelDir = loc
		fmt.Fprintf(f.out, "TRTLLM WHEEL PATH: %s\n", loc)
		if rule == fillNever || (rule == fillByRole && !f.cfg.Role.NeedsPlaceholder()) {
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
}

func skipCoverage(f *Flow) string {
	if f.cfg.CoverageConfigFile == "" {
		return "coverageConfigFile is not set"
	}
	return ""
}

// shareCoverageConfig: rank 0 writes the wheel location into the coverage
// config in place of the version's placeholder (temporary name, then
// rename); every other rank waits until the file no longer holds it. Polling, not inotify, because jobWorkspace is usually a
// shared filesystem whose other nodes' writes inotify does not see.
func shareCoverageConfig(ctx context.Context, f *Flow) error {
	path := f.cfg.CoverageConfigFile
	placeholder := []byte(f.cfg.Version.CoveragePlaceholder)
	if f.cfg.Rank == 0 {
		data, err := os.ReadFile(path)
		if err != nil {
			return stepFailed(1, "coverage config: %w", err)
		}
		if !bytes.Contains(data, placeholder) {
			return nil // already written, e.g. by another role's rank 0
		}
		fi, err := os.Stat(path)
		if err != nil {
			return stepFailed(1, "coverage config: %w", err)
		}
		data = bytes.ReplaceAll(data, placeholder, []byte(f.wheelDir))
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
		return !bytes.Contains(data, placeholder), nil
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
	return pollEvery(ctx, limit, time.Second, ready)
}

// pollEvery is poll with the pause growing to longest.
func pollEvery(ctx context.Context, limit, longest time.Duration, ready func() (bool, error)) error {
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
		pause = min(2*pause, longest)
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
	f.prependWheelLibs()
	return f.printEnvironment()
}

// setUpRuntimeEnv is main's slurm_setup_runtime_env (slurm_env_setup.sh),
// then the lines slurm_run.sh prints after it: the library path as the seed
// sets it; UCX_TLS=tcp, which pyxis/enroot may inject and which breaks
// NIXL's GPU memory registration, unset; PMIx's gds set to hash
// (open-mpi/ompi#6981). Before the scrub, as upstream: a scrubbed rank
// loses PMIX_MCA_gds again.
func setUpRuntimeEnv(_ context.Context, f *Flow) error {
	f.prependWheelLibs()
	if v, ok := f.env.Get("UCX_TLS"); ok && v == "tcp" {
		f.env.Unset("UCX_TLS")
		fmt.Fprintln(f.out, "Unset UCX_TLS (cluster injected UCX_TLS=tcp)")
	}
	f.env.Set("PMIX_MCA_gds", "hash")
	return f.printEnvironment()
}

func (f *Flow) prependWheelLibs() {
	current, _ := f.env.Get("LD_LIBRARY_PATH")
	f.env.Set("LD_LIBRARY_PATH", WithLibraryPath(current, filepath.Join(f.wheelDir, "tensorrt_llm", "libs")))
}

// printEnvironment prints the library path and the environment, sorted,
// secrets masked, as slurm_run.sh's `env | sort`.
func (f *Flow) printEnvironment() error {
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
	if f.cfg.Version.Scrubs(f.cfg.Role) {
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

// keepListPrefixes are the names the keep-list scrub removes
// (slurm_run.branch-keep-list.sh).
var keepListPrefixes = []string{"OMPI_", "PMIX_", "PMI_", "SLURM_", "MPI_", "UCX_", "I_MPI_", "HYDRA_", "KMP_", "MPICH_", "MV2_", "CRAY_"}

// keptByKeepList says what the keep-list scrub keeps of what it removes:
// the branch's keep_vars, exactly.
func keptByKeepList(name string) bool {
	switch name {
	case "SLURM_PROCID", "SLURM_LOCALID", "SLURM_NODEID", "SLURMD_NODENAME",
		"SLURM_JOB_ID", "SLURM_JOB_NAME", "SLURM_JOB_NUM_NODES", "SLURM_JOB_NODELIST",
		"SLURM_RESTART_COUNT", "SLURM_CPUS_ON_NODE", "SLURM_GPUS_ON_NODE", "SLURM_GPUS_PER_NODE",
		"SLURM_CLUSTER_NAME", "SLURM_JOB_PARTITION", "SLURM_JOB_ACCOUNT", "SLURM_JOB_USER",
		"SLURM_SUBMIT_DIR", "SLURM_SUBMIT_HOST":
		return true
	}
	return false
}

// singleNodeTransports are what the keep-list scrub sets for one node.
var singleNodeTransports = [][2]string{
	{"UCX_TLS", "tcp,cuda_copy,cuda_ipc"}, {"NCCL_IB_DISABLE", "1"}, {"NCCL_NET_PLUGIN", "none"},
	{"OMPI_MCA_btl", "vader,self"}, {"UCX_CUDA_IPC_ENABLE_MNNVL", "n"}, {"UCX_RNDV_SCHEME", "put_zcopy"},
}

// ScrubKeepList removes, from env, the MPI, PMIx, Slurm and transport
// variables the keep-list scrub removes, except its keep list and the names
// in keep, sets the single-node transports, and returns the removed names.
func ScrubKeepList(env *Env, keep []string) []string {
	removed := scrub(env, keepListPrefixes, keep, keptByKeepList)
	for _, kv := range singleNodeTransports {
		env.Set(kv[0], kv[1])
	}
	return removed
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

// scrubSingleNode scrubs pytest's environment with scrub, and refuses to go
// on when the command needs a variable the scrub removed (slurm_run.sh,
// under `set -u` from line 4, would die on it with "unbound variable").
func scrubSingleNode(scrub func(*Env, []string) []string) func(context.Context, *Flow) error {
	return func(_ context.Context, f *Flow) error {
		removed := scrub(f.childEnv, f.cfg.KeepEnv)
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
}
