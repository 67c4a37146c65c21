package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"

	"github.com/sirupsen/logrus"

	"github.com/slurmrun/slurmrun/config"
	"github.com/slurmrun/slurmrun/container"
	"github.com/slurmrun/slurmrun/container/oci"
	"github.com/slurmrun/slurmrun/launch"
	"github.com/slurmrun/slurmrun/proc"
)

func ociRunCommand() *command {
	return &command{
		name: "oci-run", args: "--bundle %b --id %n.%u.%j.%s.%t --node %n --task %t [--runtime crun]", underInit: true,
		summary:  "Slurm oci.conf RunTimeRun: the task's variables Slurm leaves empty, then crun/runc run",
		settings: func() config.Spec { return &config.Common{} },
		define: func(fs *flag.FlagSet) func(*invocation) int {
			var f ociFlags
			fs.StringVar(&f.bundle, "bundle", "", "the bundle Slurm passes (%b)")
			fs.StringVar(&f.id, "id", "", "container id (%n.%u.%j.%s.%t)")
			fs.StringVar(&f.node, "node", "", "this node's name (%n)")
			fs.IntVar(&f.task, "task", 0, "local task id (%t)")
			fs.StringVar(&f.runtime, "runtime", "crun", "OCI runtime")
			fs.StringVar(&f.root, "root", "/run/crun-slurm", "the runtime's state directory (as in RunTimeKill and RunTimeDelete)")
			fs.StringVar(&f.stateDir, "state-dir", "/run/slurmrun-oci", "where the per-task bundles go")
			return func(in *invocation) int { return runOCI(in, f) }
		},
	}
}

type ociFlags struct {
	bundle, id, node, runtime, root, stateDir string
	task                                      int
}

// runOCI is Slurm's oci.conf RunTimeRun: it gives the task the variables
// Slurm 22.05 leaves empty in --container steps and runs the OCI runtime.
//
//	RunTimeRun="slurmrun oci-run --bundle %b --id %n.%u.%j.%s.%t --node %n --task %t"
func runOCI(in *invocation, f ociFlags) int {
	stdout, stderr := in.stdout, in.stderr
	if f.bundle == "" || f.id == "" || f.node == "" {
		fmt.Fprintln(stderr, "slurmrun oci-run: --bundle, --id and --node are required")
		return 2
	}
	entry := newLogger(logAt(logrus.InfoLevel), stderr).WithField("container", f.id)
	sup := proc.New(entry, in.signals).Holding(in.held)
	hostnames := func(list string) ([]string, error) { return launch.Hostnames(context.Background(), sup, list) }
	dir, err := oci.TaskBundle(f.bundle, f.stateDir, f.id, oci.TaskIdentity{Node: f.node, LocalTask: f.task}, hostnames)
	if err != nil {
		fmt.Fprintf(stderr, "slurmrun oci-run: %v\n", err)
		return 1
	}
	defer oci.RemoveTaskBundle(dir)
	common, err := config.ReadCommon(in.environ)
	if err != nil {
		entry.WithError(err).Warnf("using a grace period of %s", common.Grace)
	}
	grace := common.Grace
	// The runtime forwards what it gets to the container's init; the grace
	// is Slurm's, as for the flow.
	_, stop := sup.ForwardSignals(context.Background(), grace)
	defer stop()
	cmd := exec.Command(f.runtime, "--root="+f.root, "run", "--bundle", dir, f.id)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
	if cmd.Err != nil {
		fmt.Fprintf(stderr, "slurmrun oci-run: %v\n", cmd.Err)
		return container.StartFailureCode(cmd.Err)
	}
	st, err := sup.Run(cmd)
	if err != nil {
		fmt.Fprintf(stderr, "slurmrun oci-run: %s: %v\n", f.runtime, err)
	}
	return st.Code
}
