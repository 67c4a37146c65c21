package launch

// The launch summary: the table and the JSON, from the steps and the
// records their ranks wrote.

import (
	"bytes"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/slurmrun/slurmrun/result"
)

// failure names a failed step's first failing rank and its own exit code,
// from the ranks' records: srun's code is often another rank's, killed by
// --kill-on-bad-exit (143). Ranks that a signal ended are the stopped ones,
// not the cause. Without such a record it is srun's code.
func failure(role string, srunCode int, ranks []*result.Rank) (what string, code int) {
	var first *result.Rank
	var firstEnd time.Time
	for _, res := range ranks {
		if res.Final == 0 || res.Signal != "" {
			continue
		}
		end := res.End()
		if first == nil || end.Before(firstEnd) || end.Equal(firstEnd) && res.Rank < first.Rank {
			first, firstEnd = res, end
		}
	}
	if first == nil {
		return fmt.Sprintf("%s failed with exit code %d", role, srunCode), srunCode
	}
	return fmt.Sprintf("%s rank %d exited %d", role, first.Rank, first.Final), first.Final
}

// roleResults reads the records of this job's ranks of role; one that
// cannot be read is named, and left out.
func (l *Launcher) roleResults(role string) []*result.Rank {
	ranks, bad, err := result.ReadAll(l.cfg.JobWorkspace, l.cfg.JobID, role)
	if err != nil {
		l.log.WithError(err).WithField("role", role).Warn("cannot list the role's records")
	}
	for _, e := range bad {
		l.log.WithError(e).WithField("role", role).Warn("a record cannot be read: the summary leaves it out")
		fmt.Fprintf(l.stdout, "Unreadable, left out: %v\n", e)
	}
	return ranks
}

// summarize prints the table and writes the JSON, from the steps and the
// per-rank result files their `slurmrun run` wrote.
func (l *Launcher) summarize(runs []*stepRun, code int) {
	sum := result.Launch{JobID: l.cfg.JobID, ExitCode: code}
	ranks := map[string][]*result.Rank{} // each role's records, read once
	for _, r := range runs {
		row := result.LaunchStep{Role: r.Role, Log: r.Log, StoppedBy: r.signal, Nodes: r.Nodes, Started: r.start.UTC()}
		if r.done {
			rc := r.code
			row.ExitCode = &rc
			row.DurationMS = r.end.Sub(r.start).Milliseconds()
		} else {
			row.DurationMS = time.Since(r.start).Milliseconds()
		}
		ranks[r.Role] = l.roleResults(r.Role)
		for _, res := range ranks[r.Role] {
			row.Ranks++
			row.StepID = res.StepID
			row.RankCodes = append(row.RankCodes, res.Final)
		}
		sum.Steps = append(sum.Steps, row)
	}
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tSTEP\tNODES\tRANKS\tEXIT CODE\tDURATION\tLOG")
	for _, s := range sum.Steps {
		exit := "running"
		if s.ExitCode != nil {
			exit = fmt.Sprint(*s.ExitCode)
		}
		switch {
		case s.StoppedBy != "":
			exit += " (stopped: " + s.StoppedBy + ")"
		case s.ExitCode != nil && *s.ExitCode != 0:
			// srun's code may be a rank that --kill-on-bad-exit ended.
			if what, code := failure(s.Role, *s.ExitCode, ranks[s.Role]); code != *s.ExitCode {
				exit += " (" + strings.TrimPrefix(what, s.Role+" ") + ")"
			}
		}
		step := s.StepID
		if step == "" {
			step = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%.1fs\t%s\n", s.Role, step, strings.Join(s.Nodes, ","), s.Ranks, exit,
			float64(s.DurationMS)/1000, s.Log)
	}
	tw.Flush()
	fmt.Fprintf(l.stdout, "\nLaunch summary (job %s, exit code %d):\n%s", l.cfg.JobID, code, b.String())
	if _, err := sum.Write(l.cfg.JobWorkspace); err != nil {
		l.log.WithError(err).Error("cannot write the launch summary")
	}
}
