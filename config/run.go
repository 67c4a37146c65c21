package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slurmrun/slurmrun/internal/safename"
	"github.com/slurmrun/slurmrun/result"
)

// Run is everything the per-rank flow (`slurmrun run`, `install`, `plan`)
// reads from its environment, as launch.sh exports it.
type Run struct {
	// Need says which variables must be set; the caller sets it.
	Need Needs `ignored:"true"`

	ResourcePathNode   string `envconfig:"resourcePathNode" desc:"node-local directory that holds TensorRT-LLM/src (required)"`
	StageName          string `envconfig:"stageName" desc:"CI stage; 'Disagg', 'GB200' and 'PyTorch' in it switch steps, and it names the perf output directory (required)"`
	PytestCommand      string `envconfig:"pytestCommand" desc:"the test command (shell syntax: && lists, export, unset, NAME=VAL prefixes, quotes, $VAR) (required)"`
	PerfMode           bool   `envconfig:"perfMode" default:"false" desc:"rank 0 runs the perf check and report after pytest"`
	CoverageConfigFile string `envconfig:"coverageConfigFile" desc:"coverage config whose ---wheel_path--- rank 0 replaces; other ranks wait for it"`
	JobWorkspace       string `envconfig:"jobWorkspace" desc:"shared job directory; result files go to <jobWorkspace>/slurmrun (default: the working directory)"`
	LLMTarfile         string `envconfig:"llmTarfile" desc:"URL or path of the TensorRT-LLM tarball (aggregated stages)"`
	TarName            string `envconfig:"tarName" desc:"file name of the downloaded tarball (aggregated stages)"`
	InfraDryRun        bool   `envconfig:"infraDryRun" default:"false" desc:"an infrastructure dry run: profiles from main-2026-08 install on Disagg stages too"`

	Rank            Rank          `envconfig:"SLURM_PROCID" default:"0" desc:"global rank; rank 0 rewrites the coverage config and runs the perf tail"`
	LocalRank       Rank          `envconfig:"SLURM_LOCALID" default:"0" desc:"rank on this node; local rank 0 installs, the others wait"`
	NodeID          Rank          `envconfig:"SLURM_NODEID" default:"0" desc:"node index in the job"`
	JobID           string        `envconfig:"SLURM_JOB_ID" default:"local" desc:"job id (lock and result file names)"`
	StepID          string        `envconfig:"SLURM_STEP_ID" desc:"step id (result file, rank barrier)"`
	NTasks          Count         `envconfig:"SLURM_NTASKS" default:"1" desc:"tasks in the step; the rank barrier waits for this many when it survives the scrub"`
	RestartCount    Rank          `envconfig:"SLURM_RESTART_COUNT" default:"0" desc:"requeue count (lock names differ per requeue)"`
	NumNodes        Count         `envconfig:"SLURM_JOB_NUM_NODES" default:"1" desc:"nodes in the job; 1 scrubs PMI/MPI/SLURM variables from pytest's environment"`
	LDLibraryPath   string        `envconfig:"LD_LIBRARY_PATH" desc:"library path; <wheel>/tensorrt_llm/libs is prepended unless it is an entry"`
	Role            Role          `envconfig:"DISAGG_SERVING_TYPE" desc:"disaggregated role: GEN_<i>, CTX_<i>, DISAGG_SERVER or BENCHMARK (empty: aggregated)"`
	HostNodeName    string        `envconfig:"HOST_NODE_NAME" desc:"host name printed by the install (default: the FQDN)"`
	Python          string        `envconfig:"SLURMRUN_PYTHON" default:"python3" desc:"interpreter for pip, the wheel lookup and the perf scripts"`
	KeepEnv         []string      `envconfig:"SLURMRUN_KEEP_ENV" desc:"comma-separated names the single-node scrub keeps (e.g. SLURM_LOCALID)"`
	Profile         Profile       `envconfig:"SLURMRUN_PROFILE" default:"seed" desc:"the upstream slurm_run.sh version the flow reproduces (listed below)"`
	OptIn           OptInList     `envconfig:"SLURMRUN_OPT_IN" desc:"comma-separated side-branch behaviours no profile has (listed below)"`
	Hooks           string        `envconfig:"SLURMRUN_HOOKS" desc:"directory whose pre-pytest.d/ and post-pytest.d/ executables run, in name order, before and after pytest on every rank (see the README)"`
	HookTimeout     time.Duration `envconfig:"SLURMRUN_HOOK_TIMEOUT" default:"10m" desc:"limit of one hook"`
	BarrierTimeout  time.Duration `envconfig:"SLURMRUN_BARRIER_TIMEOUT" default:"3600s" desc:"how long a rank waits at the rank barrier for the others"`
	CoverageTimeout time.Duration `envconfig:"SLURMRUN_COVERAGE_TIMEOUT" default:"10m" desc:"how long ranks other than 0 wait for the coverage config"`
	InstallTimeout  time.Duration `envconfig:"SLURMRUN_INSTALL_TIMEOUT" default:"2h" desc:"how long local ranks other than 0 wait for the install"`
	InstallRetries  Count         `envconfig:"SLURMRUN_INSTALL_RETRIES" default:"3" desc:"attempts of each install command"`
	RetryDelay      time.Duration `envconfig:"SLURMRUN_INSTALL_RETRY_DELAY" default:"60s" desc:"pause between install attempts"`
	DownloadTimeout time.Duration `envconfig:"SLURMRUN_DOWNLOAD_TIMEOUT" default:"30m" desc:"limit of one tarball download attempt"`
	PipTimeout      time.Duration `envconfig:"SLURMRUN_PIP_TIMEOUT" default:"45m" desc:"limit of one pip attempt"`
	PipArgs         []string      `envconfig:"SLURMRUN_PIP_ARGS" desc:"comma-separated extra arguments for every pip install (e.g. --no-index)"`
	AptPackages     []string      `envconfig:"SLURMRUN_APT_PACKAGES" default:"libffi-dev" desc:"comma-separated packages the install adds with apt-get (set to - for none)"`
	Common
	Logs
	NvidiaSMI Switch `envconfig:"SLURMRUN_NVIDIA_SMI" default:"auto" desc:"run nvidia-smi during the install: on, off, or auto (when it is on PATH)"`

	// Version is the profile's upstream version with the opt-ins applied,
	// resolved once when the configuration is read.
	Version Version `ignored:"true"`
}

// Aggregated reports whether the stage is aggregated (no "Disagg" in its name).
func (c *Run) Aggregated() bool { return !strings.Contains(c.StageName, "Disagg") }

// Installs reports whether `run` installs inline: on aggregated stages, and
// on infrastructure dry runs in versions that do.
func (c *Run) Installs() bool {
	return c.Aggregated() || (c.InfraDryRun && c.Version.InstallOnDryRun)
}

// Needs selects the requirements that depend on the command.
type Needs int

const (
	// NeedRun checks what `slurmrun run` (and `plan`) needs.
	NeedRun Needs = iota
	// NeedInstall checks what `slurmrun install` needs.
	NeedInstall
)

// Required names the variables the command needs set: for a container
// bundle's check as much as for the run.
func (c *Run) Required() []string {
	names := []string{"resourcePathNode", "stageName"}
	if c.Need == NeedRun || c.Version.Has(InstallMain) {
		// main's installer requires it too: --run-ray in it adds ray.
		names = append(names, "pytestCommand")
	}
	if c.Need == NeedInstall || c.Installs() {
		names = append(names, "llmTarfile", "tarName")
	}
	return names
}

func (c *Run) check(set map[string]string) []string {
	need := c.Need
	problems := append(c.Common.check(set), c.Logs.check(set)...)
	v, err := Resolve(c.Profile, c.OptIn)
	if err != nil {
		problems = append(problems, "SLURMRUN_PROFILE: "+err.Error())
	}
	c.Version = v
	problems = append(problems, required(set, c.Required()...)...)
	if c.TarName != "" && (strings.ContainsRune(c.TarName, '/') || c.TarName == "." || c.TarName == "..") {
		problems = append(problems, fmt.Sprintf("tarName=%q: want a plain file name", c.TarName))
	}
	problems = append(problems, c.pathProblems(need)...)
	// They become parts of the result file's and the install lock's names.
	if err := safename.Check("SLURM_JOB_ID", c.JobID); err != nil {
		problems = append(problems, err.Error())
	}
	if c.StepID != "" {
		if err := safename.Check("SLURM_STEP_ID", c.StepID); err != nil {
			problems = append(problems, err.Error())
		}
	}
	problems = append(problems, positive(set, map[string]time.Duration{
		"SLURMRUN_COVERAGE_TIMEOUT": c.CoverageTimeout, "SLURMRUN_INSTALL_TIMEOUT": c.InstallTimeout,
		"SLURMRUN_DOWNLOAD_TIMEOUT": c.DownloadTimeout, "SLURMRUN_PIP_TIMEOUT": c.PipTimeout,
		"SLURMRUN_HOOK_TIMEOUT": c.HookTimeout, "SLURMRUN_BARRIER_TIMEOUT": c.BarrierTimeout,
	})...)
	if c.RetryDelay < 0 {
		problems = append(problems, "SLURMRUN_INSTALL_RETRY_DELAY: want a non-negative duration")
	}
	if len(c.AptPackages) == 1 && c.AptPackages[0] == "-" {
		c.AptPackages = nil
	}
	return problems
}

// pathProblems checks the paths before any step runs: a directory that
// is not there or a file where a directory belongs is a configuration error,
// not a failing step, and a run whose record cannot be written must not
// start.
func (c *Run) pathProblems(need Needs) []string {
	var problems []string
	if c.ResourcePathNode != "" {
		if fi, err := os.Stat(c.ResourcePathNode); err != nil {
			problems = append(problems, fmt.Sprintf("resourcePathNode=%q: %v", c.ResourcePathNode, errors.Unwrap(err)))
		} else if !fi.IsDir() {
			problems = append(problems, fmt.Sprintf("resourcePathNode=%q: not a directory", c.ResourcePathNode))
		}
	}
	if c.Hooks != "" {
		if fi, err := os.Stat(c.Hooks); err != nil {
			problems = append(problems, fmt.Sprintf("SLURMRUN_HOOKS=%q: %v", c.Hooks, errors.Unwrap(err)))
		} else if !fi.IsDir() {
			problems = append(problems, fmt.Sprintf("SLURMRUN_HOOKS=%q: not a directory", c.Hooks))
		}
	}
	if c.CoverageConfigFile != "" {
		if fi, err := os.Stat(c.CoverageConfigFile); err == nil && fi.IsDir() {
			problems = append(problems, fmt.Sprintf("coverageConfigFile=%q: a directory, want a file", c.CoverageConfigFile))
		}
	}
	{ // run and install both write a record
		name, dir := "jobWorkspace", c.JobWorkspace
		if dir == "" {
			name, dir = "the working directory (jobWorkspace is not set)", "."
		}
		if err := writableDir(result.Dir(dir)); err != nil {
			problems = append(problems, fmt.Sprintf("%s=%q: result files cannot be written: %v", name, dir, err))
		}
	}
	return problems
}

// writableDir reports whether dir is, or could be made as, a directory this
// process can write in: its nearest existing ancestor decides.
func writableDir(dir string) error {
	for p := dir; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) && p != filepath.Dir(p) {
			continue
		}
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", p)
		}
		if err := unix.Access(p, unix.W_OK|unix.X_OK); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		return nil
	}
}

func (c *Run) notes(w io.Writer) { writeProfiles(w) }

// DirectoryVariables names the variables that hold host directories the
// flow works in: a container must have them mounted.
func DirectoryVariables() []string { return []string{"jobWorkspace", "resourcePathNode"} }

// Directories is the values of DirectoryVariables that are set.
func (c *Run) Directories() []string {
	var out []string
	for _, p := range []string{c.JobWorkspace, c.ResourcePathNode} {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}
