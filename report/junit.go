package report

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/slurmrun/slurmrun/internal/atomicfile"
	"github.com/slurmrun/slurmrun/result"
)

// The JUnit XML that Jenkins' JUnit plugin reads (testdata/jenkins-junit.xsd
// states its rules): testsuites holds no skipped count, and a testcase's
// children come in the order skipped, error, failure.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string           `xml:"name,attr"`
	Tests      int              `xml:"tests,attr"`
	Failures   int              `xml:"failures,attr"`
	Errors     int              `xml:"errors,attr"`
	Skipped    int              `xml:"skipped,attr"`
	Time       string           `xml:"time,attr"`
	Timestamp  string           `xml:"timestamp,attr,omitempty"`
	Hostname   string           `xml:"hostname,attr,omitempty"`
	Properties *junitProperties `xml:"properties"`
	Cases      []junitCase      `xml:"testcase"`
}

// junitProperties is absent or holds at least one property.
type junitProperties struct {
	List []junitProperty `xml:"property"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	Error     *junitMessage `xml:"error,omitempty"`
	Failure   *junitMessage `xml:"failure,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr,omitempty"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

func ptrOr(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

func seconds(ms float64) string { return fmt.Sprintf("%.3f", ms/1000) }

// JUnit writes one testsuite per role and one testcase per rank and step,
// plus a "final" case per rank for its exit code:
//   - failed: a failure carrying the step's detail and exit code;
//   - timed out, or cancelled while it ran: an error saying so;
//   - skipped (not applicable, an earlier failure, cancelled before it
//     started): skipped, with why.
func (j *Job) JUnit(w io.Writer) error {
	facts := j.Facts()
	out := junitSuites{Name: "slurmrun job " + j.ID, Time: fmt.Sprintf("%.3f", facts.Wall().Seconds())}
	for _, g := range j.Groups() {
		s := junitSuite{Name: g.Ranks[0].Stage + "." + g.Role, Hostname: g.Ranks[0].Host}
		start, stop := earliest(g.Ranks), time.Time{}
		for _, r := range g.Ranks {
			if r.Host != s.Hostname {
				s.Hostname = "" // the suite spans nodes: each case's class names its rank
			}
			if e := r.End(); e.After(stop) {
				stop = e
			}
			class := fmt.Sprintf("%s.%s.rank%d", r.Stage, r.Role, r.Rank)
			for _, st := range r.Steps {
				c := junitCase{Name: st.Name, Classname: class, Time: seconds(st.DurationMS)}
				detail := st.Detail
				if code := fmt.Sprintf("exit code %d", ptrOr(st.ExitCode)); st.ExitCode != nil && !strings.Contains(detail, code) {
					detail += " (" + code + ")"
				}
				where := fmt.Sprintf("rank %d on %s, step %s: %s", r.Rank, r.Host, st.Name, detail)
				switch {
				case st.Outcome == result.Failed:
					c.Failure = &junitMessage{Message: detail, Type: "step failed", Text: where}
					s.Failures++
				case st.Outcome == result.TimedOut:
					c.Error = &junitMessage{Message: detail, Type: "timed out", Text: where}
					s.Errors++
				case st.Outcome == result.Cancelled && st.ExitCode != nil:
					c.Error = &junitMessage{Message: detail, Type: "cancelled", Text: where}
					s.Errors++
				case st.Outcome == result.Skipped || st.Outcome == result.Cancelled:
					c.Skipped = &junitMessage{Message: st.Detail}
					s.Skipped++
				}
				s.Tests++
				s.Cases = append(s.Cases, c)
			}
			final := junitCase{Name: "final", Classname: class, Time: "0.000"}
			if r.Final != 0 {
				why := fmt.Sprintf("Rank%d exit code %d", r.Rank, r.Final)
				if r.FailedStep != "" {
					why += ", failed step " + r.FailedStep
				}
				if r.Signal != "" {
					final.Error = &junitMessage{Message: why + " (" + r.Signal + ")", Type: "cancelled"}
					s.Errors++
				} else {
					final.Failure = &junitMessage{Message: why, Type: "exit code"}
					s.Failures++
				}
			}
			s.Tests++
			s.Cases = append(s.Cases, final)
		}
		s.Timestamp = start.UTC().Format("2006-01-02T15:04:05")
		s.Time = fmt.Sprintf("%.3f", stop.Sub(start).Seconds())
		if g.Step != nil {
			s.Properties = &junitProperties{[]junitProperty{{"srun step", g.Step.StepID}, {"log", g.Step.Log}}}
		}
		out.Suites = append(out.Suites, s)
		out.Tests += s.Tests
		out.Failures += s.Failures
		out.Errors += s.Errors
	}
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
	return atomicfile.WriteFile(path, b.Bytes(), 0o644)
}
