package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/slurmrun/slurmrun/config"
	"github.com/slurmrun/slurmrun/container/oci"
)

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func specCommand() *command {
	return &command{
		name: "spec", args: "--bundle DIR [--bind SRC[:DST][:ro]]... [--shm-size SIZE] [-- ARGS...] | --check BUNDLE",
		summary: "write an OCI config.json for the flow (mode 0600: it holds the job's environment), or --check a bundle",
		define: func(fs *flag.FlagSet) func(*invocation) int {
			var o specFlags
			fs.StringVar(&o.bundle, "bundle", "", "bundle directory to write config.json into (required)")
			fs.StringVar(&o.check, "check", "", "check an existing bundle instead of writing one")
			fs.StringVar(&o.shm, "shm-size", "", "size of /dev/shm (default: half the host memory)")
			fs.Var(&o.binds, "bind", "SRC[:DST][:ro] to bind into the container (repeatable; jobWorkspace and resourcePathNode are bound when set)")
			return func(in *invocation) int { return runSpec(in, o) }
		},
	}
}

type specFlags struct {
	bundle, check, shm string
	binds              stringList
}

// runSpec writes an OCI config.json for running the flow in a bundle, or
// with --check says what an existing bundle would miss.
func runSpec(in *invocation, f specFlags) int {
	stdout, stderr := in.stdout, in.stderr
	if f.check != "" {
		return checkBundle(f.check, stdout, stderr)
	}
	if f.bundle == "" {
		// Never a config.json in whatever directory this happens to run in:
		// it holds the job's whole environment, secrets included.
		fmt.Fprintln(stderr, "slurmrun spec: --bundle DIR is required (config.json holds the job's environment and is written with mode 0600)")
		return 2
	}
	o := oci.SpecOptions{Args: in.args, Env: in.environ, NvidiaHook: oci.FindNvidiaHook(),
		Terminal: term.IsTerminal(int(os.Stdin.Fd()))}
	if len(o.Args) == 0 {
		o.Args = []string{"/usr/local/bin/slurmrun", "run"}
	}
	o.ShmBytes = halfMemory()
	if f.shm != "" {
		n, ok := oci.ParseSize(f.shm)
		if !ok {
			fmt.Fprintf(stderr, "slurmrun spec: --shm-size %q: want bytes or a k, m or g size\n", f.shm)
			return 2
		}
		o.ShmBytes = n
	}
	// The flow's directories, as the job's environment names them; a
	// value that does not parse is the flow's to report, in the container.
	var cfg config.Run
	_ = config.Read(in.environ, &cfg)
	for _, p := range cfg.Directories() {
		o.Binds = append(o.Binds, oci.Bind{Source: p, Destination: p})
	}
	o.Cwd = cfg.JobWorkspace
	for _, b := range f.binds {
		parsed, err := oci.ParseBind(b)
		if err != nil {
			fmt.Fprintf(stderr, "slurmrun spec: %v\n", err)
			return 2
		}
		o.Binds = append(o.Binds, parsed)
	}
	if err := oci.WriteSpec(f.bundle, oci.NewSpec(o)); err != nil {
		fmt.Fprintf(stderr, "slurmrun spec: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s/config.json (mode 0600: it holds the job's environment)\n", f.bundle)
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
	// What the flow needs, judged on the bundle's own environment.
	cfg := config.Run{Need: config.NeedRun}
	var env []string
	if s.Process != nil {
		env = s.Process.Env
	}
	_ = config.Read(env, &cfg)
	findings := oci.CheckSpec(bundle, s, cfg.Required(), config.DirectoryVariables())
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
