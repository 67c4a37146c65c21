package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/slurmrun/slurmrun/config"
	"github.com/slurmrun/slurmrun/internal/redact"
	"github.com/slurmrun/slurmrun/launch"
	"github.com/slurmrun/slurmrun/proc"
)

func launchCommand() *command {
	return &command{
		name: "launch", args: "[--dry-run] [--srun-args-file FILE] [-- SRUN_ARGS...]", underInit: true,
		summary:  "run a disaggregated job's steps with srun, from inside its allocation, then its report",
		settings: func() config.Spec { return &config.Launch{} },
		define: func(fs *flag.FlagSet) func(*invocation) int {
			dryRun := fs.Bool("dry-run", false, "print each srun command line, run nothing")
			argsFile := fs.String("srun-args-file", "", "srun arguments, one per line (the launch prefix's srunArgs)")
			return func(in *invocation) int { return runLaunch(in, *dryRun, *argsFile) }
		},
	}
}

// runLaunch drives a disaggregated job's steps from inside its allocation.
func runLaunch(in *invocation, dryRun bool, argsFile string) int {
	srunArgs := in.args
	if argsFile != "" {
		fromFile, err := launch.ReadSrunArgsFile(argsFile)
		if err != nil {
			fmt.Fprintf(in.stderr, "slurmrun launch: %v\n", err)
			return 2
		}
		srunArgs = append(fromFile, srunArgs...)
	}
	cfg := &config.Launch{}
	if err := config.Read(in.environ, cfg); err != nil {
		return badConfig(in, err)
	}
	// launch's own lines and logs, secrets masked (srun lines in a dry run
	// hold the roles' commands).
	red := redact.New(in.environ)
	log := newLogger(cfg.Logs, red.Writer(in.stderr)).WithField("job", cfg.JobID)
	sup := proc.New(log, in.signals).Holding(in.held)
	ctx, stop := sup.ForwardSignals(context.Background(), cfg.Grace)
	defer stop()
	l := launch.NewLauncher(cfg, srunArgs, in.environ, log, sup, red.Writer(in.stdout))
	if dryRun {
		if err := l.DryRun(ctx); err != nil {
			fmt.Fprintf(in.stderr, "slurmrun launch: %v\n", err)
			return 1
		}
		return 0
	}
	code := l.Run(ctx)
	// The job's page and JUnit, from the records every rank left; a job
	// that failed before any rank ran has none, and launch said why.
	if err := makeReport(red.Writer(in.stdout), "", cfg.JobID, cfg.JobWorkspace); err != nil {
		log.WithError(err).Warn("no report")
	}
	return code
}
