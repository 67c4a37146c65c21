// Package report turns a job's per-rank result files (and the launch
// summary, for a disaggregated job) into what people and CI read: a page
// with every rank's steps on one time axis, a JUnit file for Jenkins and a
// text summary.
//
// Each rank stamps its steps with its own node's clock; the report aligns
// them on the job's earliest start and says so, since nodes' clocks differ
// by their NTP offsets.
package report

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/slurmrun/slurmrun/result"
)

// Job is one job's records, read from its workspaces.
type Job struct {
	ID     string
	Ranks  []*result.Rank
	Launch *result.Launch // nil unless `slurmrun launch` ran the job
	// Others are the other jobs whose records the workspaces hold.
	Others []string
	// Unreadable names each record or summary that could not be read: the
	// report is made of the others.
	Unreadable []string
}

// Load reads the records of one job from <workspace>/slurmrun: the result
// files result.job<ID>*.json and launch.job<ID>.json. With id empty it is
// the job that started last, and Others names the rest.
func Load(id string, workspaces ...string) (*Job, error) {
	byJob := map[string][]*result.Rank{}
	launches := map[string]*result.Launch{}
	var unreadable []string
	for _, ws := range workspaces {
		ranks, bad, err := result.ReadAll(ws, "", "")
		if err != nil {
			return nil, err
		}
		for _, e := range bad {
			unreadable = append(unreadable, e.Error())
		}
		for _, r := range ranks {
			byJob[r.JobID] = append(byJob[r.JobID], r)
		}
		summaries, err := result.LaunchFiles(ws)
		if err != nil {
			return nil, err
		}
		for _, f := range summaries {
			s, err := result.ReadLaunch(f)
			if err != nil {
				unreadable = append(unreadable, err.Error())
				continue
			}
			launches[s.JobID] = s
		}
	}
	if len(byJob) == 0 {
		if len(unreadable) > 0 {
			return nil, fmt.Errorf("no readable result files in %s:\n  %s", strings.Join(workspaces, ", "), strings.Join(unreadable, "\n  "))
		}
		return nil, fmt.Errorf("no result files in %s (looked for slurmrun/result.job*.json)", strings.Join(workspaces, ", "))
	}
	var ids []string
	for j := range byJob {
		ids = append(ids, j)
	}
	sort.Slice(ids, func(a, b int) bool { return earliest(byJob[ids[a]]).Before(earliest(byJob[ids[b]])) })
	if id == "" {
		id = ids[len(ids)-1]
	}
	ranks, ok := byJob[id]
	if !ok {
		return nil, fmt.Errorf("no result files of job %s in %s (it holds jobs %s)", id, strings.Join(workspaces, ", "), strings.Join(ids, ", "))
	}
	j := &Job{ID: id, Ranks: ranks, Launch: launches[id], Unreadable: unreadable}
	for _, other := range ids {
		if other != id {
			j.Others = append(j.Others, other)
		}
	}
	order := roleOrder
	if j.Launch != nil {
		order = launchOrder(j.Launch)
	}
	sort.SliceStable(j.Ranks, func(a, b int) bool {
		x, y := j.Ranks[a], j.Ranks[b]
		if x.Role != y.Role {
			return order(x.Role) < order(y.Role) || order(x.Role) == order(y.Role) && x.Role < y.Role
		}
		if x.Node != y.Node {
			return x.Node < y.Node
		}
		return x.Rank < y.Rank
	})
	return j, nil
}

// roleOrder puts a disaggregated job's roles in the order launch plans
// them: the install, the generation and context servers, the disaggregated
// server, the benchmark.
func roleOrder(role string) int {
	switch {
	case role == "INSTALL":
		return 0
	case strings.HasPrefix(role, "GEN_"):
		return 1
	case strings.HasPrefix(role, "CTX_"):
		return 2
	case role == "DISAGG_SERVER":
		return 3
	case role == "BENCHMARK":
		return 4
	}
	return 5
}

// launchOrder is the order of the launch summary's steps.
func launchOrder(s *result.Launch) func(string) int {
	at := map[string]int{}
	for i, st := range s.Steps {
		at[st.Role] = i
	}
	return func(role string) int {
		if i, ok := at[role]; ok {
			return i
		}
		return len(at) + roleOrder(role)
	}
}

func earliest(ranks []*result.Rank) time.Time {
	var t time.Time
	for _, r := range ranks {
		if t.IsZero() || r.Started.Before(t) {
			t = r.Started
		}
		for _, st := range r.Steps {
			if st.Start.Before(t) {
				t = st.Start
			}
		}
	}
	return t
}

// failing reports whether a rank failed by itself: a step failed or timed
// out, or it exited non-zero without being cancelled.
func failing(r *result.Rank) bool {
	if firstFailed(r) != nil {
		return true
	}
	return r.Final != 0 && r.Signal == ""
}

// firstFailed is a rank's earliest failed or timed-out step.
func firstFailed(r *result.Rank) *result.Step {
	for _, st := range r.Steps {
		if st.Outcome == result.Failed || st.Outcome == result.TimedOut {
			return st
		}
	}
	return nil
}

// Facts are what the header of every form of the report says.
type Facts struct {
	Start, End   time.Time
	Stages       []string
	Roles        []string
	ExitCode     int   // launch's, or the first non-zero rank's
	Slowest      *Mark // the longest step of any rank
	FirstFailure *Mark // the failed step that ended first
	Cancelled    int   // ranks a signal ended
	CancelSignal string
	FailingRanks int // ranks that failed by themselves, not cancelled
	ClockNote    string
}

// Mark points at one step of one rank.
type Mark struct {
	Rank *result.Rank
	Step *result.Step
}

// String names the rank and step.
func (m *Mark) String() string {
	return fmt.Sprintf("%s rank %d, step %s", m.Rank.Role, m.Rank.Rank, m.Step.Name)
}

// Facts works out the header: span, exit code, slowest step, first failure.
func (j *Job) Facts() Facts {
	f := Facts{Start: earliest(j.Ranks)}
	stages, roles := map[string]bool{}, map[string]bool{}
	var firstEnd time.Time
	if j.Launch != nil {
		// launch started each srun before its ranks started: the span
		// covers the steps' start (on the batch node's clock).
		for _, st := range j.Launch.Steps {
			if !st.Started.IsZero() && st.Started.Before(f.Start) {
				f.Start = st.Started
			}
			if e := st.Started.Add(time.Duration(st.DurationMS) * time.Millisecond); !st.Started.IsZero() && e.After(f.End) {
				f.End = e
			}
		}
	}
	for _, r := range j.Ranks {
		if e := r.End(); e.After(f.End) {
			f.End = e
		}
		if !stages[r.Stage] {
			stages[r.Stage] = true
			f.Stages = append(f.Stages, r.Stage)
		}
		if !roles[r.Role] {
			roles[r.Role] = true
			f.Roles = append(f.Roles, r.Role)
		}
		if r.Final != 0 && f.ExitCode == 0 {
			f.ExitCode = r.Final
		}
		if r.Signal != "" {
			f.Cancelled++
			f.CancelSignal = r.Signal
		}
		if failing(r) {
			f.FailingRanks++
		}
		for _, st := range r.Steps {
			if f.Slowest == nil || st.DurationMS > f.Slowest.Step.DurationMS {
				f.Slowest = &Mark{r, st}
			}
		}
		if st := firstFailed(r); st != nil && (f.FirstFailure == nil || st.End().Before(firstEnd)) {
			f.FirstFailure, firstEnd = &Mark{r, st}, st.End()
		}
	}
	if j.Launch != nil {
		// launch's code names the failing rank's own code, or the cancel.
		f.ExitCode = j.Launch.ExitCode
	}
	whose := "each rank's node's clock"
	if j.Launch != nil {
		whose += " (an srun step's: the batch node's)"
	}
	f.ClockNote = fmt.Sprintf("Times are %s, aligned on the job's earliest start (%s UTC); nodes' clocks differ by their NTP offset.",
		whose, f.Start.UTC().Format("2006-01-02 15:04:05.000"))
	return f
}

// Wall is the time from the earliest start to the latest end.
func (f Facts) Wall() time.Duration { return f.End.Sub(f.Start) }

// Outcome is how a rank ended, as one word.
func Outcome(r *result.Rank) string {
	switch {
	case r.Signal != "":
		return result.Cancelled
	case failing(r):
		if st := firstFailed(r); st != nil {
			return st.Outcome
		}
		return result.Failed
	}
	return result.OK
}

// Group is one role's ranks; a large one shows its notable ranks only.
type Group struct {
	Role   string
	Ranks  []*result.Rank
	Shown  []*result.Rank // every rank, or the failing and the slowest
	Step   *result.LaunchStep
	Failed int
}

// Collapsed reports whether some ranks are not in Shown.
func (g *Group) Collapsed() bool { return len(g.Shown) < len(g.Ranks) }

// CollapseAbove is the most ranks a role shows row by row; a larger role
// shows its failing ranks (at most maxFailingShown) and its slowest.
const (
	CollapseAbove   = 16
	maxFailingShown = 8
)

// Groups splits the ranks by role, in the job's order.
func (j *Job) Groups() []*Group {
	var out []*Group
	by := map[string]*Group{}
	for _, r := range j.Ranks {
		g := by[r.Role]
		if g == nil {
			g = &Group{Role: r.Role}
			by[r.Role] = g
			out = append(out, g)
			if j.Launch != nil {
				for i := range j.Launch.Steps {
					if j.Launch.Steps[i].Role == r.Role {
						g.Step = &j.Launch.Steps[i]
					}
				}
			}
		}
		g.Ranks = append(g.Ranks, r)
		if failing(r) {
			g.Failed++
		}
	}
	for _, g := range out {
		g.Shown = g.Ranks
		if len(g.Ranks) <= CollapseAbove {
			continue
		}
		var slowest *result.Rank
		keep := map[*result.Rank]bool{}
		shownFailing := 0
		for _, r := range g.Ranks {
			if failing(r) && shownFailing < maxFailingShown {
				keep[r] = true
				shownFailing++
			}
			if slowest == nil || r.End().After(slowest.End()) {
				slowest = r
			}
		}
		keep[slowest] = true
		g.Shown = nil
		for _, r := range g.Ranks {
			if keep[r] {
				g.Shown = append(g.Shown, r)
			}
		}
	}
	return out
}

// Write writes report.html and junit.xml into dir and returns their paths.
func (j *Job) Write(dir string) (page, junit string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("report: %w", err)
	}
	page, junit = filepath.Join(dir, "report.html"), filepath.Join(dir, "junit.xml")
	if err := j.WriteJUnit(junit); err != nil {
		return "", "", err
	}
	if err := j.WriteHTML(page); err != nil {
		return "", "", err
	}
	return page, junit, nil
}
