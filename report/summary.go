package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Summary writes the report as text: a header line, every shown rank's
// steps (start from the job's start, duration, exit code, outcome), each
// rank's final code, then the slowest step and the first failure. Roles of
// more than CollapseAbove ranks list their failing and slowest ranks.
func (j *Job) Summary(w io.Writer) error {
	f := j.Facts()
	fmt.Fprintln(w, j.headline(f))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tRANK\tNODE\tSTEP\tSTART\tDURATION\tEXIT CODE\tOUTCOME")
	for _, g := range j.Groups() {
		for _, r := range g.Shown {
			for _, st := range r.Steps {
				code := "-"
				switch {
				case st.ExitCode != nil:
					code = fmt.Sprint(*st.ExitCode)
				case st.Outcome == "ok":
					code = "0"
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t+%.3fs\t%.1f ms\t%s\t%s\n", r.Role, r.Rank, r.Host, st.Name,
					st.Start.Sub(f.Start).Seconds(), st.DurationMS, code, st.Outcome)
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\tfinal\t\t\t%s\t%s\n", r.Role, r.Rank, r.Host, finalCode(r.Final, r.Signal), Outcome(r))
		}
		if g.Collapsed() {
			fmt.Fprintf(tw, "%s\t\t\t(%d more ranks, %s)\t\t\t\t\n", g.Role, len(g.Ranks)-len(g.Shown), hiddenOutcomes(g))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if f.Slowest != nil {
		fmt.Fprintf(w, "Slowest step: %s, %s\n", f.Slowest, duration(f.Slowest.Step.DurationMS))
	}
	if f.FirstFailure != nil {
		st := f.FirstFailure.Step
		fmt.Fprintf(w, "First failure: %s: %s\n", f.FirstFailure, st.Detail)
	}
	if f.Cancelled > 0 {
		fmt.Fprintf(w, "Cancelled: %d of %d ranks ended by a signal (%s)\n", f.Cancelled, len(j.Ranks), f.CancelSignal)
	}
	if len(j.Others) > 0 {
		fmt.Fprintf(w, "The workspace also holds jobs %s (slurmrun report --job ID to choose one)\n", strings.Join(j.Others, ", "))
	}
	for _, u := range j.Unreadable {
		fmt.Fprintf(w, "Unreadable, left out: %s\n", u)
	}
	return nil
}

// headline is the header's facts on one line.
func (j *Job) headline(f Facts) string {
	return fmt.Sprintf("Job %s, stage %s: %s in %s, wall time %s, exit code %d",
		j.ID, strings.Join(f.Stages, ", "), plural(len(j.Ranks), "rank"), plural(len(f.Roles), "role"), f.Wall().Round(time.Millisecond), f.ExitCode)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// hiddenOutcomes counts the collapsed ranks' outcomes: "all ok", "250 ok, 2 failed".
func hiddenOutcomes(g *Group) string {
	shown := map[any]bool{}
	for _, r := range g.Shown {
		shown[r] = true
	}
	counts := map[string]int{}
	var order []string
	for _, r := range g.Ranks {
		if shown[r] {
			continue
		}
		o := Outcome(r)
		if counts[o] == 0 {
			order = append(order, o)
		}
		counts[o]++
	}
	if len(order) == 1 {
		return "all " + order[0]
	}
	var parts []string
	for _, o := range order {
		parts = append(parts, fmt.Sprintf("%d %s", counts[o], o))
	}
	return strings.Join(parts, ", ")
}

func finalCode(code int, signal string) string {
	if signal != "" {
		return fmt.Sprintf("%d (%s)", code, signal)
	}
	return fmt.Sprint(code)
}

// duration prints milliseconds as people read them.
func duration(ms float64) string {
	if ms < 1000 {
		return fmt.Sprintf("%.1f ms", ms)
	}
	return time.Duration(ms * float64(time.Millisecond)).Round(10 * time.Millisecond).String()
}
