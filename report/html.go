package report

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
	"time"

	"github.com/slurmrun/slurmrun/embed"
	"github.com/slurmrun/slurmrun/internal/atomicfile"
	"github.com/slurmrun/slurmrun/result"
)

// The timeline's geometry, in SVG user units: a label column, the time
// axis, a column for the final exit code.
const (
	svgWidth    = 1200
	labelWidth  = 230
	codeWidth   = 110
	plotWidth   = svgWidth - labelWidth - codeWidth
	rowHeight   = 18
	barHeight   = 12
	axisHeight  = 22
	minBarWidth = 2
	charWidth   = 6 // of the 10px font a bar's step name is printed in
)

// pageTemplate is parsed when a page is made, not when slurmrun starts:
// most of its processes (the init, each rank) never make one.
func pageTemplate() (*template.Template, error) {
	return template.New("report").Parse(embed.ReportTemplate())
}

// page is what the template prints; every position is worked out here.
type page struct {
	Title     string
	Facts     []fact
	ClockNote string
	Others    string
	Legend    []legendItem
	Width     int
	Groups    []pageGroup
	Launch    []launchRow
}

type legendItem struct{ Outcome, Class string }

type fact struct {
	Label, Value, Class string
}

type pageGroup struct {
	Role, About string
	Failed      bool
	Shown       timeline
	All         *timeline // every rank, when Shown is a selection
	AllLabel    string
}

type timeline struct {
	W, Height int
	Ticks     []tick
	Rows      []row
}

type tick struct {
	X     float64
	Label string
}

type row struct {
	Y, TextY         float64
	Zebra            bool // every other row is shaded, to follow a row across
	ZebraY, ZebraH   float64
	Kind             string // rank, or srun-step
	Label, LabelTip  string
	Bars             []bar
	Code, CodeClass  string
	CodeTip          string
	CodeX, BarHeight float64
}

type bar struct {
	X, W  float64
	Class string
	Tip   string
	Name  string // printed on the bar when it fits
	NameX float64
}

type launchRow struct {
	Role, Step, Nodes, Ranks, Exit, Duration, Log string
	Failed                                        bool
}

// HTML writes the page: one self-contained document (inline CSS and SVG,
// no script, nothing fetched) that reads the same offline and as a Jenkins
// artifact.
func (j *Job) HTML(w io.Writer) error {
	f := j.Facts()
	span := f.Wall()
	if span <= 0 {
		span = time.Millisecond
	}
	scale := func(t time.Time) float64 {
		// The last minBarWidth units hold a step that took no time at the end.
		return labelWidth + float64(t.Sub(f.Start))/float64(span)*(plotWidth-minBarWidth)
	}
	ticks := axisTicks(span, scale, f.Start)
	var first *result.Step
	if f.FirstFailure != nil {
		first = f.FirstFailure.Step
	}
	p := page{
		Title:     fmt.Sprintf("slurmrun job %s", j.ID),
		ClockNote: f.ClockNote,
		Width:     svgWidth,
	}
	for _, o := range []string{result.OK, result.Failed, result.TimedOut,
		result.Cancelled, result.Skipped} {
		p.Legend = append(p.Legend, legendItem{o, outcomeClass(o)})
	}
	exit := fmt.Sprint(f.ExitCode)
	if f.ExitCode != 0 && f.Cancelled > 0 && f.FirstFailure == nil {
		exit += " (cancelled: " + f.CancelSignal + ")"
	}
	p.Facts = []fact{
		{"Job", j.ID, ""},
		{"Stage", strings.Join(f.Stages, ", "), ""},
		{"Ranks", fmt.Sprintf("%d in %s", len(j.Ranks), plural(len(f.Roles), "role")), ""},
		{"Wall time", f.Wall().Round(time.Millisecond).String(), ""},
		{"Exit code", exit, outcomeClass(exitOutcome(f))},
	}
	if f.Slowest != nil {
		p.Facts = append(p.Facts, fact{"Slowest step", fmt.Sprintf("%s: %s", f.Slowest, duration(f.Slowest.Step.DurationMS)), ""})
	}
	if f.FailingRanks > 0 {
		p.Facts = append(p.Facts, fact{"Failing ranks", fmt.Sprintf("%d of %d", f.FailingRanks, len(j.Ranks)), "failed"})
	}
	if f.FirstFailure != nil {
		p.Facts = append(p.Facts, fact{"First failure", fmt.Sprintf("%s: %s", f.FirstFailure, f.FirstFailure.Step.Detail), "failed"})
	} else {
		p.Facts = append(p.Facts, fact{"First failure", "none", ""})
	}
	if f.Cancelled > 0 {
		p.Facts = append(p.Facts, fact{"Cancelled", fmt.Sprintf("%d of %d ranks ended by a signal (%s)", f.Cancelled, len(j.Ranks), f.CancelSignal), "cancelled"})
	}
	if len(j.Unreadable) > 0 {
		p.Facts = append(p.Facts, fact{"Unreadable, left out", strings.Join(j.Unreadable, "; "), "failed"})
	}
	if len(j.Others) > 0 {
		p.Others = fmt.Sprintf("The workspace also holds jobs %s: slurmrun report --job ID WORKSPACE makes theirs.", strings.Join(j.Others, ", "))
	}
	for _, g := range j.Groups() {
		pg := pageGroup{Role: g.Role, About: groupAbout(g), Failed: g.Failed > 0}
		pg.Shown = drawRanks(g.Step, g.Shown, scale, ticks, first)
		if g.Collapsed() {
			all := drawRanks(nil, g.Ranks, scale, ticks, first)
			pg.All = &all
			pg.AllLabel = fmt.Sprintf("All %d ranks of %s (%d more: %s)", len(g.Ranks), g.Role, len(g.Ranks)-len(g.Shown), hiddenOutcomes(g))
		}
		p.Groups = append(p.Groups, pg)
	}
	if j.Launch != nil {
		for _, s := range j.Launch.Steps {
			lr := launchRow{Role: s.Role, Step: s.StepID, Nodes: strings.Join(s.Nodes, ","), Ranks: fmt.Sprint(s.Ranks),
				Exit: "running", Duration: duration(float64(s.DurationMS)), Log: s.Log}
			if s.ExitCode != nil {
				lr.Exit = fmt.Sprint(*s.ExitCode)
				lr.Failed = *s.ExitCode != 0 && s.StoppedBy == ""
			}
			if s.StoppedBy != "" {
				lr.Exit += " (stopped: " + s.StoppedBy + ")"
			}
			p.Launch = append(p.Launch, lr)
		}
	}
	tmpl, err := pageTemplate()
	if err != nil {
		return err
	}
	return tmpl.Execute(w, p)
}

// WriteHTML writes the page at path, through a temporary name.
func (j *Job) WriteHTML(path string) error {
	var b bytes.Buffer
	if err := j.HTML(&b); err != nil {
		return fmt.Errorf("report page: %w", err)
	}
	return atomicfile.WriteFile(path, b.Bytes(), 0o644)
}

// drawRanks lays out one row per rank: a bar per step (at least
// minBarWidth wide, so a step that took no time still shows), the final
// code at the row's end. With the role's srun step, a first row shows its
// span: the time from srun to the ranks' first step is the container's start.
func drawRanks(srun *result.LaunchStep, ranks []*result.Rank, scale func(time.Time) float64, ticks []tick, first *result.Step) timeline {
	var rows []row
	if srun != nil && !srun.Started.IsZero() {
		rw := newRow(len(rows), fmt.Sprintf("srun step %s", srun.StepID), "launch's srun of the role, on "+strings.Join(srun.Nodes, ", "))
		rw.Kind = "srun-step"
		x := scale(srun.Started)
		w := max(scale(srun.Started.Add(time.Duration(srun.DurationMS)*time.Millisecond))-x, minBarWidth)
		tip := fmt.Sprintf("srun step %s (%s): %s", srun.StepID, srun.Role, duration(float64(srun.DurationMS)))
		if srun.ExitCode != nil {
			tip += fmt.Sprintf(", exit code %d", *srun.ExitCode)
			rw.Code = fmt.Sprintf("exit %d", *srun.ExitCode)
		}
		if srun.StoppedBy != "" {
			tip += ", stopped: " + srun.StoppedBy
		}
		rw.Bars = []bar{{X: round1(x), W: round1(w), Class: "srun", Tip: tip + "\nlog: " + srun.Log}}
		rows = append(rows, rw)
	}
	for _, r := range ranks {
		rw := newRow(len(rows), fmt.Sprintf("rank %d · %s", r.Rank, r.Host),
			fmt.Sprintf("%s rank %d (local rank %d) on node %d, %s; Slurm step %s", r.Role, r.Rank, r.LocalRank, r.Node, r.Host, stepOf(r)))
		rw.Code, rw.CodeClass = fmt.Sprintf("exit %d", r.Final), outcomeClass(Outcome(r))
		rw.CodeTip = fmt.Sprintf("Rank%d exit code %s: %s", r.Rank, finalCode(r.Final, r.Signal), Outcome(r))
		for _, st := range r.Steps {
			x := scale(st.Start)
			w := max(scale(st.End())-x, minBarWidth)
			class := outcomeClass(st.Outcome)
			if st == first {
				class += " first-failure"
			}
			b := bar{X: round1(x), W: round1(w), Class: class, Tip: stepTip(r, st)}
			if w >= float64(len(st.Name)*charWidth+6) {
				b.Name, b.NameX = st.Name, round1(x+3)
			}
			rw.Bars = append(rw.Bars, b)
		}
		rows = append(rows, rw)
	}
	return timeline{W: svgWidth, Ticks: ticks, Height: axisHeight + len(rows)*rowHeight + 4, Rows: rows}
}

// newRow places row i.
func newRow(i int, label, tip string) row {
	y := float64(axisHeight + i*rowHeight)
	return row{Y: y + (rowHeight-barHeight)/2, TextY: y + rowHeight - 5, BarHeight: barHeight, CodeX: labelWidth + plotWidth + 8,
		Kind: "rank", Label: label, LabelTip: tip, Zebra: i%2 == 1, ZebraY: y, ZebraH: rowHeight}
}

func stepOf(r *result.Rank) string {
	if r.StepID == "" {
		return "-"
	}
	return r.JobID + "." + r.StepID
}

// stepTip is a bar's tooltip: step, rank, duration, exit code, detail.
func stepTip(r *result.Rank, st *result.Step) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s rank %d on %s): %s, %s", st.Name, r.Role, r.Rank, r.Host, st.Outcome, duration(st.DurationMS))
	if st.ExitCode != nil {
		fmt.Fprintf(&b, ", exit code %d", *st.ExitCode)
	}
	fmt.Fprintf(&b, "\nstarted %s", st.Start.UTC().Format("15:04:05.000"))
	if st.Detail != "" {
		b.WriteString("\n" + st.Detail)
	}
	return b.String()
}

func groupAbout(g *Group) string {
	hosts := map[string]bool{}
	var names []string
	for _, r := range g.Ranks {
		if !hosts[r.Host] {
			hosts[r.Host] = true
			names = append(names, r.Host)
		}
	}
	s := fmt.Sprintf("%s on %s", plural(len(g.Ranks), "rank"), strings.Join(names, ", "))
	if g.Failed > 0 {
		s += fmt.Sprintf(", %d failing", g.Failed)
	}
	if g.Step != nil {
		s += ", srun step " + g.Step.StepID
		if g.Step.ExitCode != nil {
			s += fmt.Sprintf(" exited %d", *g.Step.ExitCode)
		}
		if g.Step.StoppedBy != "" {
			s += " (stopped: " + g.Step.StoppedBy + ")"
		}
	}
	if g.Collapsed() {
		s += fmt.Sprintf("; showing the %d failing and slowest", len(g.Shown))
	}
	return s
}

// exitOutcome is the job's outcome for the header's colour.
func exitOutcome(f Facts) string {
	switch {
	case f.ExitCode == 0:
		return result.OK
	case f.FirstFailure == nil && f.Cancelled > 0:
		return result.Cancelled
	}
	return result.Failed
}

// outcomeClass is the CSS class of an outcome ("timed out" has a space).
func outcomeClass(outcome string) string {
	return "o-" + strings.ReplaceAll(outcome, " ", "-")
}

// axisTicks puts a labelled tick every tickStep(span).
func axisTicks(span time.Duration, scale func(time.Time) float64, start time.Time) []tick {
	step := tickStep(span)
	var out []tick
	for t := time.Duration(0); t <= span; t += step {
		out = append(out, tick{X: round1(scale(start.Add(t))), Label: tickLabel(t)})
	}
	return out
}

// tickSteps are the intervals an axis is labelled at: round numbers of
// milliseconds, seconds, minutes and hours.
var tickSteps = []time.Duration{
	time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond,
	50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// tickStep is the smallest interval that labels span with ten ticks at most.
func tickStep(span time.Duration) time.Duration {
	for _, step := range tickSteps {
		if span/step <= 10 {
			return step
		}
	}
	step := tickSteps[len(tickSteps)-1]
	for span/step > 10 {
		step *= 2
	}
	return step
}

func tickLabel(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%g s", d.Seconds())
	case d < time.Hour:
		return strings.TrimSuffix(d.String(), "0s")
	}
	return strings.TrimSuffix(strings.TrimSuffix(d.String(), "0s"), "0m")
}

func round1(x float64) float64 { return math.Round(x*10) / 10 }
