package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/slurmrun/slurmrun/container"
	"github.com/slurmrun/slurmrun/entrypoint"
	"github.com/slurmrun/slurmrun/internal/redact"
	"github.com/slurmrun/slurmrun/proc"
)

// runLaunch drives a disaggregated job's steps from inside its allocation.
func runLaunch(args []string, signals container.SignalState, stdout, stderr *os.File) int {
	fs := flag.NewFlagSet("slurmrun launch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dryRun := fs.Bool("dry-run", false, "print each srun command line, run nothing")
	argsFile := fs.String("srun-args-file", "", "srun arguments, one per line (the launch prefix's srunArgs)")
	fs.Usage = func() {
		fmt.Fprintf(stdout, "usage: slurmrun launch [--dry-run] [--srun-args-file FILE] [-- SRUN_ARGS...]\n\nFlags:\n")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fmt.Fprintln(stdout, "\nEnvironment:")
		entrypoint.WriteLaunchUsage(stdout)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	srunArgs := fs.Args()
	if *argsFile != "" {
		fromFile, err := entrypoint.ReadSrunArgsFile(*argsFile)
		if err != nil {
			fmt.Fprintf(stderr, "slurmrun launch: %v\n", err)
			return 2
		}
		srunArgs = append(fromFile, srunArgs...)
	}
	environ := os.Environ()
	cfg, err := entrypoint.LoadLaunchConfig(environ)
	if err != nil {
		fmt.Fprintf(stderr, "slurmrun launch: %v\n", err)
		return 2
	}
	// launch's own lines and logs, secrets masked (srun lines in a dry run
	// hold the roles' commands).
	red := redact.New(environ)
	log := newLogger(cfg.LogLevel, cfg.LogFormat, red.Writer(stderr)).WithField("job", cfg.JobID)
	sup := proc.New(log, signals)
	ctx, stop := sup.ForwardSignals(context.Background(), cfg.Grace)
	defer stop()
	l := entrypoint.NewLauncher(cfg, srunArgs, environ, log, sup, red.Writer(stdout))
	if *dryRun {
		if err := l.DryRun(ctx); err != nil {
			fmt.Fprintf(stderr, "slurmrun launch: %v\n", err)
			return 1
		}
		return 0
	}
	code := l.Run(ctx)
	// The job's page and JUnit, from the records every rank left; a job
	// that failed before any rank ran has none, and launch said why.
	if err := makeReport(red.Writer(stdout), "", cfg.JobID, cfg.JobWorkspace); err != nil {
		log.WithError(err).Warn("no report")
	}
	return code
}
