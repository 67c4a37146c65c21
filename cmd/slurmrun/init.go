package main

import (
	"fmt"
	"os"
	"os/exec"

	"github.com/sirupsen/logrus"

	"github.com/slurmrun/slurmrun/config"
	"github.com/slurmrun/slurmrun/container"
	"github.com/slurmrun/slurmrun/proc"
)

// runUnderInit makes slurmrun the init and runs the job as its child: the
// same binary with the hidden job subcommand. The job's commands start with
// the signal state slurmrun was given, passed on explicitly.
func runUnderInit(name string, args []string, stdout, stderr *os.File) int {
	log := newLogger(logAt(logrus.WarnLevel), stderr).WithField("init", name)
	// A bad value gets the defaults here; the job names it and exits 2.
	common, _ := config.ReadCommon(os.Environ())
	cmd := exec.Command("/proc/self/exe", append([]string{jobCommand, "--signals", container.Inherited().String(), name}, args...)...)
	cmd.Args[0] = os.Args[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	st, err := container.Run(cmd, container.Options{Log: log, SweepGrace: common.Grace})
	if err != nil {
		fmt.Fprintf(stderr, "slurmrun %s: cannot start the job: %v\n", name, err)
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
	// From here a SIGTERM waits for the command's handler, not kills it.
	held := proc.Hold(signals)
	c := lookup(args[2])
	if c == nil || !c.underInit {
		fmt.Fprintf(stderr, "slurmrun %s: unknown command %q\n", jobCommand, args[2])
		return 2
	}
	return invoke(c, args[3:], signals, held, stdout, stderr)
}
