// Package report turns a job's per-rank result files into what people and
// CI read: a JUnit file for Jenkins (one testsuite per role, one testcase
// per rank and step) and a text summary. Clocks are each rank's node's.
package report

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/slurmrun/slurmrun/entrypoint"
)

// Job is every rank's record found in one or more job workspaces.
type Job struct {
	Ranks []*entrypoint.Result
}

// Load reads <workspace>/slurmrun/result.job*.json of each workspace.
func Load(workspaces ...string) (*Job, error) {
	j := &Job{}
	for _, ws := range workspaces {
		files, err := filepath.Glob(filepath.Join(ws, "slurmrun", "result.job*.json"))
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			r, err := entrypoint.ReadResult(f)
			if err != nil {
				return nil, fmt.Errorf("result file %s: %w", f, err)
			}
			j.Ranks = append(j.Ranks, r)
		}
	}
	if len(j.Ranks) == 0 {
		return nil, fmt.Errorf("no result files in %s (looked for slurmrun/result.job*.json)", strings.Join(workspaces, ", "))
	}
	sort.SliceStable(j.Ranks, func(a, b int) bool {
		x, y := j.Ranks[a], j.Ranks[b]
		if x.Role != y.Role {
			return x.Role < y.Role
		}
		return x.Rank < y.Rank
	})
	return j, nil
}

// The JUnit XML Jenkins' JUnit plugin reads.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Errors    int         `xml:"errors,attr"`
	Skipped   int         `xml:"skipped,attr"`
	Time      string      `xml:"time,attr"`
	Timestamp string      `xml:"timestamp,attr,omitempty"`
	Hostname  string      `xml:"hostname,attr,omitempty"`
	Cases     []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

func seconds(ms float64) string { return fmt.Sprintf("%.3f", ms/1000) }

// JUnit writes one testsuite per role and one testcase per rank and step:
// a failed step is a failure carrying its detail and exit code, a skipped
// one (not applicable, an earlier failure, a cancellation) is skipped with
// why. A rank that a signal ended gets a failed "final" case that says so.
func (j *Job) JUnit(w io.Writer) error {
	out := junitSuites{Name: "slurmrun job " + j.Ranks[0].JobID}
	byRole := map[string]*junitSuite{}
	var order []string
	var total float64
	for _, r := range j.Ranks {
		s, ok := byRole[r.Role]
		if !ok {
			s = &junitSuite{Name: r.Stage + "." + r.Role, Timestamp: r.Started.UTC().Format("2006-01-02T15:04:05"), Hostname: r.Host}
			byRole[r.Role] = s
			order = append(order, r.Role)
		}
		class := fmt.Sprintf("%s.%s.rank%d", r.Stage, r.Role, r.Rank)
		var suiteMS float64
		for _, st := range r.Steps {
			c := junitCase{Name: st.Name, Classname: class, Time: seconds(st.DurationMS)}
			switch st.Outcome {
			case "failed":
				code := ""
				if st.ExitCode != nil {
					code = fmt.Sprintf(" (exit code %d)", *st.ExitCode)
				}
				c.Failure = &junitMessage{Message: st.Detail + code, Type: "step failed", Text: st.Detail}
				s.Failures++
			case "skipped":
				c.Skipped = &junitMessage{Message: st.Detail}
				s.Skipped++
			}
			s.Tests++
			suiteMS += st.DurationMS
			s.Cases = append(s.Cases, c)
		}
		final := junitCase{Name: "final", Classname: class, Time: "0.000"}
		if r.Final != 0 {
			why := fmt.Sprintf("rank %d exit code %d", r.Rank, r.Final)
			if r.Signal != "" {
				why += " (" + r.Signal + ")"
			}
			final.Failure = &junitMessage{Message: why, Type: "exit code"}
			s.Failures++
		}
		s.Tests++
		s.Cases = append(s.Cases, final)
		s.Time = seconds(suiteMS)
		total += suiteMS
	}
	for _, role := range order {
		s := byRole[role]
		out.Suites = append(out.Suites, *s)
		out.Tests += s.Tests
		out.Failures += s.Failures
		out.Skipped += s.Skipped
	}
	out.Time = seconds(total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("junit: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// WriteJUnit writes the JUnit file at path, through a temporary name.
func (j *Job) WriteJUnit(path string) error {
	var b bytes.Buffer
	if err := j.JUnit(&b); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("junit: %w", err)
	}
	return entrypoint.WriteFileAtomic(path, b.Bytes(), 0o644)
}

// Summary writes a table of every rank's steps, then one line per rank
// with its final code, and the first failure.
func (j *Job) Summary(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tRANK\tSTEP\tDURATION\tEXIT CODE\tOUTCOME")
	var first *entrypoint.Result
	var firstAt time.Time
	for _, r := range j.Ranks {
		for _, st := range r.Steps {
			code := "-"
			switch {
			case st.ExitCode != nil:
				code = fmt.Sprint(*st.ExitCode)
			case st.Outcome == "ok":
				code = "0"
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%.1f ms\t%s\t%s\n", r.Role, r.Rank, st.Name, st.DurationMS, code, st.Outcome)
			if st.Outcome == "failed" && (first == nil || st.Start.Before(firstAt)) {
				first, firstAt = r, st.Start
			}
		}
		final := fmt.Sprint(r.Final)
		if r.Signal != "" {
			final += " (" + r.Signal + ")"
		}
		fmt.Fprintf(tw, "%s\t%d\tfinal\t\t%s\t\n", r.Role, r.Rank, final)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if first != nil {
		for _, st := range first.Steps {
			if st.Outcome == "failed" && st.Start.Equal(firstAt) {
				fmt.Fprintf(w, "\nFirst failure: %s rank %d, step %s: %s\n", first.Role, first.Rank, st.Name, st.Detail)
			}
		}
	}
	return nil
}
