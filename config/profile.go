package config

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// Profile names the upstream version of slurm_run.sh the flow reproduces.
type Profile string

// Decode implements envconfig.Decoder: a version's name or one of its
// aliases, stored as the version's name.
func (p *Profile) Decode(s string) error {
	for _, v := range Versions() {
		if Profile(s) == v.Profile || slices.Contains(v.Aliases, Profile(s)) {
			*p = v.Profile
			return nil
		}
	}
	return fmt.Errorf("want one of %s", strings.Join(profileNames(), ", "))
}

// Step names one implementation of a step of the flow. Variants of a step
// (ScrubSeed, ScrubKeepList) share the Name that records, plan and the
// report give it; Variant says which code runs.
type Step struct{ Name, Variant string }

func (s Step) String() string { return s.Name }

// The steps of the versions below, each variant once.
var (
	Workdir          = Step{"workdir", "workdir"}
	GitSafeDirectory = Step{"git-safe-directory", "gitSafeDirectory"}
	GitConfigMain    = Step{"git-config", "gitConfigMain"} // safe.directory and GITHUB_CLONE_TOKEN's insteadOf
	InstallSeed      = Step{"install", "installSeed"}
	InstallMain      = Step{"install", "installMain"}
	GB200Coherent    = Step{"gb200-coherent", "gb200Coherent"}
	LLMAPILaunch     = Step{"llmapi-launch", "llmapiLaunch"}
	WheelPathFill    = Step{"wheel-path", "wheelPathFill"}       // the placeholder filled, required
	WheelPathByRole  = Step{"wheel-path", "wheelPathByRole"}     // filled for aggregated and BENCHMARK only
	WheelPathPrint   = Step{"wheel-path", "wheelPathPrint"}      // printed; the command runs as given
	CoverageConfig   = Step{"coverage-config", "coverageConfig"} // Version.CoveragePlaceholder
	LibraryPath      = Step{"library-path", "libraryPath"}
	RuntimeEnv       = Step{"runtime-env", "runtimeEnv"} // slurm_setup_runtime_env: library path, UCX_TLS, PMIx
	FullCommand      = Step{"full-command", "fullCommand"}
	ScrubSeed        = Step{"single-node-scrub", "scrubSeed"}
	ScrubKeepList    = Step{"single-node-scrub", "scrubKeepList"}
	PreHooks         = Step{"pre-pytest", "preHooks"} // one step per hook, or none
	RankBarrier      = Step{"rank-barrier", "rankBarrier"}
	Pytest           = Step{"pytest", "pytest"}
	PostHooks        = Step{"post-pytest", "postHooks"} // one step per hook, then the sweep
	S3Drain          = Step{"s3-drain", "s3Drain"}
	UsageDiagnostics = Step{"usage-error-diagnostics", "usageDiagnostics"}
	Perf             = Step{"perf", "perf"} // Version.PerfBaseline
	PerfSanity       = Step{"perfsanity", "perfSanity"}
)

// Baseline chooses the perf tail's baseline file.
type Baseline int

const (
	// BaselineByStage: base_perf_pytorch.csv for a stage named PyTorch,
	// base_perf.csv otherwise.
	BaselineByStage Baseline = iota
	// BaselinePyTorch: base_perf_pytorch.csv always (TensorRT's was removed).
	BaselinePyTorch
)

// LockName chooses the install lock's file name.
type LockName int

const (
	// LockPerRestart: install_lock_job_<job>_node_<node>_restart_<n>.lock,
	// so that a requeued job never finds the previous attempt's lock.
	LockPerRestart LockName = iota
	// LockPerJob: install_lock_job_<job>_node_<node>.lock, as main's
	// installer names it (a stale one is removed by local rank 0 first).
	LockPerJob
)

// Version is one upstream version of slurm_run.sh: one row of the table
// of profiles. Its Steps are the flow in the order that version runs it;
// the other fields are the values those steps take where versions differ.
type Version struct {
	Profile Profile
	Aliases []Profile
	// Upstream cites the version as trtllm-slurm-flow.md does: @commit, or
	// {id:N} where the commit is not known.
	Upstream string
	// Script is the published script the version is, under ../shared;
	// Sources the published files it sources (installer, helpers).
	Script  string
	Sources []string
	Steps   []Step

	// CoveragePlaceholder is what rank 0 replaces in coverageConfigFile.
	CoveragePlaceholder string
	// InstallOnDryRun: infraDryRun=true installs on Disagg stages too.
	InstallOnDryRun bool
	// ScrubRoles are roles scrubbed whatever the job's node count.
	ScrubRoles   []Role
	PerfBaseline Baseline
	Lock         LockName
}

// Versions is the table of profiles, oldest first. Adding an upstream
// version is adding its row, with the step variants it needs.
func Versions() []Version {
	seedSteps := []Step{Workdir, GitSafeDirectory, InstallSeed, GB200Coherent, LLMAPILaunch, WheelPathFill, CoverageConfig,
		LibraryPath, FullCommand, ScrubSeed, PreHooks, Pytest, PostHooks, UsageDiagnostics, Perf}
	with := func(steps []Step, old, replacement Step) []Step {
		out := slices.Clone(steps)
		out[slices.Index(out, old)] = replacement
		return out
	}
	seed := Version{
		Profile: "seed", Upstream: "seed", Script: "seed/slurm_run.sh", Steps: seedSteps,
		CoveragePlaceholder: "---wheel_path---", PerfBaseline: BaselineByStage, Lock: LockPerRestart,
	}
	perfSanity := seed
	perfSanity.Profile, perfSanity.Aliases = "38660dfb", []Profile{"perfsanity"}
	perfSanity.Upstream, perfSanity.Script = "@38660dfb", "upstream/slurm_run.38660dfb.sh"
	perfSanity.Steps = append(slices.Clone(seedSteps), PerfSanity)
	byRole := seed
	byRole.Profile, byRole.Upstream = "placeholder-by-role", "{id:3595982320}"
	byRole.Script = "upstream/slurm_run.placeholder-by-role.sh"
	byRole.Steps = with(seedSteps, WheelPathFill, WheelPathByRole)
	main := Version{
		Profile: "main-2026-08", Aliases: []Profile{"current"}, Upstream: "{id:57411251888} with #18240",
		Script: "upstream/slurm_run.main-2026-08.sh",
		Sources: []string{"upstream/slurm_install.main-2026-08.sh", "upstream/bash_utils.main-2026-08.sh",
			"upstream/slurm_env_setup.main-2026-08.sh"},
		Steps: []Step{Workdir, GitConfigMain, InstallMain, GB200Coherent, LLMAPILaunch, WheelPathPrint, CoverageConfig,
			RuntimeEnv, FullCommand, ScrubSeed, PreHooks, RankBarrier, Pytest, PostHooks, S3Drain, UsageDiagnostics, Perf},
		CoveragePlaceholder: "@TRTLLM_WHEEL_PATH@", InstallOnDryRun: true,
		ScrubRoles: []Role{"BENCHMARK", "DISAGG_SERVER"}, PerfBaseline: BaselinePyTorch, Lock: LockPerJob,
	}
	return []Version{seed, perfSanity, byRole, main}
}

// OptIn is a behaviour of a side branch that no profile has: it applies
// only when SLURMRUN_OPT_IN names it.
type OptIn struct {
	Name, Upstream, Script, What string
	apply                        func(*Version)
}

// OptIns lists the opt-in behaviours.
func OptIns() []OptIn {
	return []OptIn{{
		Name: "scrub-keep-list", Upstream: "{id:36181326104}", Script: "upstream/slurm_run.branch-keep-list.sh",
		What: "the single-node scrub keeps the branch's 18 SLURM names, removes OMPI_ PMIX_ PMI_ SLURM_ MPI_ UCX_ I_MPI_ HYDRA_ KMP_ MPICH_ MV2_ CRAY_ variables and sets single-node transports",
		apply: func(v *Version) {
			if i := slices.Index(v.Steps, ScrubSeed); i >= 0 {
				v.Steps[i] = ScrubKeepList
			}
		},
	}}
}

// OptInList is SLURMRUN_OPT_IN: comma-separated opt-in names.
type OptInList []string

// Decode implements envconfig.Decoder.
func (l *OptInList) Decode(s string) error {
	var out OptInList
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if !slices.ContainsFunc(OptIns(), func(o OptIn) bool { return o.Name == name }) {
			var names []string
			for _, o := range OptIns() {
				names = append(names, o.Name)
			}
			return fmt.Errorf("no opt-in %q: want a comma-separated list of %s", name, strings.Join(names, ", "))
		}
		out = append(out, name)
	}
	*l = out
	return nil
}

// Resolve returns the version of profile with the opt-ins applied: the
// flow's steps, resolved once.
func Resolve(profile Profile, optIns []string) (Version, error) {
	for _, v := range Versions() {
		if v.Profile != profile {
			continue
		}
		v.Steps = slices.Clone(v.Steps)
		for _, o := range OptIns() {
			if slices.Contains(optIns, o.Name) {
				o.apply(&v)
			}
		}
		return v, nil
	}
	return Version{}, fmt.Errorf("no profile %q", profile)
}

// Has says whether the version runs step (that variant).
func (v *Version) Has(step Step) bool { return slices.Contains(v.Steps, step) }

// Scrubs says whether role is scrubbed whatever the job's node count.
func (v *Version) Scrubs(role Role) bool { return slices.Contains(v.ScrubRoles, role) }

func profileNames() []string {
	var names []string
	for _, v := range Versions() {
		names = append(names, string(v.Profile))
		for _, a := range v.Aliases {
			names = append(names, string(a))
		}
	}
	return names
}

// writeProfiles lists the profiles, their upstream versions and steps, and
// the opt-ins.
func writeProfiles(w io.Writer) {
	fmt.Fprintln(w, "\nSLURMRUN_PROFILE selects the upstream slurm_run.sh version the flow reproduces:")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROFILE\tALIASES\tUPSTREAM\tSCRIPT")
	for _, v := range Versions() {
		var aliases []string
		for _, a := range v.Aliases {
			aliases = append(aliases, string(a))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", v.Profile, strings.Join(aliases, ","), v.Upstream, v.Script)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nSLURMRUN_OPT_IN adds behaviours of side branches that no profile has:")
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OPT-IN\tUPSTREAM\tWHAT")
	for _, o := range OptIns() {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", o.Name, o.Upstream, o.What)
	}
	tw.Flush()
}
