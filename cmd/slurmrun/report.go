package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/slurmrun/slurmrun/report"
)

// runReport reads the result files of job workspaces, writes junit.xml and
// prints the text summary.
func runReport(args []string, stdout, stderr *os.File) int {
	fs := flag.NewFlagSet("slurmrun report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "where junit.xml goes (default: <first workspace>/slurmrun)")
	fs.Usage = func() {
		fmt.Fprintln(stdout, "usage: slurmrun report [--out DIR] JOB_WORKSPACE...")
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
	job, err := report.Load(fs.Args()...)
	if err != nil {
		fmt.Fprintf(stderr, "slurmrun report: %v\n", err)
		return 1
	}
	dir := *out
	if dir == "" {
		dir = filepath.Join(fs.Arg(0), "slurmrun")
	}
	path := filepath.Join(dir, "junit.xml")
	if err := job.WriteJUnit(path); err != nil {
		fmt.Fprintf(stderr, "slurmrun report: %v\n", err)
		return 1
	}
	if err := job.Summary(stdout); err != nil {
		return 1
	}
	fmt.Fprintf(stdout, "\nJUnit: %s\n", path)
	return 0
}
