package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/slurmrun/slurmrun/report"
	"github.com/slurmrun/slurmrun/result"
)

func reportCommand() *command {
	return &command{
		name: "report", args: "[--out DIR] [--job ID] JOB_WORKSPACE...",
		summary: "a job's report from its result files: report.html (every rank's steps on one time axis), junit.xml and a text summary",
		define: func(fs *flag.FlagSet) func(*invocation) int {
			out := fs.String("out", "", "where report.html and junit.xml go (default: <first workspace>/slurmrun)")
			job := fs.String("job", "", "the job to report (default: the one that started last)")
			return func(in *invocation) int {
				if len(in.args) == 0 {
					fmt.Fprintln(in.stderr, "slurmrun report: name at least one job workspace")
					return 2
				}
				if err := makeReport(in.stdout, *out, *job, in.args...); err != nil {
					fmt.Fprintf(in.stderr, "slurmrun report: %v\n", err)
					return 1
				}
				return 0
			}
		},
	}
}

// makeReport writes a job's report.html and junit.xml into dir (default
// <first workspace>/slurmrun), prints its summary and then where they are:
// the page's path is the last line.
func makeReport(w io.Writer, dir, job string, workspaces ...string) error {
	j, err := report.Load(job, workspaces...)
	if err != nil {
		return err
	}
	if dir == "" {
		dir = result.Dir(workspaces[0])
	}
	page, junit, err := j.Write(dir)
	if err != nil {
		return err
	}
	if err := j.Summary(w); err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "JUnit: %s\nReport: %s\n", junit, page)
	return err
}
