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

// steps is this rank's flow: slurm_run.sh's steps, the profile's and the
// hooks.
func (f *Flow) steps() []Step { return f.withHooks(f.withProfile(baseSteps())) }

// baseSteps is the flow in the order slurm_run.sh runs it.
func baseSteps() []Step {
	return []Step{
		{Name: "workdir", Run: enterResourcePath, Plan: true},
		{Name: "git-safe-directory", Run: allowAnyGitDirectory, Plan: true},
		{Name: "install", Run: installInline, Skip: skipInstall},
		{Name: "gb200-coherent", Run: checkCoherentMapping, Skip: skipUnlessGB200},
		{Name: "llmapi-launch", Run: prepareLauncher, Plan: true},
		{Name: "wheel-path", Run: resolveWheelPath, Plan: true},
		{Name: "coverage-config", Run: shareCoverageConfig, Skip: skipCoverage},
		{Name: "library-path", Run: prependLibraryPath, Plan: true},
		{Name: "full-command", Run: printFullCommand, Plan: true},
		{Name: "single-node-scrub", Run: scrubSingleNode, Skip: skipScrub, Plan: true},
		{Name: "pytest", Tail: true, Run: runPytest},
		{Name: "usage-error-diagnostics", Tail: true, Run: diagnoseUsageError, Skip: skipUnlessUsageError, When: "only if pytest exits with 4"},
		{Name: "perf", Tail: true, Run: checkPerf, Skip: skipPerf},
	}
}

// StepError is a step's failure with the exit code it gives the rank.
type StepError struct {
	Code int
	Err  error
}

func (e *StepError) Error() string { return fmt.Sprintf("%v (exit code %d)", e.Err, e.Code) }
func (e *StepError) Unwrap() error { return e.Err }

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
	f.result.Codes = f.codes
	f.result.Final = final
	if path, err := f.result.Write(f.resultDir(), f.red); err != nil {
		// A run without its record is not a success: CI would read the
		// exit code and find nothing.
		f.log.WithError(err).Error("cannot write the result file")
		fmt.Fprintf(f.errOut, "slurmrun: the result file was not written: %v\n", err)
		if final == 0 {
			final = 1
		}
	} else {
		f.log.WithField("path", path).Info("result file written")
		if f.cfg.Rank == 0 {
			// Once per job: the page and JUnit of every rank's steps.
			fmt.Fprintf(f.out, "Report of the job's ranks, when all have finished: slurmrun report %s\n", filepath.Dir(filepath.Dir(path)))
		}
	}
	fmt.Fprintf(f.out, "Rank%d Final Slurm run finished execution with exit code %d\n", f.cfg.Rank, final)
	return final
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
