package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/slurmrun/slurmrun/container"
	"github.com/slurmrun/slurmrun/container/oci"
	"github.com/slurmrun/slurmrun/entrypoint"
	"github.com/slurmrun/slurmrun/proc"
)

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// runSpec writes an OCI config.json for running the flow in a bundle, or
// with --check says what an existing bundle would miss.
func runSpec(args []string, stdout, stderr *os.File) int {
	fs := flag.NewFlagSet("slurmrun spec", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bundle := fs.String("bundle", "", "bundle directory to write config.json into (required)")
	check := fs.String("check", "", "check an existing bundle instead of writing one")
	shm := fs.String("shm-size", "", "size of /dev/shm (default: half the host memory)")
	var binds stringList
	fs.Var(&binds, "bind", "SRC[:DST][:ro] to bind into the container (repeatable; jobWorkspace and resourcePathNode are bound when set)")
	fs.Usage = func() {
		fmt.Fprintln(stdout, "usage: slurmrun spec --bundle DIR [--bind SRC[:DST][:ro]]... [--shm-size SIZE] [-- ARGS...]\n       slurmrun spec --check BUNDLE")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *check != "" {
		return checkBundle(*check, stdout, stderr)
	}
	if *bundle == "" {
		// Never a config.json in whatever directory this happens to run in:
		// it holds the job's whole environment, secrets included.
		fmt.Fprintln(stderr, "slurmrun spec: --bundle DIR is required (config.json holds the job's environment and is written with mode 0600)")
		return 2
	}
	o := oci.SpecOptions{Args: fs.Args(), Env: os.Environ(), NvidiaHook: oci.FindNvidiaHook(),
		Terminal: term.IsTerminal(int(os.Stdin.Fd()))}
	if len(o.Args) == 0 {
		o.Args = []string{"/usr/local/bin/slurmrun", "run"}
	}
	o.ShmBytes = halfMemory()
	if *shm != "" {
		n, ok := oci.ParseSize(*shm)
		if !ok {
			fmt.Fprintf(stderr, "slurmrun spec: --shm-size %q: want bytes or a k, m or g size\n", *shm)
			return 2
		}
		o.ShmBytes = n
	}
	for _, name := range []string{"jobWorkspace", "resourcePathNode"} {
		if p := os.Getenv(name); p != "" {
			o.Binds = append(o.Binds, oci.Bind{Source: p, Destination: p})
		}
	}
	o.Cwd = os.Getenv("jobWorkspace")
	for _, b := range binds {
		parsed, err := oci.ParseBind(b)
		if err != nil {
			fmt.Fprintf(stderr, "slurmrun spec: %v\n", err)
			return 2
		}
		o.Binds = append(o.Binds, parsed)
	}
	if err := oci.WriteSpec(*bundle, oci.NewSpec(o)); err != nil {
		fmt.Fprintf(stderr, "slurmrun spec: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s/config.json (mode 0600: it holds the job's environment)\n", *bundle)
	return 0
}

func halfMemory() int64 {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 8 << 30
	}
	return int64(si.Totalram) * int64(si.Unit) / 2
}

func checkBundle(bundle string, stdout, stderr *os.File) int {
	s, err := oci.ReadSpec(bundle)
	if err != nil {
		fmt.Fprintf(stderr, "slurmrun spec --check: %v\n", err)
		return 1
	}
	findings := oci.CheckSpec(bundle, s, []string{"resourcePathNode", "stageName", "pytestCommand"})
	problems := 0
	for _, f := range findings {
		level := "warning"
		if f.Problem {
			level = "problem"
			problems++
		}
		fmt.Fprintf(stdout, "%s: %s\n", level, f.Text)
	}
	if problems > 0 {
		fmt.Fprintf(stdout, "%s: %d problems: the flow would not run as it should\n", bundle, problems)
		return 1
	}
	fmt.Fprintf(stdout, "%s: the flow has what it needs (%d warnings)\n", bundle, len(findings))
	return 0
}

// runOCI is Slurm's oci.conf RunTimeRun: it gives the task the variables
// Slurm 22.05 leaves empty in --container steps and runs the OCI runtime.
//
//	RunTimeRun="slurmrun oci-run --bundle %b --id %n.%u.%j.%s.%t --node %n --task %t"
func runOCI(args []string, signals container.SignalState, stdout, stderr *os.File) int {
	fs := flag.NewFlagSet("slurmrun oci-run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bundle := fs.String("bundle", "", "the bundle Slurm passes (%b)")
	id := fs.String("id", "", "container id (%n.%u.%j.%s.%t)")
	node := fs.String("node", "", "this node's name (%n)")
	task := fs.Int("task", 0, "local task id (%t)")
	runtime := fs.String("runtime", "crun", "OCI runtime")
	root := fs.String("root", "/run/crun-slurm", "the runtime's state directory (as in RunTimeKill and RunTimeDelete)")
	stateDir := fs.String("state-dir", "/run/slurmrun-oci", "where the per-task bundles go")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *bundle == "" || *id == "" || *node == "" {
		fmt.Fprintln(stderr, "slurmrun oci-run: --bundle, --id and --node are required")
		return 2
	}
	entry := newLogger(entrypoint.LogLevel(logrus.InfoLevel), "text", stderr).WithField("container", *id)
	sup := proc.New(entry, signals)
	hostnames := func(list string) ([]string, error) { return entrypoint.Hostnames(context.Background(), sup, list) }
	dir, err := oci.TaskBundle(*bundle, *stateDir, *id, oci.TaskIdentity{Node: *node, LocalTask: *task}, hostnames)
	if err != nil {
		fmt.Fprintf(stderr, "slurmrun oci-run: %v\n", err)
		return 1
	}
	defer oci.RemoveTaskBundle(dir)
	grace, err := envGrace(os.LookupEnv)
	if err != nil {
		entry.WithError(err).Warnf("using a grace period of %s", defaultGrace)
		grace = defaultGrace
	}
	// The runtime forwards what it gets to the container's init; the grace
	// is Slurm's, as for the flow.
	_, stop := sup.ForwardSignals(context.Background(), grace)
	defer stop()
	cmd := exec.Command(*runtime, "--root="+*root, "run", "--bundle", dir, *id)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	if cmd.Err != nil {
		fmt.Fprintf(stderr, "slurmrun oci-run: %v\n", cmd.Err)
		return container.StartFailureCode(cmd.Err)
	}
	st, err := sup.Run(cmd)
	if err != nil {
		fmt.Fprintf(stderr, "slurmrun oci-run: %s: %v\n", *runtime, err)
	}
	return st.Code
}
