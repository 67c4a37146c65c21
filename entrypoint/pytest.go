package entrypoint

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/interp"
	"mvdan.cc/sh/v3/syntax"

	"github.com/slurmrun/slurmrun/config"
	"github.com/slurmrun/slurmrun/container"
	"github.com/slurmrun/slurmrun/proc"
)

// runPytest runs the filled command with the shell interpreter: no bash, no
// eval. Every program it starts goes through the Supervisor.
func runPytest(ctx context.Context, f *Flow) error {
	code, shellErr := f.interpret(ctx)
	f.codes.Pytest = intp(code)
	fmt.Fprintf(f.out, "Rank%d Pytest finished execution with exit code %d\n", f.cfg.Rank, code)
	if shellErr != "" {
		return stepFailed(code, "pytestCommand: the interpreter failed: %s", shellErr)
	}
	if code != 0 {
		return stepFailed(code, "pytestCommand failed")
	}
	return nil
}

// interpret runs f.command in f.childEnv from the defs directory and returns
// its exit status, and the interpreter's own error if it had one. Whatever
// the interpreter itself writes to stderr is an
// error it hit (mvdan.cc/sh prints some expansion errors, such as a brace
// expansion over its limit, and goes on with status 0, the command never
// run): such an error stops the command and makes its status 1.
func (f *Flow) interpret(ctx context.Context) (code int, shellErr string) {
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	errs := &interpreterErrors{out: f.errOut, stop: stop}
	runner, err := interp.New(
		interp.Env(expand.ListEnviron(f.childEnv.List()...)),
		interp.Dir(f.defsDir),
		interp.StdIO(os.Stdin, f.stdout, errs),
		// nounset, as under slurm_run.sh's `set -u` (line 4).
		interp.Params("-u"),
		interp.CallHandler(refuseBuiltins),
		interp.ExecHandlers(f.supervised),
	)
	if err != nil {
		f.log.WithError(err).Error("cannot start the command interpreter")
		return 1, ""
	}
	// The interpreter resets PWD to its directory without exporting it;
	// bash's inherited PWD stays exported, so pytest sees it.
	if err := runner.Run(ctx, exportPWD); err != nil {
		f.log.WithError(err).Error("cannot export PWD")
		return 1, ""
	}
	err = runner.Run(ctx, f.command.file)
	if msg := errs.first(); msg != "" {
		return 1, msg
	}
	if status, ok := errors.AsType[interp.ExitStatus](err); ok {
		return int(status), ""
	}
	if err != nil {
		if sig := proc.TerminatingSignal(ctx); sig != 0 {
			return 128 + int(sig), ""
		}
		fmt.Fprintf(f.errOut, "pytestCommand: %v\n", err)
		return 1, ""
	}
	return 0, ""
}

// interpreterErrors is the interpreter's own stderr. The programs it runs
// write to the flow's stderr directly (supervised), so anything written here
// is the interpreter's: it is passed on, kept, and stops the run.
type interpreterErrors struct {
	out  io.Writer
	stop context.CancelCauseFunc
	mu   sync.Mutex
	msg  string
}

func (e *interpreterErrors) Write(p []byte) (int, error) {
	e.mu.Lock()
	if e.msg == "" {
		e.msg = strings.TrimSpace(string(p))
	}
	e.mu.Unlock()
	fmt.Fprintf(e.out, "pytestCommand: %s", p)
	e.stop(errors.New("interpreter error"))
	return len(p), nil
}

func (e *interpreterErrors) first() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.msg
}

var exportPWD = func() *syntax.Stmt {
	f, err := syntax.NewParser().Parse(strings.NewReader("export PWD"), "")
	if err != nil {
		panic(err)
	}
	return f.Stmts[0]
}()

// refuseBuiltins stops builtins that a variable expanded into a command name,
// which the parse-time check cannot see.
func refuseBuiltins(_ context.Context, args []string) ([]string, error) {
	if isBuiltin(args[0]) && !allowedBuiltins[args[0]] {
		return nil, fmt.Errorf("pytestCommand: builtin %s is refused", args[0])
	}
	return args, nil
}

// supervised runs each program the interpreter starts in its own process
// group under the Supervisor, so its status is never lost to the reaper and
// signals reach its whole group.
func (f *Flow) supervised(interp.ExecHandlerFunc) interp.ExecHandlerFunc {
	return func(ctx context.Context, args []string) error {
		hc := interp.HandlerCtx(ctx)
		path, err := interp.LookPathDir(hc.Dir, hc.Env, args[0])
		if err != nil {
			fmt.Fprintln(f.errOut, err)
			return interp.ExitStatus(127)
		}
		// The flow's stderr, not the interpreter's: what programs write is
		// theirs (redirections are refused, so nothing else is meant).
		cmd := &exec.Cmd{Path: path, Args: args, Env: exportedEnv(hc.Env), Dir: hc.Dir,
			Stdin: hc.Stdin, Stdout: hc.Stdout, Stderr: f.stderr}
		f.log.WithField("argv", args).Debug("starting")
		st, err := f.sup.Run(cmd)
		if err != nil {
			fmt.Fprintf(f.errOut, "%s: %v\n", args[0], err)
		}
		if st.Code != 0 {
			return interp.ExitStatus(st.Code)
		}
		return nil
	}
}

// exportedEnv is the environment a started program gets from the interpreter.
func exportedEnv(env expand.Environ) []string {
	var list []string
	seen := make(map[string]int)
	for name, vr := range env.Each {
		if i, ok := seen[name]; ok {
			list[i] = ""
		}
		if vr.IsSet() && vr.Exported && vr.Kind == expand.String {
			seen[name] = len(list)
			list = append(list, name+"="+vr.String())
		}
	}
	out := list[:0]
	for _, kv := range list {
		if kv != "" {
			out = append(out, kv)
		}
	}
	return out
}

func skipUnlessUsageError(f *Flow) string {
	if f.codes.Pytest == nil || *f.codes.Pytest != 4 {
		return "pytest did not exit with 4"
	}
	return ""
}

// diagnoseUsageError prints what helps explain pytest's intermittent usage
// error (exit code 4, "unrecognized arguments").
func diagnoseUsageError(ctx context.Context, f *Flow) error {
	out := f.stdout
	fmt.Fprintln(out, "DEBUG: Pytest failed with usage error (exit code 4)")
	fmt.Fprintf(out, "DEBUG: Directory state at %s:\n", f.defsDir)
	f.runQuiet(ctx, f.defsDir, "ls", "-l")
	fmt.Fprintf(out, "DEBUG: Directory state at %s:\n", f.defsDir)
	f.runQuiet(ctx, f.defsDir, "ls", "-l", f.defsDir)
	fmt.Fprintln(out, "DEBUG: conftest.py content:")
	printMD5(out, f.stderr, filepath.Join(f.defsDir, "conftest.py"))
	fmt.Fprintln(out, "DEBUG: pytest.ini content:")
	printMD5(out, f.stderr, filepath.Join(f.defsDir, "pytest.ini"))
	fmt.Fprintln(out, "DEBUG: Check importability of conftest.py")
	f.runQuiet(ctx, f.defsDir, f.cfg.Python, "-c",
		"import sys; sys.path.insert(0, '.'); import conftest; print('DEBUG: conftest imported successfully')")
	return nil
}

// runQuiet runs a diagnostic command whose failure changes nothing.
func (f *Flow) runQuiet(ctx context.Context, dir string, argv ...string) {
	if _, err := f.run(ctx, dir, argv...); err != nil {
		f.log.WithError(err).WithField("argv", argv).Warn("diagnostic command failed")
	}
}

// run runs argv in dir with pytest's environment and slurmrun's output; a
// non-zero exit is an error too.
func (f *Flow) run(ctx context.Context, dir string, argv ...string) (proc.ExitStatus, error) {
	st, err := f.runWith(ctx, f.childEnv, dir, f.stdout, argv...)
	if err == nil && st.Code != 0 {
		err = fmt.Errorf("%s: %s", argv[0], st)
	}
	return st, err
}

// runWith runs argv in dir with env and stdout, under the Supervisor. Its
// error says why the command did not run or was stopped; how it exited is
// the status.
func (f *Flow) runWith(ctx context.Context, env *Env, dir string, stdout io.Writer, argv ...string) (proc.ExitStatus, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = env.List(), dir, stdout, f.stderr
	if cmd.Err != nil {
		return proc.ExitStatus{Code: container.StartFailureCode(cmd.Err)}, fmt.Errorf("%s: %w", argv[0], cmd.Err)
	}
	if sig := proc.TerminatingSignal(ctx); sig != 0 {
		// Cancelled: the next command does not start.
		return proc.ExitStatus{Code: 128 + int(sig)}, context.Cause(ctx)
	}
	return f.sup.RunContext(ctx, cmd, f.cfg.Grace)
}

// printMD5 prints a file's digest as md5sum does.
func printMD5(out, errOut io.Writer, path string) {
	file, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(errOut, "md5sum: %v\n", err)
		return
	}
	defer file.Close()
	h := md5.New()
	if _, err := io.Copy(h, file); err != nil {
		fmt.Fprintf(errOut, "md5sum: %s: %v\n", path, err)
		return
	}
	fmt.Fprintf(out, "%x  %s\n", h.Sum(nil), path)
}

func skipPerf(f *Flow) string {
	switch {
	case f.cfg.Rank != 0:
		return "not rank 0"
	case !f.cfg.PerfMode:
		return "perfMode is not true"
	}
	return ""
}

// checkPerf compares the perf results with the baseline and builds the
// report; a failed report counts as a failed check.
func checkPerf(ctx context.Context, f *Flow) error {
	base := "base_perf_pytorch.csv"
	if f.cfg.Version.PerfBaseline == config.BaselineByStage && !strings.Contains(f.cfg.StageName, "PyTorch") {
		base = "base_perf.csv"
	}
	perfDir := filepath.Join(f.defsDir, "perf")
	basePath := filepath.Join(perfDir, base)
	results := filepath.Join(f.cfg.StageName, "perf_script_test_results.csv")

	fmt.Fprintln(f.out, "Check Perf Result")
	check, _ := f.run(ctx, f.defsDir, f.cfg.Python, filepath.Join(perfDir, "sanity_perf_check.py"), results, basePath)
	fmt.Fprintln(f.out, "Create Perf Report")
	report, _ := f.run(ctx, f.defsDir, f.cfg.Python, filepath.Join(perfDir, "create_perf_comparison_report.py"),
		"--output_path", filepath.Join(f.cfg.StageName, "report.pdf"), "--files", results, basePath)
	fmt.Fprintf(f.out, "Rank%d Perf report finished execution with exit code %d\n", f.cfg.Rank, report.Code)
	code := foldReport(check.Code, report.Code)
	f.codes.PerfCheck, f.codes.PerfReport = intp(code), intp(report.Code)
	fmt.Fprintf(f.out, "Rank%d Perf check finished execution with exit code %d\n", f.cfg.Rank, code)
	if code != 0 {
		return stepFailed(code, "perf check failed")
	}
	return nil
}

func skipPerfSanity(f *Flow) string {
	switch {
	case f.cfg.Rank != 0:
		return "not rank 0"
	case !strings.Contains(f.cfg.StageName, "PerfSanity"):
		return "stage is not PerfSanity"
	}
	return ""
}

// checkPerfSanity runs the PerfSanity regression check on the job
// workspace, as slurm_run.sh @38660dfb does after the perf tail.
func checkPerfSanity(ctx context.Context, f *Flow) error {
	fmt.Fprintln(f.out, "Check PerfSanity Result")
	st, _ := f.run(ctx, f.defsDir, f.cfg.Python, filepath.Join(f.defsDir, "perf", "perf_regression_check.py"), f.cfg.JobWorkspace)
	f.codes.PerfSanity = intp(st.Code)
	fmt.Fprintf(f.out, "Rank%d PerfSanity check finished execution with exit code %d\n", f.cfg.Rank, st.Code)
	if st.Code != 0 {
		return stepFailed(st.Code, "PerfSanity check failed")
	}
	return nil
}

func skipS3Drain(f *Flow) string {
	switch {
	case f.cfg.Rank != 0:
		return "not rank 0"
	case f.cfg.JobWorkspace == "":
		return "jobWorkspace is not set"
	}
	return ""
}

// drainS3Spool uploads what the tests spooled for S3, as main does after
// pytest on rank 0 (#18240). Its failure changes no exit code (upstream's
// `|| true`): the step is recorded as done, with the code it ended with.
func drainS3Spool(ctx context.Context, f *Flow) error {
	st, err := f.run(ctx, f.defsDir, f.cfg.Python, filepath.Join(f.srcDir, "tests", "test_common", "s3_output.py"),
		"--drain-spool", f.cfg.JobWorkspace)
	if err != nil && proc.TerminatingSignal(ctx) == 0 {
		return &IgnoredError{Code: st.Code, Err: fmt.Errorf("S3 drain: %w (ignored)", err)}
	}
	return err
}
