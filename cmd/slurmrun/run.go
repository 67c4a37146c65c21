package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/sirupsen/logrus"

	"github.com/slurmrun/slurmrun/config"
	"github.com/slurmrun/slurmrun/entrypoint"
	"github.com/slurmrun/slurmrun/internal/redact"
	"github.com/slurmrun/slurmrun/proc"
)

func runCommand() *command {
	return flowCommand("run", "run the per-rank slurm_run flow (the default)", true, config.NeedRun)
}

func installCommand() *command {
	return flowCommand("install", "run only the install step (disaggregated stages' install srun)", true, config.NeedInstall)
}

func planCommand() *command {
	return flowCommand("plan", "print what run would do, and run nothing", false, config.NeedRun)
}

// flowCommand is run, install or plan: the per-rank flow of entrypoint/,
// whole, its install step, or its plan.
func flowCommand(name, summary string, underInit bool, need config.Needs) *command {
	return &command{
		name: name, summary: summary, underInit: underInit,
		settings: func() config.Spec { return &config.Run{Need: need} },
		define: func(*flag.FlagSet) func(*invocation) int {
			return func(in *invocation) int { return runFlow(in, need) }
		},
	}
}

func runFlow(in *invocation, need config.Needs) int {
	if len(in.args) > 0 {
		fmt.Fprintf(in.stderr, "slurmrun %s: unexpected arguments %q\n", in.name, in.args)
		return 2
	}
	// slurmrun's own messages and logs, secrets masked; the commands keep
	// the real stderr.
	red := redact.New(in.environ)
	says := red.Writer(in.stderr)
	cfg := &config.Run{Need: need}
	if err := config.Read(in.environ, cfg); err != nil {
		fmt.Fprintf(says, "slurmrun %s: %v\n", in.name, err)
		return 2
	}
	log := newLogger(cfg.Logs, says).WithFields(logrus.Fields{"rank": int(cfg.Rank), "role": cfg.Role.Name()})
	sup := proc.New(log, in.signals).Holding(in.held)
	ctx, stop := sup.ForwardSignals(context.Background(), cfg.Grace)
	defer stop()

	flow := entrypoint.NewFlow(cfg, in.environ, red, log, sup, in.stdout, in.stderr)
	switch in.name {
	case "install":
		return flow.RunInstall(ctx)
	case "plan":
		if err := flow.Plan(ctx, in.stdout); err != nil {
			fmt.Fprintf(says, "slurmrun plan: %v\n", err)
			return 1
		}
		return 0
	}
	if err := flow.Prepare(); err != nil {
		fmt.Fprintf(says, "slurmrun run: %v\n", err)
		return exitCode(err)
	}
	return flow.Run(ctx)
}

func exitCode(err error) int {
	var se *entrypoint.StepError
	if errors.As(err, &se) {
		return se.Code
	}
	return 1
}
