package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/slurmrun/slurmrun/embed"
	"github.com/slurmrun/slurmrun/entrypoint"
	"github.com/slurmrun/slurmrun/proc"
)

// demoStage names the demo's stage: Disagg (the install is a separate step
// there, so the demo needs no pip), PyTorch (the PyTorch perf baseline).
const demoStage = "Demo-1_Node-2_GPUs-PyTorch-Disagg-Post-Merge"

func demoCommand() *command {
	return &command{
		name: "demo", args: "[--dir DIR] [--ranks N]", underInit: true,
		summary: "run the flow for two local ranks on a miniature TensorRT-LLM tree, then the job's report",
		define: func(fs *flag.FlagSet) func(*invocation) int {
			dir := fs.String("dir", "", "where to unpack the tree (default: a new temporary directory)")
			ranks := fs.Int("ranks", 2, "local ranks to run at once")
			return func(in *invocation) int { return runDemo(in, *dir, *ranks) }
		},
	}
}

// runDemo unpacks the miniature TensorRT-LLM tree and runs the flow for
// local ranks at once, then makes the job's report and prints its summary.
func runDemo(in *invocation, dir string, ranks int) int {
	stdout, stderr := in.stdout, in.stderr
	if dir == "" {
		d, err := os.MkdirTemp("", "slurmrun-demo-")
		if err != nil {
			fmt.Fprintf(stderr, "slurmrun demo: %v\n", err)
			return 1
		}
		dir = d
	}
	python, err := findPytest()
	if err != nil {
		fmt.Fprintf(stderr, "slurmrun demo: %v\n", err)
		return 1
	}
	if err := embed.Unpack(dir); err != nil {
		fmt.Fprintf(stderr, "slurmrun demo: %v\n", err)
		return 1
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "slurmrun demo: %v\n", err)
		return 1
	}
	sup := proc.New(newLogger(logAt(logrus.InfoLevel), stderr), in.signals).Holding(in.held)
	ctx, stop := sup.ForwardSignals(context.Background(), entrypointGrace)
	defer stop()

	ws := filepath.Join(dir, "workspace")
	defs := filepath.Join(dir, "TensorRT-LLM", "src", "tests", "integration", "defs")
	command := strings.Join([]string{
		"LLM_ROOT=" + filepath.Join(dir, "TensorRT-LLM", "src"), "COLUMNS=120",
		python, "-m", "pytest", "-v", "--rootdir", defs, "--test-prefix=" + demoStage,
		"--trtllm-wheel=" + entrypoint.WheelPlaceholder + "/tensorrt_llm/",
		"--coverage-config=" + filepath.Join(ws, ".coveragerc"), "test_demo.py",
	}, " ")
	fmt.Fprintf(stdout, "Demo tree: %s\nInterpreter: %s\nRunning %d ranks of: %s\n\n", dir, python, ranks, command)

	type rank struct {
		proc *proc.Process
		log  string
	}
	var started []rank
	jobID := fmt.Sprintf("demo%d", os.Getpid())
	for r := 0; r < ranks; r++ {
		logPath := filepath.Join(dir, fmt.Sprintf("rank%d.log", r))
		out, err := os.Create(logPath)
		if err != nil {
			fmt.Fprintf(stderr, "slurmrun demo: %v\n", err)
			return 1
		}
		cmd := exec.Command(self, "run")
		cmd.Stdout, cmd.Stderr = out, out
		cmd.Env = append(in.environ,
			"resourcePathNode="+dir, "stageName="+demoStage, "perfMode=true", "pytestCommand="+command,
			"jobWorkspace="+ws, "coverageConfigFile="+filepath.Join(ws, ".coveragerc"),
			fmt.Sprintf("SLURM_PROCID=%d", r), fmt.Sprintf("SLURM_LOCALID=%d", r), "SLURM_NODEID=0",
			"SLURM_JOB_NUM_NODES=1", "SLURM_JOB_ID="+jobID,
			"SLURMRUN_PYTHON="+python, "PYTHONPATH="+filepath.Join(dir, "site"),
		)
		p, err := sup.Start(cmd)
		out.Close()
		if err != nil {
			fmt.Fprintf(stderr, "slurmrun demo: start rank %d: %v\n", r, err)
			return 1
		}
		started = append(started, rank{p, logPath})
	}
	worst := 0
	codes := make([]int, len(started))
	for i, r := range started {
		codes[i] = r.proc.Wait().Code
		if worst == 0 {
			worst = codes[i]
		}
	}
	if ctx.Err() != nil {
		fmt.Fprintf(stderr, "slurmrun demo: %v\n", context.Cause(ctx))
	}

	for i, r := range started {
		fmt.Fprintf(stdout, "rank %d: exit code %d, output in %s\n", i, codes[i], r.log)
	}
	// The report of the demo's job: its summary, then the page's path last.
	fmt.Fprintln(stdout)
	if err := makeReport(stdout, "", jobID, ws); err != nil {
		fmt.Fprintf(stderr, "slurmrun demo: report: %v\n", err)
		if worst == 0 {
			worst = 1
		}
	}
	return worst
}

// entrypointGrace bounds how long the demo's ranks get after a ^C.
const entrypointGrace = 10 * time.Second

// findPytest returns the first python3 that can import pytest.
func findPytest() (string, error) {
	var tried []string
	for _, candidate := range []string{"python3", "/usr/bin/python3"} {
		path, err := exec.LookPath(candidate)
		if err != nil {
			continue
		}
		tried = append(tried, path)
		if exec.Command(path, "-c", "import pytest").Run() == nil {
			return path, nil
		}
	}
	if len(tried) == 0 {
		return "", errors.New("python3 is not installed: install it with `apt-get install -y python3 python3-pytest`")
	}
	return "", fmt.Errorf("pytest is missing for %s: install it with `apt-get install -y python3-pytest` (or `python3 -m pip install pytest`)", strings.Join(tried, " and "))
}
