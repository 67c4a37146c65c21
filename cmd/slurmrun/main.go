// Command slurmrun is the TensorRT-LLM container's entrypoint: it runs the
// per-rank slurm_run flow under a real init.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/slurmrun/slurmrun/container"
	"github.com/slurmrun/slurmrun/entrypoint"
	"github.com/slurmrun/slurmrun/internal/redact"
	"github.com/slurmrun/slurmrun/proc"
)

// version and commit are set with -ldflags -X at build time.
var (
	version = "dev"
	commit  = "unknown"
)

const usage = `usage: slurmrun <command> [flags]

commands:
  run       run the per-rank slurm_run flow (the default)
  install   run only the install step (disaggregated stages' install srun)
  launch    run a disaggregated job's steps with srun: slurmrun launch [--dry-run] [--srun-args-file F] [-- SRUN_ARGS...]
  spec      write an OCI config.json for the flow, or --check an existing bundle
  oci-run   Slurm oci.conf RunTimeRun: per-task variables, then crun/runc run
  plan      print what run would do, and run nothing
  exec      supervise any command as its init: slurmrun exec [-s -g -p SIG -e CODE -v -w] -- CMD [ARGS...]
  demo      run the flow for two local ranks on a miniature TensorRT-LLM tree
  report    JUnit and a text summary from a job's result files: slurmrun report [--out DIR] WS...
  version   print the version and commit

Configuration comes from the environment: slurmrun run --help lists it.
`

func main() {
	// A command that must start with the inherited signal state starts
	// through this binary: that must be dispatched before anything else.
	container.DispatchSigExec()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// jobCommand is the hidden subcommand the init starts the job with:
// slurmrun __job --signals STATE COMMAND [ARGS...].
const jobCommand = "__job"

func run(args []string, stdout, stderr *os.File) int {
	sub := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	switch sub {
	case "run", "install", "launch", "demo", "oci-run":
		return runUnderInit(sub, args, stdout, stderr)
	case jobCommand:
		return runJobCommand(args, stdout, stderr)
	case "plan":
		return runFlow(sub, args, container.Inherited(), stdout, stderr)
	case "spec":
		return runSpec(args, stdout, stderr)
	case "report":
		return runReport(args, stdout, stderr)
	case "exec":
		return runExec(args, stdout, stderr)
	case "version":
		fmt.Fprintf(stdout, "slurmrun %s (commit %s)\n", version, commit)
		return 0
	case "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "slurmrun: unknown command %q\n\n%s", sub, usage)
	return 2
}

// runUnderInit makes slurmrun the init and runs the job as its child: the
// same binary with the hidden job subcommand. The job's commands start with
// the signal state slurmrun was given, passed on explicitly.
func runUnderInit(sub string, args []string, stdout, stderr *os.File) int {
	log := newLogger(entrypoint.LogLevel(logrus.WarnLevel), "text", stderr).WithField("init", sub)
	grace, err := envGrace(os.LookupEnv)
	if err != nil {
		// The job reports the bad value; the init still needs a grace.
		grace = defaultGrace
	}
	cmd := exec.Command("/proc/self/exe", append([]string{jobCommand, "--signals", container.Inherited().String(), sub}, args...)...)
	cmd.Args[0] = os.Args[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	st, err := container.Run(cmd, container.Options{Log: log, SweepGrace: grace})
	if err != nil {
		fmt.Fprintf(stderr, "slurmrun %s: cannot start the job: %v\n", sub, err)
	}
	return st.Code
}

// runJobCommand is the init's child: the job logic, with plain os/exec.
func runJobCommand(args []string, stdout, stderr *os.File) int {
	if len(args) < 3 || args[0] != "--signals" {
		fmt.Fprintf(stderr, "slurmrun %s: want --signals STATE COMMAND [ARGS...]\n", jobCommand)
		return 2
	}
	signals, err := container.ParseSignalState(args[1])
	if err != nil {
		fmt.Fprintf(stderr, "slurmrun %s: %v\n", jobCommand, err)
		return 2
	}
	sub, args := args[2], args[3:]
	switch sub {
	case "run", "install":
		return runFlow(sub, args, signals, stdout, stderr)
	case "launch":
		return runLaunch(args, signals, stdout, stderr)
	case "demo":
		return runDemo(args, signals, stdout, stderr)
	case "oci-run":
		return runOCI(args, signals, stdout, stderr)
	}
	fmt.Fprintf(stderr, "slurmrun %s: unknown command %q\n", jobCommand, sub)
	return 2
}

func runFlow(sub string, args []string, signals container.SignalState, stdout, stderr *os.File) int {
	fs := flag.NewFlagSet("slurmrun "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stdout, "usage: slurmrun %s\n\nEnvironment:\n", sub)
		entrypoint.WriteUsage(stdout)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "slurmrun %s: unexpected arguments %q\n", sub, fs.Args())
		return 2
	}
	need := entrypoint.NeedRun
	if sub == "install" {
		need = entrypoint.NeedInstall
	}
	environ := os.Environ()
	// slurmrun's own messages and logs, secrets masked; the commands keep
	// the real stderr.
	red := redact.New(environ)
	says := red.Writer(stderr)
	cfg, err := entrypoint.LoadConfig(environ, need)
	if err != nil {
		fmt.Fprintf(says, "slurmrun %s: %v\n", sub, err)
		return 2
	}
	log := newLogger(cfg.LogLevel, cfg.LogFormat, says).WithFields(logrus.Fields{"rank": int(cfg.Rank), "role": cfg.Role.Name()})
	sup := proc.New(log, signals)
	ctx, stop := sup.ForwardSignals(context.Background(), cfg.Grace)
	defer stop()

	flow := entrypoint.NewFlow(cfg, environ, red, log, sup, stdout, stderr)
	switch sub {
	case "install":
		return flow.RunInstall(ctx)
	case "plan":
		if err := flow.Plan(ctx, stdout); err != nil {
			fmt.Fprintf(says, "slurmrun plan: %v\n", err)
			return 1
		}
		return 0
	}
	if err := flow.Prepare(); err != nil {
		fmt.Fprintf(says, "slurmrun run: %v\n", err)
		return exitCode(err)
	}
	return flow.Run(ctx)
}

func exitCode(err error) int {
	var se *entrypoint.StepError
	if errors.As(err, &se) {
		return se.Code
	}
	return 1
}

func newLogger(level entrypoint.LogLevel, format string, out io.Writer) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(out)
	l.SetLevel(logrus.Level(level))
	if format == "json" {
		l.SetFormatter(&logrus.JSONFormatter{})
	} else {
		l.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, TimestampFormat: "15:04:05.000"})
	}
	return logrus.NewEntry(l)
}
