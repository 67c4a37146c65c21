package launch

// Slurm's own commands: scontrol for node lists (oci-run uses it too),
// squeue for step ids, scancel to stop steps.

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/slurmrun/slurmrun/proc"
)

// Hostnames expands a Slurm node list with `scontrol show hostnames`, run
// by sup.
func Hostnames(ctx context.Context, sup *proc.Supervisor, nodeList string) ([]string, error) {
	out, err := sup.Output(ctx, exec.Command("scontrol", "show", "hostnames", nodeList), time.Second)
	if err != nil {
		return nil, fmt.Errorf("scontrol show hostnames %s: %w", nodeList, err)
	}
	return strings.Fields(string(out)), nil
}

// stepIDs maps each running step's name (its role) to its id, job.step.
func (l *Launcher) stepIDs() map[string]string {
	ids := map[string]string{}
	out, err := l.sup.Output(context.Background(), exec.Command("squeue", "-h", "-s", "-j", l.cfg.JobID, "-o", "%i %j"), time.Second)
	if err != nil {
		return ids
	}
	for _, line := range strings.Split(string(out), "\n") {
		if id, name, ok := strings.Cut(strings.TrimSpace(line), " "); ok {
			ids[name] = id
		}
	}
	return ids
}

func (l *Launcher) scancel(signal, step string) {
	if _, err := l.sup.Output(context.Background(), exec.Command("scancel", "--signal="+signal, step), time.Second); err != nil {
		l.log.WithError(err).WithField("step", step).Warn("scancel failed")
	}
}
