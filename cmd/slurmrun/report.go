package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/slurmrun/slurmrun/report"
)

// runReport reads the records of a job from its workspaces, writes
// report.html and junit.xml and prints the text summary.
func runReport(args []string, stdout, stderr *os.File) int {
	fs := flag.NewFlagSet("slurmrun report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "where report.html and junit.xml go (default: <first workspace>/slurmrun)")
	job := fs.String("job", "", "the job to report (default: the one that started last)")
	fs.Usage = func() {
		fmt.Fprintln(stdout, "usage: slurmrun report [--out DIR] [--job ID] JOB_WORKSPACE...")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "slurmrun report: name at least one job workspace")
		return 2
	}
	if err := makeReport(stdout, *out, *job, fs.Args()...); err != nil {
		fmt.Fprintf(stderr, "slurmrun report: %v\n", err)
		return 1
	}
	return 0
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
		dir = filepath.Join(workspaces[0], "slurmrun")
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
