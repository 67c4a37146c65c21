package entrypoint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/slurmrun/slurmrun/config"
	"github.com/slurmrun/slurmrun/internal/redact"
	"github.com/slurmrun/slurmrun/proc"
	"github.com/slurmrun/slurmrun/result"
)

// Flow is one rank's run of slurm_run.sh.
type Flow struct {
	cfg     *config.Run
	initial []string // the environment slurmrun started with
	env     *Env     // the flow's environment; pytest's is derived from it
	log     *logrus.Entry
	sup     *proc.Supervisor
	stdout  io.Writer // the commands' standard output and error
	stderr  io.Writer
	red     *redact.Redactor
	out     io.Writer // slurmrun's own lines, secrets masked
	errOut  io.Writer

	srcDir   string // <resourcePathNode>/TensorRT-LLM/src
	defsDir  string // <srcDir>/tests/integration/defs
	wheelDir string // where pip installed tensorrt_llm
	command  *Command
	childEnv *Env

	codes  result.ExitCodes
	result *result.Rank
	// planning: the steps run for `slurmrun plan` and change nothing.
	planning bool
	// hooks are SLURMRUN_HOOKS's executables by phase; hookGroups the
	// process groups of the pre hooks that ran, swept after the post hooks.
	hooks      map[string][]string
	hookGroups []int
}

// Step is one named piece of the flow.
type Step struct {
	Name string
	// Tail steps come after pytest: their failure does not stop the flow
	// (what slurm_run.sh means by its `set +e` around pytest, which its
	// ERR trap on line 5 defeats). A failing step before pytest skips
	// every later step, the tail included.
	Tail bool
	Run  func(ctx context.Context, f *Flow) error
	// Skip says why the step does not apply to this rank, or "".
	Skip func(f *Flow) string
	// Plan says that the step only checks and derives the environment
	// pytest gets: `slurmrun plan` runs it too, its output discarded.
	Plan bool
	// When is the condition, known only at run time, under which it runs.
	When string
	// Always steps run after a failure or a cancellation too: they clean up.
	Always bool
}

// steps is this rank's flow: the steps of its profile's version, in the
// order config resolved them, the hooks expanded.
func (f *Flow) steps() []Step {
	var out []Step
	code := implementations()
	for _, s := range f.cfg.Version.Steps {
		switch s {
		case config.PreHooks:
			out = append(out, f.hookSteps(prePytest)...)
		case config.PostHooks:
			out = append(out, f.hookSteps(postPytest)...)
		default:
			st, ok := code[s]
			if !ok {
				panic("entrypoint: no implementation of step variant " + s.Variant) // a row of config.Versions without its code
			}
			st.Name = s.Name
			out = append(out, st)
		}
	}
	return out
}

// implementations is the code of each step variant config.Versions names,
// in the order the seed runs them.
func implementations() map[config.Step]Step {
	return map[config.Step]Step{
		config.Workdir:          {Run: enterResourcePath, Plan: true},
		config.GitSafeDirectory: {Run: allowAnyGitDirectory, Plan: true},
		config.GitConfigMain:    {Run: configureGit, Plan: true},
		config.InstallSeed:      {Run: installInline, Skip: skipInstall},
		config.InstallMain:      {Run: installInline, Skip: skipInstall},
		config.GB200Coherent:    {Run: checkCoherentMapping, Skip: skipUnlessGB200},
		config.LLMAPILaunch:     {Run: prepareLauncher, Plan: true},
		config.WheelPathFill:    {Run: resolveWheelPath(fillAlways), Plan: true},
		config.WheelPathByRole:  {Run: resolveWheelPath(fillByRole), Plan: true},
		config.WheelPathPrint:   {Run: resolveWheelPath(fillNever), Plan: true},
		config.CoverageConfig:   {Run: shareCoverageConfig, Skip: skipCoverage},
		config.LibraryPath:      {Run: prependLibraryPath, Plan: true},
		config.RuntimeEnv:       {Run: setUpRuntimeEnv, Plan: true},
		config.FullCommand:      {Run: printFullCommand, Plan: true},
		config.ScrubSeed:        {Run: scrubSingleNode(Scrub), Skip: skipScrub, Plan: true},
		config.ScrubKeepList:    {Run: scrubSingleNode(ScrubKeepList), Skip: skipScrub, Plan: true},
		config.RankBarrier:      {Run: waitForAllRanks, Skip: skipBarrier},
		config.Pytest:           {Tail: true, Run: runPytest},
		config.S3Drain:          {Tail: true, Run: drainS3Spool, Skip: skipS3Drain},
		config.UsageDiagnostics: {Tail: true, Run: diagnoseUsageError, Skip: skipUnlessUsageError, When: "only if pytest exits with 4"},
		config.Perf:             {Tail: true, Run: checkPerf, Skip: skipPerf},
		config.PerfSanity:       {Tail: true, Run: checkPerfSanity, Skip: skipPerfSanity},
	}
}

// StepError is a step's failure with the exit code it gives the rank.
type StepError struct {
	Code int
	Err  error
}

func (e *StepError) Error() string { return fmt.Sprintf("%v (exit code %d)", e.Err, e.Code) }
func (e *StepError) Unwrap() error { return e.Err }

// IgnoredError is a step's failure that changes nothing: the step is
// recorded as done, with the code and why.
type IgnoredError struct {
	Code int
	Err  error
}

func (e *IgnoredError) Error() string { return fmt.Sprintf("%v (exit code %d)", e.Err, e.Code) }
func (e *IgnoredError) Unwrap() error { return e.Err }

func stepFailed(code int, format string, args ...any) error {
	return &StepError{Code: code, Err: fmt.Errorf(format, args...)}
}

// NewFlow prepares a flow; environ is the process environment, red the
// redactor of its secrets (the one the caller's logger writes through).
func NewFlow(cfg *config.Run, environ []string, red *redact.Redactor, log *logrus.Entry, sup *proc.Supervisor, stdout, stderr io.Writer) *Flow {
	host, _ := os.Hostname()
	f := &Flow{
		cfg: cfg, initial: environ, env: NewEnv(environ), log: log, sup: sup, stdout: stdout, stderr: stderr,
		srcDir: filepath.Join(cfg.ResourcePathNode, "TensorRT-LLM", "src"),
	}
	f.defsDir = filepath.Join(f.srcDir, "tests", "integration", "defs")
	f.red = red
	f.out, f.errOut = red.Writer(stdout), red.Writer(stderr)
	f.result = newResult(cfg, host)
	return f
}

// Run runs every step and returns the rank's final exit code. It always
// prints the final Rank line and writes the result file.
func (f *Flow) Run(ctx context.Context) int {
	failed := false
	for _, st := range f.steps() {
		rec := begin(f.result, st.Name)
		switch {
		case st.Always:
		case ctx.Err() != nil:
			// Also after a step that the cancellation ended.
			skip(rec, result.Cancelled, fmt.Sprintf("cancelled: %v", context.Cause(ctx)))
			continue
		case failed:
			skip(rec, result.Skipped, "an earlier step failed")
			continue
		}
		if st.Skip != nil {
			if why := st.Skip(f); why != "" {
				skip(rec, result.Skipped, why)
				f.log.WithField("step", st.Name).Debug("skipped: " + why)
				continue
			}
		}
		start := time.Now()
		err := st.Run(ctx, f)
		if err != nil && ctx.Err() == nil && killedByTermination(codeOf(err)) {
			// Slurm (proctrack, crun kill -a) signals every process of the
			// step at once: the command can be gone before slurmrun's own
			// SIGTERM is handled. Give it a moment, so the record says what
			// ended the step.
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
		finish(rec, err, proc.TerminatingSignal(ctx) != 0)
		fields := logrus.Fields{"step": st.Name, "duration": time.Since(start).Round(time.Millisecond)}
		if ig, ok := errors.AsType[*IgnoredError](err); ok {
			f.log.WithFields(fields).WithError(ig).Warn("step failed; the failure is ignored")
			continue
		}
		if err == nil {
			f.log.WithFields(fields).Info("step done")
			continue
		}
		var se *StepError
		if errors.As(err, &se) {
			fields["exit_code"] = se.Code
		}
		f.log.WithFields(fields).WithError(err).Error("step failed")
		if !st.Tail && !failed {
			failed = true
			f.codes.Setup = codeOf(err)
			if sig := proc.TerminatingSignal(ctx); sig != 0 {
				// The step ended because the job was cancelled (a download,
				// the install lock or the coverage config it waited for):
				// Slurm's cancel, not a failure of the step.
				f.codes.Setup = 128 + int(sig)
			}
			f.result.FailedStep = st.Name
		}
	}
	final := f.codes.Final()
	if sig := proc.TerminatingSignal(ctx); sig != 0 {
		f.result.Signal = sig.String()
		switch {
		case final == 0 && f.codes.Pytest == nil:
			final = 128 + int(sig)
		case f.codes.Pytest != nil && *f.codes.Pytest == 128+int(unix.SIGKILL):
			// Killed at the end of the grace period that sig started: the
			// run was cancelled by sig, as Slurm reports it.
			final = 128 + int(sig)
		}
	}
	final, path := f.writeRecord(final)
	if path != "" && f.cfg.Rank == 0 {
		// Once per job: the page and JUnit of every rank's steps.
		fmt.Fprintf(f.out, "Report of the job's ranks, when all have finished: slurmrun report %s\n", filepath.Dir(filepath.Dir(path)))
	}
	fmt.Fprintf(f.out, "Rank%d Final Slurm run finished execution with exit code %d\n", f.cfg.Rank, final)
	return final
}

// writeRecord writes the rank's record with its codes and final code, and
// returns the final code and the record's path. A run without its record
// is not a success: CI would read the exit code and find nothing, so the
// code becomes 1 if it was 0, and the path is "".
func (f *Flow) writeRecord(final int) (int, string) {
	f.result.Codes = f.codes
	f.result.Final = final
	path, err := f.result.Write(f.resultDir(), f.red)
	if err != nil {
		f.log.WithError(err).Error("cannot write the result file")
		fmt.Fprintf(f.errOut, "slurmrun: the result file was not written: %v\n", err)
		return max(final, 1), ""
	}
	f.log.WithField("path", path).Info("result file written")
	return final, path
}

// killedByTermination reports whether code is 128+SIGTERM, SIGINT or SIGHUP.
func killedByTermination(code int) bool {
	return code == 128+int(unix.SIGTERM) || code == 128+int(unix.SIGINT) || code == 128+int(unix.SIGHUP)
}

func codeOf(err error) int {
	var se *StepError
	if errors.As(err, &se) && se.Code != 0 {
		return se.Code
	}
	return 1
}

func (f *Flow) resultDir() string {
	ws := f.cfg.JobWorkspace
	if ws == "" {
		wd, err := os.Getwd()
		if err != nil {
			wd = "."
		}
		ws = wd
	}
	return result.Dir(ws)
}

// enterResourcePath checks slurm_run.sh's `cd $resourcePathNode` (line 8). slurmrun never
// changes its own directory: each command gets its directory explicitly.
func enterResourcePath(_ context.Context, f *Flow) error {
	fi, err := os.Stat(f.cfg.ResourcePathNode)
	if err != nil {
		return stepFailed(1, "resourcePathNode: %w", err)
	}
	if !fi.IsDir() {
		return stepFailed(1, "resourcePathNode %s is not a directory", f.cfg.ResourcePathNode)
	}
	return nil
}
