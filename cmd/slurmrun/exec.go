package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/slurmrun/slurmrun/config"
	"github.com/slurmrun/slurmrun/container"
)

// execOptions are tini's flags, where they make sense for slurmrun.
type execOptions struct {
	group     bool          // -g: signal the child's process group, not only the child
	pdeathsig unix.Signal   // -p SIG: the signal slurmrun gets when its parent dies
	remap     map[int]bool  // -e CODE: exit codes that count as 0
	verbosity int           // -v, repeatable
	warnReap  bool          // -w: warn on every orphan reaped
	killAfter time.Duration // -t DURATION: SIGKILL the group that long after a forwarded SIGTERM or SIGINT
	sweep     time.Duration // SLURMRUN_GRACE: what the child leaves behind gets this long after SIGTERM
	argv      []string
}

const execUsage = `usage: slurmrun exec [-s] [-g] [-p SIGNAL] [-e CODE]... [-v]... [-w] [-t GRACE] [--] CMD [ARGS...]

  -s         become a child subreaper (always done when not PID 1; accepted for tini compatibility)
  -g         forward signals to the child's process group (TINI_KILL_PROCESS_GROUP)
  -p SIGNAL  receive SIGNAL when slurmrun's parent dies (e.g. SIGKILL)
  -e CODE    exit with 0 when the child exits with CODE (repeatable)
  -v         more logging (repeatable; TINI_VERBOSITY=N)
  -w         warn on every zombie reaped
  -t GRACE   kill the child's process group GRACE (e.g. 30s) after a forwarded
             SIGTERM or SIGINT; off by default: every signal is only forwarded

Exits with the child's code, 128+N when a signal N killed it, 127 when the
command does not exist and 126 when it cannot be executed. When the child has
exited, what it left behind gets SIGTERM, then SIGKILL after SLURMRUN_GRACE
(default 20s).
`

// parseExecArgs reads flags getopt-style, stopping at -- or the first
// non-option, as tini does.
func parseExecArgs(args []string, cfg config.Exec) (*execOptions, error) {
	o := &execOptions{remap: map[int]bool{}, verbosity: cfg.Verbosity, sweep: cfg.Grace, group: cfg.KillProcessGroup != ""}
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if a == "--help" {
			return nil, errHelp
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			switch c {
			case 's':
			case 'g':
				o.group = true
			case 'w':
				o.warnReap = true
			case 'v':
				o.verbosity++
			case 'h':
				return nil, errHelp
			case 'p', 'e', 't':
				val := a[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return nil, fmt.Errorf("-%c needs a value", c)
					}
					i++
					val = args[i]
				}
				if err := o.set(c, val); err != nil {
					return nil, err
				}
				j = len(a)
			default:
				return nil, fmt.Errorf("unknown option -%c", c)
			}
		}
	}
	o.argv = args[i:]
	if len(o.argv) == 0 {
		return nil, errors.New("no command given")
	}
	return o, nil
}

var errHelp = errors.New("help requested")

func (o *execOptions) set(flag byte, val string) error {
	switch flag {
	case 'p':
		sig := unix.SignalNum(strings.ToUpper(val))
		if sig == 0 {
			sig = unix.SignalNum("SIG" + strings.ToUpper(val))
		}
		if sig == 0 {
			return fmt.Errorf("-p %s: unknown signal", val)
		}
		o.pdeathsig = sig
	case 'e':
		n, err := strconv.Atoi(val)
		if err != nil || n < 0 || n > 255 {
			return fmt.Errorf("-e %s: want an exit code 0-255", val)
		}
		o.remap[n] = true
	case 't':
		d, err := time.ParseDuration(val)
		if err != nil || d <= 0 {
			return fmt.Errorf("-t %s: want a positive duration such as 30s", val)
		}
		o.killAfter = d
	}
	return nil
}

func execCommand() *command {
	return &command{
		name: "exec", args: "[-s -g -p SIG -e CODE -v -w -t GRACE] -- CMD [ARGS...]",
		summary:  "supervise any command as its init, as tini does (an image ENTRYPOINT)",
		settings: func() config.Spec { return &config.Exec{} },
		raw:      runExec,
	}
}

// runExec is the init alone, as tini: one command, reaped, every signal
// forwarded, what it leaves behind swept, its exit code passed on.
func runExec(in *invocation) int {
	stdout, stderr := in.stdout, in.stderr
	var cfg config.Exec
	if err := config.Read(in.environ, &cfg); err != nil {
		return badConfig(in, err)
	}
	o, err := parseExecArgs(in.args, cfg)
	if errors.Is(err, errHelp) {
		fmt.Fprint(stdout, execUsage)
		fmt.Fprintln(stdout, "\nEnvironment:")
		config.WriteUsage(stdout, &config.Exec{})
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "slurmrun exec: %v\n\n%s", err, execUsage)
		return 2
	}
	// tini's verbosity: 0 errors only, 1 warnings (the default), then info, debug, trace.
	level := []logrus.Level{logrus.ErrorLevel, logrus.WarnLevel, logrus.InfoLevel, logrus.DebugLevel, logrus.TraceLevel}[min(max(o.verbosity, 0), 4)]
	entry := newLogger(logAt(level), stderr)
	if o.pdeathsig != 0 {
		parent := os.Getppid()
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(o.pdeathsig), 0, 0, 0); err != nil {
			entry.WithError(err).Warn("cannot set the parent-death signal")
		} else if os.Getppid() != parent {
			// The parent died before the prctl took effect.
			unix.Kill(os.Getpid(), o.pdeathsig)
		}
	}
	path, err := exec.LookPath(o.argv[0])
	if err != nil {
		fmt.Fprintf(stderr, "slurmrun exec: %s: %v\n", o.argv[0], err)
		return container.StartFailureCode(err)
	}
	cmd := &exec.Cmd{Path: path, Args: o.argv, Stdin: os.Stdin, Stdout: stdout, Stderr: stderr}
	st, err := container.Run(cmd, container.Options{
		Log: entry, Group: o.group, WarnOnReap: o.warnReap, KillAfter: o.killAfter,
		SweepGrace: o.sweep, Signals: container.Inherited(),
	})
	if err != nil {
		fmt.Fprintf(stderr, "slurmrun exec: %s: %v\n", o.argv[0], err)
		return st.Code
	}
	entry.WithField("status", st.String()).Debug("child exited")
	if o.remap[st.Code] {
		return 0
	}
	return st.Code
}
