// Command slurmrun is the TensorRT-LLM container's entrypoint: it runs the
// per-rank slurm_run flow under a real init.
//
// Each subcommand is a row of the table in commands(), in a file of its
// own; usage and --help are made from the table.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/sirupsen/logrus"

	"github.com/slurmrun/slurmrun/config"
	"github.com/slurmrun/slurmrun/container"
	"github.com/slurmrun/slurmrun/proc"
)

// version and commit are set with -ldflags -X at build time.
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	// A command that must start with the inherited signal state starts
	// through this binary: that must be dispatched before anything else.
	container.DispatchSigExec()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// command is one subcommand.
type command struct {
	name, args, summary string
	// underInit: slurmrun starts as the init and runs the command as its
	// child (init.go).
	underInit bool
	// settings, when set, is what the command reads from the environment;
	// its --help lists the variables.
	settings func() config.Spec
	// define declares the command's flags and returns what runs it. A
	// command without it (exec, whose flags are tini's) parses its own.
	define func(fs *flag.FlagSet) func(in *invocation) int
	raw    func(in *invocation) int
}

// invocation is one run of a command.
type invocation struct {
	name    string
	args    []string // what is left after the flags
	environ []string // the process environment, as the command found it
	signals container.SignalState
	held    *proc.Held // the job's terminating signals until it forwards them
	stdout  *os.File
	stderr  *os.File
}

// commands is the table, in the order usage lists it.
func commands() []*command {
	return []*command{
		runCommand(), installCommand(), planCommand(), launchCommand(), specCommand(), ociRunCommand(),
		execCommand(), demoCommand(), reportCommand(), versionCommand(),
	}
}

func lookup(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return nil
}

// jobCommand is the hidden subcommand the init starts the job with:
// slurmrun __job --signals STATE COMMAND [ARGS...].
const jobCommand = "__job"

func run(args []string, stdout, stderr *os.File) int {
	name := "run" // as slurm_run.sh, with no arguments
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help", "help":
			if len(args) > 1 && args[0] == "help" && lookup(args[1]) != nil {
				return invoke(lookup(args[1]), []string{"--help"}, container.Inherited(), nil, stdout, stderr)
			}
			writeUsage(stdout)
			return 0
		case jobCommand:
			return runJobCommand(args[1:], stdout, stderr)
		}
		name, args = args[0], args[1:]
	}
	c := lookup(name)
	if c == nil {
		fmt.Fprintf(stderr, "slurmrun: unknown command %q\n\n", name)
		writeUsage(stderr)
		return 2
	}
	if c.underInit {
		// Flags are checked here, so that a typo or --help starts nothing.
		if c.define != nil {
			fs, _ := flagSet(c, stderr)
			if code, stop := parse(c, fs, args, stdout, stderr); stop {
				return code
			}
		}
		return runUnderInit(c.name, args, stdout, stderr)
	}
	return invoke(c, args, container.Inherited(), nil, stdout, stderr)
}

// invoke parses c's flags and runs it.
func invoke(c *command, args []string, signals container.SignalState, held *proc.Held, stdout, stderr *os.File) int {
	in := &invocation{name: c.name, args: args, environ: os.Environ(), signals: signals, held: held, stdout: stdout, stderr: stderr}
	if c.raw != nil {
		return c.raw(in)
	}
	fs, runner := flagSet(c, stderr)
	if code, stop := parse(c, fs, args, stdout, stderr); stop {
		return code
	}
	in.args = fs.Args()
	return runner(in)
}

// flagSet declares c's flags.
func flagSet(c *command, stderr io.Writer) (*flag.FlagSet, func(*invocation) int) {
	fs := flag.NewFlagSet("slurmrun "+c.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // help goes to stdout, a mistake's hint to stderr: parse says which
	return fs, c.define(fs)
}

// parse parses args; stop says the command ends there, with code: 0 after
// --help, 2 after a bad flag.
func parse(c *command, fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, stop bool) {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, flag.ErrHelp):
		writeHelp(stdout, c, fs)
		return 0, true
	}
	fmt.Fprintf(stderr, "usage: slurmrun %s %s (slurmrun help %s says more)\n", c.name, c.args, c.name)
	return 2, true
}

func writeHelp(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: slurmrun %s %s\n\n%s\n", c.name, c.args, c.summary)
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintln(w, "\nFlags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	if c.settings != nil {
		fmt.Fprintln(w, "\nEnvironment:")
		config.WriteUsage(w, c.settings())
	}
}

func writeUsage(w io.Writer) {
	fmt.Fprint(w, "usage: slurmrun <command> [flags] [args]\n\nCommands:\n")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, c := range commands() {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprint(w, "\nWith no command, slurmrun runs `run`. slurmrun help COMMAND (or COMMAND --help) says more,\n"+
		"and lists the environment variables the command reads.\n")
}

// newLogger is slurmrun's own log, on out.
func newLogger(c config.Logs, out io.Writer) *logrus.Entry {
	l := logrus.New()
	l.SetOutput(out)
	l.SetLevel(logrus.Level(c.LogLevel))
	if c.LogFormat == "json" {
		l.SetFormatter(&logrus.JSONFormatter{})
	} else {
		l.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, TimestampFormat: "15:04:05.000"})
	}
	return logrus.NewEntry(l)
}

// logAt is a text log at level, for the commands that do not read
// SLURMRUN_LOG_LEVEL (the init, exec, oci-run, demo).
func logAt(level logrus.Level) config.Logs {
	return config.Logs{LogLevel: config.LogLevel(level), LogFormat: "text"}
}

// badConfig reports a configuration error as every command does.
func badConfig(in *invocation, err error) int {
	fmt.Fprintf(in.stderr, "slurmrun %s: %v\n", in.name, err)
	return 2
}
