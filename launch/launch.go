// Package launch runs a disaggregated job from inside its allocation, as
// TensorRT-LLM's slurm_launch_disagg.sh does: the install on every node,
// then one srun step per role (generation and context servers, the
// disaggregated server, the benchmark), each rank running `slurmrun run`;
// it tracks them, stops the rest when one fails or the benchmark ends, and
// leaves the launch summary in the job workspace.
package launch

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/slurmrun/slurmrun/config"
	"github.com/slurmrun/slurmrun/internal/atomicfile"
	"github.com/slurmrun/slurmrun/proc"
)

// RoleStep is one srun step of the job.
type RoleStep struct {
	Role  string   // INSTALL, GEN_<i>, CTX_<i>, DISAGG_SERVER or BENCHMARK
	Argv  []string // the srun command line
	Env   []string // added to launch's environment
	Log   string
	Nodes []string
}

// Launcher runs a disaggregated job's steps with the real srun.
type Launcher struct {
	cfg      *config.Launch
	srunArgs []string
	environ  []string
	log      *logrus.Entry
	sup      *proc.Supervisor
	stdout   io.Writer
}

// NewLauncher prepares a launch; srunArgs are the launch prefix's srun
// arguments, carried as a list and never re-split.
func NewLauncher(cfg *config.Launch, srunArgs, environ []string, log *logrus.Entry, sup *proc.Supervisor, stdout io.Writer) *Launcher {
	if cfg.Binary == "" {
		c := *cfg
		c.Binary = defaultBinary(srunArgs)
		cfg = &c
	}
	return &Launcher{cfg: cfg, srunArgs: srunArgs, environ: environ, log: log, sup: sup, stdout: stdout}
}

// stepRun is a started step.
type stepRun struct {
	*RoleStep
	proc   *proc.Process
	start  time.Time
	end    time.Time
	code   int
	done   bool
	signal string // what stopped it, if launch did
}

type stepExit struct {
	run    *stepRun
	status proc.ExitStatus
}

// start runs one step with its output in its log file.
func (l *Launcher) start(st *RoleStep, exits chan<- stepExit) (*stepRun, error) {
	logFile, err := os.Create(st.Log)
	if err != nil {
		return nil, fmt.Errorf("%s log: %w", st.Role, err)
	}
	defer logFile.Close()
	cmd := exec.Command(st.Argv[0], st.Argv[1:]...)
	cmd.Env = append(append([]string{}, l.environ...), st.Env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if cmd.Err != nil {
		return nil, fmt.Errorf("%s: %w", st.Role, cmd.Err)
	}
	p, err := l.sup.Start(cmd)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", st.Role, err)
	}
	r := &stepRun{RoleStep: st, proc: p, start: time.Now()}
	l.log.WithFields(logrus.Fields{"role": st.Role, "log": st.Log}).Info("step started")
	go func() { exits <- stepExit{r, p.Wait()} }()
	return r, nil
}

// stop ends the steps still running through Slurm: `scancel --signal=TERM`
// of each step signals its tasks and lets them run their grace (slurmrun's
// cancel path: Rank lines and the record), where SIGTERM to srun itself
// would make Slurm 22.05's srun kill the tasks at once. After the grace
// period the steps get `scancel --signal=KILL` and their srun SIGKILL, so
// that no step outlives the launch. A step Slurm does not list yet (srun
// still starting) gets SIGTERM through its srun.
func (l *Launcher) stop(runs []*stepRun, exits <-chan stepExit, why string) {
	var live []*stepRun
	for _, r := range runs {
		if !r.done {
			live = append(live, r)
			r.signal = why
		}
	}
	if len(live) == 0 {
		return
	}
	l.log.WithFields(logrus.Fields{"steps": len(live), "why": why}).Warn("stopping steps")
	ids := l.stepIDs()
	for _, r := range live {
		if id, ok := ids[r.Role]; ok {
			l.scancel("TERM", id)
		} else {
			_ = r.proc.Signal(unix.SIGTERM)
		}
	}
	deadline := time.After(l.sup.Remaining(l.cfg.Grace))
	killed := false
	for remaining := len(live); remaining > 0; {
		select {
		case e := <-exits:
			l.record(e)
			remaining--
		case <-deadline:
			if killed {
				return
			}
			killed = true
			ids := l.stepIDs()
			for _, r := range live {
				if !r.done {
					if id, ok := ids[r.Role]; ok {
						l.scancel("KILL", id)
					}
					_ = r.proc.Signal(unix.SIGKILL)
				}
			}
			deadline = time.After(5 * time.Second)
		}
	}
}

func (l *Launcher) record(e stepExit) {
	e.run.done, e.run.code, e.run.end = true, e.status.Code, time.Now()
	l.log.WithFields(logrus.Fields{"role": e.run.Role, "exit_code": e.status.Code,
		"duration": e.run.end.Sub(e.run.start).Round(time.Millisecond)}).Info("step ended")
}

// Run runs the install, starts every role, tracks them all, and returns the
// job's exit code: the benchmark's, or the first failure's. It always writes
// the summary.
func (l *Launcher) Run(ctx context.Context) (code int) {
	c := l.cfg
	var runs []*stepRun
	firstFailure := ""
	defer func() {
		if firstFailure != "" {
			fmt.Fprintln(l.stdout, "Error: "+firstFailure)
		}
		l.summarize(runs, code)
	}()
	nodes, err := Hostnames(ctx, l.sup, c.NodeList)
	if err != nil {
		firstFailure = err.Error()
		return 1
	}
	install, roles, err := l.Plan(nodes)
	if err != nil {
		firstFailure = err.Error()
		return 1
	}
	if c.StatusFile != "" {
		os.Remove(c.StatusFile)
	}
	exits := make(chan stepExit, len(roles)+1)
	if install != nil {
		fmt.Fprintln(l.stdout, "Running installation on all nodes...")
		r, err := l.start(install, exits)
		if err != nil {
			firstFailure = err.Error()
			return 1
		}
		runs = append(runs, r)
		select {
		case e := <-exits:
			l.record(e)
		case <-ctx.Done():
			l.stop(runs, exits, "cancelled")
			firstFailure = fmt.Sprintf("cancelled during the install: %v", context.Cause(ctx))
			return 128 + int(proc.TerminatingSignal(ctx))
		}
		if r.code != 0 {
			// Each node's install writes its record: name the node's rank
			// that failed, with its own code (srun's may be a rank that
			// --kill-on-bad-exit ended).
			what, code := failure(install.Role, r.code, l.roleResults(install.Role))
			firstFailure = fmt.Sprintf("%s. Check %s", what, r.Log)
			return code
		}
		fmt.Fprintln(l.stdout, "Installation completed on all nodes")
	}

	for _, st := range roles {
		r, err := l.start(st, exits)
		if err != nil {
			firstFailure = err.Error()
			l.stop(runs, exits, "start failure")
			return 1
		}
		runs = append(runs, r)
	}
	var benchmark *stepRun
	for _, r := range runs {
		if r.Role == "BENCHMARK" {
			benchmark = r
		}
	}
	for !benchmark.done {
		select {
		case e := <-exits:
			l.record(e)
			if e.run != benchmark && e.status.Code != 0 && firstFailure == "" {
				what, code := failure(e.run.Role, e.status.Code, l.roleResults(e.run.Role))
				firstFailure = fmt.Sprintf("%s before the benchmark finished. Check %s", what, e.run.Log)
				l.stop(runs, exits, "another step failed")
				return code
			}
		case <-ctx.Done():
			firstFailure = fmt.Sprintf("cancelled: %v", context.Cause(ctx))
			l.stop(runs, exits, "cancelled")
			return 128 + int(proc.TerminatingSignal(ctx))
		}
	}
	// The benchmark is over: tell the roles (when they read a file launch
	// knows of), give them a bounded time, then stop the rest.
	if c.StatusFile != "" {
		if err := atomicfile.WriteFile(c.StatusFile, []byte("Done\n"), 0o644); err != nil {
			l.log.WithError(err).Error("cannot write the status file")
		}
	}
	deadline := time.After(c.RoleExitTimeout)
wait:
	for !allDone(runs) {
		select {
		case e := <-exits:
			l.record(e)
		case <-deadline:
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	l.stop(runs, exits, "benchmark finished")
	if benchmark.code != 0 {
		what, code := failure(benchmark.Role, benchmark.code, l.roleResults(benchmark.Role))
		firstFailure = fmt.Sprintf("Benchmark failed: %s. Check %s", what, benchmark.Log)
		return code
	}
	fmt.Fprintln(l.stdout, "Disagg server and benchmark completed successfully")
	return 0
}

func allDone(runs []*stepRun) bool {
	for _, r := range runs {
		if !r.done {
			return false
		}
	}
	return true
}
