package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slurmrun/slurmrun/result"

	"github.com/slurmrun/slurmrun/internal/must"
)

// The records in testdata are copies of real runs' result files (see
// keepRecords in cmd/slurmrun): the two ranks of `slurmrun demo`, two
// ranks of which rank 0's pytest fails, and a disaggregated launch under
// the local Slurm cancelled with scancel while the benchmark ran.

// svgRow is one rank's row of the page, as parsed back.
type svgRow struct {
	Class string `xml:"class,attr"`
	Texts []struct {
		Text string `xml:",chardata"`
	} `xml:"text"`
	Rects []struct {
		Class string  `xml:"class,attr"`
		X     float64 `xml:"x,attr"`
		W     float64 `xml:"width,attr"`
		Title string  `xml:"title"`
	} `xml:"rect"`
}

// pageRows parses the rank rows of each role section of a page, in order:
// role -> the rows of its first timeline.
func pageRows(t *testing.T, page string) map[string][]svgRow {
	t.Helper()
	out := map[string][]svgRow{}
	sections := strings.Split(page, `<details class="role" open>`)[1:]
	h2 := regexp.MustCompile(`<h2[^>]*>([^<]+)</h2>`)
	for _, sec := range sections {
		m := h2.FindStringSubmatch(sec)
		if m == nil {
			t.Fatalf("a role section without a heading: %.200s", sec)
		}
		start, end := strings.Index(sec, "<svg"), strings.Index(sec, "</svg>")
		var svg struct {
			Groups []svgRow `xml:"g"`
		}
		if err := xml.Unmarshal([]byte(sec[start:end+len("</svg>")]), &svg); err != nil {
			t.Fatalf("%s: the SVG does not parse: %v", m[1], err)
		}
		for _, g := range svg.Groups {
			if g.Class == "rank" {
				out[m[1]] = append(out[m[1]], g)
			}
		}
	}
	return out
}

// checkRow checks that a rank's row has one bar per step, in the steps'
// order on the time axis, coloured by outcome and named in its tooltip.
func checkRow(t *testing.T, r *result.Rank, row svgRow) {
	t.Helper()
	var bars []int
	for i, rect := range row.Rects {
		if strings.HasPrefix(rect.Class, "step ") {
			bars = append(bars, i)
		}
	}
	if len(bars) != len(r.Steps) {
		t.Fatalf("%s rank %d: %d bars for %d steps", r.Role, r.Rank, len(bars), len(r.Steps))
	}
	for i, st := range r.Steps {
		b := row.Rects[bars[i]]
		if !strings.Contains(b.Class, outcomeClass(st.Outcome)) || !strings.HasPrefix(b.Title, st.Name+" (") {
			t.Errorf("%s rank %d step %s (%s): bar %q %q", r.Role, r.Rank, st.Name, st.Outcome, b.Class, b.Title)
		}
		if b.X < labelWidth || b.X+b.W > labelWidth+plotWidth+minBarWidth+0.2 {
			t.Errorf("%s rank %d step %s: bar x %.1f w %.1f is off the axis", r.Role, r.Rank, st.Name, b.X, b.W)
		}
		if i == 0 {
			continue
		}
		prev := row.Rects[bars[i-1]]
		// Steps run one after another: a bar starts where the one before
		// it starts or later, and after its end unless that one was drawn
		// wider than it took.
		if b.X < prev.X || prev.W > minBarWidth && b.X+0.2 < prev.X+prev.W {
			t.Errorf("%s rank %d: step %s at %.1f overlaps %s at %.1f+%.1f", r.Role, r.Rank, st.Name, b.X, r.Steps[i-1].Name, prev.X, prev.W)
		}
	}
}

func TestRecordedRuns(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		ranks, srunRows         int
		failures, errors, skips int
		firstFailure, cancelled string
		exitCode                string
	}{
		{name: "demo", ranks: 2, exitCode: "<td class=\"o-ok\">0</td>", firstFailure: "<td>none</td>"},
		{name: "failing-rank", ranks: 2, failures: 2, exitCode: "<td class=\"o-failed\">1</td>",
			firstFailure: "aggregated rank 0, step pytest: pytestCommand failed"},
		{name: "cancelled-launch", ranks: 6, srunRows: 4, errors: 12, exitCode: "143 (cancelled: terminated)",
			firstFailure: "<td>none</td>", cancelled: "6 of 6 ranks ended by a signal (terminated)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j, err := Load("", filepath.Join("testdata", tc.name))
			if err != nil {
				t.Fatal(err)
			}
			if len(j.Ranks) != tc.ranks {
				t.Fatalf("%d ranks, want %d", len(j.Ranks), tc.ranks)
			}
			var b bytes.Buffer
			if err := j.HTML(&b); err != nil {
				t.Fatal(err)
			}
			page := b.String()
			selfContained(t, page)
			text := html.UnescapeString(page)
			for _, want := range []string{tc.exitCode, tc.firstFailure, tc.cancelled, "Times are each rank's node's clock"} {
				if !strings.Contains(text, want) {
					t.Errorf("the header lacks %q", want)
				}
			}
			rows := pageRows(t, page)
			seen := map[string]int{}
			for _, r := range j.Ranks {
				i := seen[r.Role]
				seen[r.Role]++
				if i >= len(rows[r.Role]) {
					t.Fatalf("no row for %s rank %d", r.Role, r.Rank)
				}
				row := rows[r.Role][i]
				if want := fmt.Sprintf("rank %d · %s", r.Rank, r.Host); row.Texts[0].Text != want {
					t.Errorf("row %q, want %q", row.Texts[0].Text, want)
				}
				checkRow(t, r, row)
			}
			if n := strings.Count(page, `<g class="srun-step">`); n != tc.srunRows {
				t.Errorf("%d srun step rows, want %d", n, tc.srunRows)
			}
			marked := strings.Count(page, `first-failure"`)
			if (tc.failures > 0) != (marked == 1) {
				t.Errorf("%d bars marked as the first failure", marked)
			}

			junit := checkJUnit(t, j)
			steps := 0
			for _, r := range j.Ranks {
				steps += len(r.Steps) + 1
			}
			if junit.Tests != steps || junit.Failures != tc.failures || junit.Errors != tc.errors || len(junit.Suites) != len(j.Groups()) {
				t.Errorf("junit: tests %d failures %d errors %d suites %d; want %d %d %d %d",
					junit.Tests, junit.Failures, junit.Errors, len(junit.Suites), steps, tc.failures, tc.errors, len(j.Groups()))
			}
		})
	}
}

// selfContained fails if the page fetches anything or runs a script.
func selfContained(t *testing.T, page string) {
	t.Helper()
	page = strings.ReplaceAll(page, `xmlns="http://www.w3.org/2000/svg"`, "")
	for _, bad := range []string{"<script", "http://", "https://", "src=", "href=", "url(", "@import", "<link"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page holds %q: it must stand alone", bad)
		}
	}
}

// checkJUnit writes the job's JUnit, validates it against the schema of
// the JUnit XML Jenkins reads (xmllint) and returns it parsed.
func checkJUnit(t *testing.T, j *Job) junitSuites {
	t.Helper()
	path := filepath.Join(t.TempDir(), "junit.xml")
	if err := j.WriteJUnit(path); err != nil {
		t.Fatal(err)
	}
	validate(t, path)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got junitSuites
	if err := xml.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	return got
}

func validate(t *testing.T, path string) {
	t.Helper()
	if _, err := exec.LookPath("xmllint"); err != nil {
		t.Skip("xmllint is not installed (make deps installs libxml2-utils)")
	}
	out, err := exec.Command("xmllint", "--noout", "--schema", "testdata/jenkins-junit.xsd", path).CombinedOutput()
	if err != nil {
		t.Errorf("junit.xml is not valid JUnit for Jenkins: %v\n%s", err, out)
	}
}

// The schema is not a rubber stamp: what Jenkins' schema refuses, it refuses.
func TestSchemaRefusesWhatJenkinsRefuses(t *testing.T) {
	if _, err := exec.LookPath("xmllint"); err != nil {
		t.Skip("xmllint is not installed (make deps installs libxml2-utils)")
	}
	for name, doc := range map[string]string{
		"skipped count on testsuites": `<testsuites skipped="1"><testsuite name="a" tests="0"/></testsuites>`,
		"testsuite without tests":     `<testsuites><testsuite name="a"/></testsuites>`,
		"failure before skipped":      `<testsuites><testsuite name="a" tests="1"><testcase name="c"><failure/><skipped/></testcase></testsuite></testsuites>`,
		"testcase without name":       `<testsuites><testsuite name="a" tests="1"><testcase/></testsuite></testsuites>`,
		"empty properties":            `<testsuites><testsuite name="a" tests="0"><properties/></testsuite></testsuites>`,
	} {
		path := filepath.Join(t.TempDir(), "bad.xml")
		must.Do(t, os.WriteFile(path, []byte(doc), 0o644))
		if err := exec.Command("xmllint", "--noout", "--schema", "testdata/jenkins-junit.xsd", path).Run(); err == nil {
			t.Errorf("%s: the schema accepts it", name)
		}
	}
}

// bigJob is a synthetic 256-rank job of two roles: rank 200's pytest fails,
// rank 7 is cancelled, rank 100 is the straggler, rank 3's coverage wait
// times out.
func bigJob() *Job {
	start := time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC)
	code := func(n int) *int { return &n }
	j := &Job{ID: "77"}
	for rank := 0; rank < 256; rank++ {
		role := "GEN_0"
		if rank >= 128 {
			role = "CTX_0"
		}
		r := &result.Rank{Rank: rank, JobID: "77", Role: role, Stage: "S", Host: fmt.Sprintf("node%03d", rank/4),
			Node: rank / 4, Started: start}
		cov := &result.Step{Name: "coverage-config", Start: start.Add(time.Millisecond), DurationMS: 999, Outcome: "ok"}
		pytest := &result.Step{Name: "pytest", Start: start.Add(time.Second), DurationMS: 60000, Outcome: "ok"}
		switch rank {
		case 200:
			pytest.Outcome, pytest.Detail, pytest.ExitCode = "failed", "pytestCommand failed (exit code 3)", code(3)
			r.Final = 3
		case 7:
			r.Final, r.Signal = 143, "terminated"
			pytest.Outcome, pytest.Detail, pytest.ExitCode = "cancelled", "pytestCommand failed (exit code 143)", code(143)
		case 100:
			pytest.DurationMS = 90000
		case 3:
			cov.Outcome, cov.Detail, cov.ExitCode = "timed out", "waiting for rank 0: timed out after 1s", code(1)
			pytest.Outcome, pytest.Detail = "skipped", "an earlier step failed"
			r.Final = 1
		}
		r.Steps = []*result.Step{{Name: "workdir", Start: start, DurationMS: 1, Outcome: "ok"}, cov, pytest}
		j.Ranks = append(j.Ranks, r)
	}
	return j
}

// A 256-rank job: rows collapse per role to the failing and slowest ranks,
// the rest one click away; JUnit and the summary count everything.
func TestLargeJob(t *testing.T) {
	j := bigJob()
	groups := j.Groups()
	if len(groups) != 2 {
		t.Fatalf("%d groups", len(groups))
	}
	shown := map[string][]int{}
	for _, g := range groups {
		if !g.Collapsed() {
			t.Errorf("%s: 128 ranks, not collapsed", g.Role)
		}
		for _, r := range g.Shown {
			shown[g.Role] = append(shown[g.Role], r.Rank)
		}
	}
	// GEN_0: rank 3 timed out, rank 100 is the slowest (rank 7 was
	// cancelled: not a failure of its own). CTX_0: rank 200 failed and is
	// the slowest of its role too (no straggler there: the first longest).
	if fmt.Sprint(shown["GEN_0"]) != "[3 100]" || fmt.Sprint(shown["CTX_0"]) != "[128 200]" {
		t.Errorf("shown ranks: %v", shown)
	}
	var b bytes.Buffer
	if err := j.HTML(&b); err != nil {
		t.Fatal(err)
	}
	page := html.UnescapeString(b.String())
	selfContained(t, page)
	if n := strings.Count(page, `<g class="rank">`); n != 256+4 {
		t.Errorf("%d rank rows in the page, want 256 (all) + 4 (shown)", n)
	}
	for _, want := range []string{"All 128 ranks of GEN_0 (126 more: 125 ok, 1 cancelled)", "First failure</th><td class=\"failed\">GEN_0 rank 3, step coverage-config: waiting for rank 0: timed out after 1s",
		"Slowest step</th><td>GEN_0 rank 100, step pytest: 1m30s", `class="step o-timed-out first-failure"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	junit := checkJUnit(t, j)
	if junit.Tests != 256*4 || junit.Failures != 3 || junit.Errors != 3 || len(junit.Suites) != 2 {
		t.Errorf("tests %d failures %d errors %d suites %d", junit.Tests, junit.Failures, junit.Errors, len(junit.Suites))
	}
	var s strings.Builder
	if err := j.Summary(&s); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Job 77, stage S: 256 ranks in 2 roles", "(126 more ranks, 125 ok, 1 cancelled)",
		"First failure: GEN_0 rank 3, step coverage-config: waiting for rank 0: timed out after 1s",
		"Cancelled: 1 of 256 ranks ended by a signal (terminated)"} {
		if !strings.Contains(s.String(), want) {
			t.Errorf("the summary lacks %q:\n%s", want, s.String())
		}
	}
	if n := strings.Count(s.String(), "\n"); n > 40 {
		t.Errorf("the summary of 256 ranks is %d lines long", n)
	}
}

// A workspace that holds two jobs' records: the one that started last, or
// the one named; a job it does not hold is an error naming those it does.
func TestLoadChoosesOneJob(t *testing.T) {
	ws := t.TempDir()
	dir := filepath.Join(ws, "slurmrun")
	must.Do(t, os.MkdirAll(dir, 0o755))
	for i, id := range []string{"11", "12"} {
		r := result.Rank{JobID: id, Role: "aggregated", Started: time.Unix(int64(1000+i), 0)}
		data, _ := json.Marshal(r)
		must.Do(t, os.WriteFile(filepath.Join(dir, r.FileName()), data, 0o644))
	}
	j, err := Load("", ws)
	if err != nil || j.ID != "12" || fmt.Sprint(j.Others) != "[11]" {
		t.Fatalf("%+v %v", j, err)
	}
	if j, err := Load("11", ws); err != nil || j.ID != "11" {
		t.Fatalf("%+v %v", j, err)
	}
	if _, err := Load("13", ws); err == nil || !strings.Contains(err.Error(), "holds jobs 11, 12") {
		t.Errorf("%v", err)
	}
	if _, err := Load("", t.TempDir()); err == nil || !strings.Contains(err.Error(), "no result files") {
		t.Errorf("%v", err)
	}
	// A broken record is named and left out; the job is reported from the
	// others, in the summary and on the page.
	broken := filepath.Join(dir, "result.job12.aggregated.rank1.json")
	must.Do(t, os.WriteFile(broken, []byte(`{"rank": 1, "detail": "x_TOKEN=********}`), 0o644))
	j, err = Load("", ws)
	if err != nil || j.ID != "12" || len(j.Ranks) != 1 || len(j.Unreadable) != 1 || !strings.Contains(j.Unreadable[0], broken) {
		t.Fatalf("a broken result file: %+v %v", j, err)
	}
	var sum strings.Builder
	must.Do(t, j.Summary(&sum))
	if !strings.Contains(sum.String(), "Unreadable, left out: result file "+broken) {
		t.Errorf("summary does not name the broken record:\n%s", sum.String())
	}
	page, _, err := j.Write(t.TempDir())
	must.Do(t, err)
	if !strings.Contains(string(must.Read(t, page)), "Unreadable, left out") {
		t.Error("the page does not name the broken record")
	}
	// Only broken records: an error that names them.
	only := t.TempDir()
	must.Do(t, os.MkdirAll(filepath.Join(only, "slurmrun"), 0o755))
	must.Do(t, os.WriteFile(filepath.Join(only, "slurmrun", "result.job13.aggregated.rank0.json"), []byte("{"), 0o644))
	if _, err := Load("", only); err == nil || !strings.Contains(err.Error(), "result.job13.aggregated.rank0.json") {
		t.Errorf("only broken result files: %v", err)
	}
}

func TestTickStep(t *testing.T) {
	for _, tc := range []struct {
		span time.Duration
		want time.Duration
	}{
		{5 * time.Millisecond, time.Millisecond},
		{464 * time.Millisecond, 50 * time.Millisecond},
		{1779 * time.Millisecond, 200 * time.Millisecond},
		{90 * time.Second, 10 * time.Second},
		{3 * time.Hour, 30 * time.Minute},
		{50 * time.Hour, 6 * time.Hour},
		{30 * 24 * time.Hour, 96 * time.Hour},
	} {
		if got := tickStep(tc.span); got != tc.want || tc.span/got > 10 {
			t.Errorf("tickStep(%v) = %v, want %v", tc.span, got, tc.want)
		}
	}
}
