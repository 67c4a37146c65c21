// Package launch runs a disaggregated job from inside its allocation, as
// TensorRT-LLM's slurm_launch_disagg.sh does: the install on every node,
// then one srun step per role (generation and context servers, the
// disaggregated server, the benchmark), each rank running `slurmrun run`;
// it tracks them, stops the rest when one fails or the benchmark ends, and
// leaves the launch summary in the job workspace.
package launch

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/slurmrun/slurmrun/config"
	"github.com/slurmrun/slurmrun/internal/atomicfile"
	"github.com/slurmrun/slurmrun/proc"
	"github.com/slurmrun/slurmrun/result"
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

// Hostnames expands a Slurm node list with `scontrol show hostnames`, run
// by sup.
func Hostnames(ctx context.Context, sup *proc.Supervisor, nodeList string) ([]string, error) {
	out, err := sup.Output(ctx, exec.Command("scontrol", "show", "hostnames", nodeList), time.Second)
	if err != nil {
		return nil, fmt.Errorf("scontrol show hostnames %s: %w", nodeList, err)
	}
	return strings.Fields(string(out)), nil
}

// ImageBinary is where the image puts slurmrun (Containerfile).
const ImageBinary = "/usr/local/bin/slurmrun"

// defaultBinary is slurmrun as the steps see it: in a pyxis container step
// the image's, never the submitting host's path; otherwise this binary.
func defaultBinary(srunArgs []string) string {
	if containsPrefix(srunArgs, "--container-image") || containsPrefix(srunArgs, "--container-name") {
		return ImageBinary
	}
	self, err := os.Executable()
	if err != nil {
		return "slurmrun"
	}
	return self
}

// withContainerEnv adds names to the --container-env of args. srun keeps
// only the last --container-env it is given, so the user's names and these
// go into one.
func withContainerEnv(args []string, names ...string) []string {
	out := make([]string, 0, len(args)+1)
	for i := 0; i < len(args); i++ {
		a := args[i]
		if v, ok := strings.CutPrefix(a, "--container-env="); ok {
			names = append(strings.Split(v, ","), names...)
			continue
		}
		if a == "--container-env" && i+1 < len(args) {
			names = append(strings.Split(args[i+1], ","), names...)
			i++
			continue
		}
		out = append(out, a)
	}
	return append(out, "--container-env="+strings.Join(names, ","))
}

// Plan returns the install step and the role steps in start order: GEN
// servers on the first nodes, then CTX servers, then DISAGG_SERVER and
// BENCHMARK overlapping them, as slurm_launch_draft.sh assigns them.
func (l *Launcher) Plan(nodes []string) (install *RoleStep, roles []*RoleStep, err error) {
	c := l.cfg
	extra := l.srunArgs
	if containsPrefix(extra, "--container-image") {
		// pyxis lets image values win unless the job's are named.
		extra = withContainerEnv(extra, "DISAGG_SERVING_TYPE", "pytestCommand")
	}
	srun := func(name string, rest ...string) []string {
		return append(append(append([]string{"srun"}, extra...), "--job-name="+name, "--kill-on-bad-exit=1"), rest...)
	}
	ws := c.JobWorkspace
	if c.Install {
		install = &RoleStep{Role: "INSTALL", Log: filepath.Join(ws, "install.log"), Nodes: nodes,
			Argv: srun("INSTALL", "-N", fmt.Sprint(c.TotalNodes), "--ntasks-per-node=1", c.Binary, "install")}
	}
	next := 0
	take := func(n int) ([]string, error) {
		if next+n > len(nodes) {
			return nil, fmt.Errorf("the allocation has %d nodes; the servers need more (%d GEN x %d, %d CTX x %d)",
				len(nodes), c.NumGenServers, c.NodesPerGenServer, c.NumCtxServers, c.NodesPerCtxServer)
		}
		s := nodes[next : next+n]
		next += n
		return s, nil
	}
	worker := func(role, cmd, log string, nodeCount, gpus int) error {
		slice, err := take(nodeCount)
		if err != nil {
			return err
		}
		perNode := min(gpus, int(c.GpusPerNode))
		roles = append(roles, &RoleStep{Role: role, Log: filepath.Join(ws, log), Nodes: slice,
			Env: []string{"DISAGG_SERVING_TYPE=" + role, "pytestCommand=" + cmd},
			Argv: srun(role, "-N", fmt.Sprint(nodeCount), "-w", strings.Join(slice, ","),
				fmt.Sprintf("--ntasks=%d", nodeCount*perNode), fmt.Sprintf("--ntasks-per-node=%d", perNode), c.Binary, "run")})
		return nil
	}
	genCmd := firstNonEmpty(c.GenWorkerCommand, c.WorkerCommand)
	for i := 0; i < int(c.NumGenServers); i++ {
		if err := worker(fmt.Sprintf("GEN_%d", i), genCmd, fmt.Sprintf("gen_server_%d.log", i), int(c.NodesPerGenServer), int(c.GpusPerGenServer)); err != nil {
			return nil, nil, err
		}
	}
	if !c.GenOnly {
		ctxCmd := firstNonEmpty(c.CtxWorkerCommand, c.WorkerCommand)
		for i := 0; i < int(c.NumCtxServers); i++ {
			if err := worker(fmt.Sprintf("CTX_%d", i), ctxCmd, fmt.Sprintf("ctx_server_%d.log", i), int(c.NodesPerCtxServer), int(c.GpusPerCtxServer)); err != nil {
				return nil, nil, err
			}
		}
	}
	for _, r := range []struct{ role, cmd, log string }{
		{"DISAGG_SERVER", c.ServerCommand, "disagg_server.log"},
		{"BENCHMARK", c.BenchmarkCommand, "benchmark.log"},
	} {
		roles = append(roles, &RoleStep{Role: r.role, Log: filepath.Join(ws, r.log), Nodes: nodes[:1],
			Env:  []string{"DISAGG_SERVING_TYPE=" + r.role, "pytestCommand=" + r.cmd},
			Argv: srun(r.role, "--overlap", "-N", "1", "-w", nodes[0], "--ntasks=1", "--ntasks-per-node=1", c.Binary, "run")})
	}
	return install, roles, nil
}

func containsPrefix(args []string, prefix string) bool {
	for _, a := range args {
		if strings.HasPrefix(a, prefix) {
			return true
		}
	}
	return false
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// DryRun prints each srun command line launch would run.
func (l *Launcher) DryRun(ctx context.Context) error {
	nodes, err := Hostnames(ctx, l.sup, l.cfg.NodeList)
	if err != nil {
		return err
	}
	install, roles, err := l.Plan(nodes)
	if err != nil {
		return err
	}
	for _, st := range append([]*RoleStep{install}, roles...) {
		if st == nil {
			continue
		}
		fmt.Fprintf(l.stdout, "%s %s > %s\n", shellQuote(st.Env), shellQuote(st.Argv), shellQuote([]string{st.Log}))
	}
	return nil
}

// shellQuote renders argv so that a shell would split it back the same way.
func shellQuote(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=/.,:@%+") == "" {
			out[i] = a
		} else {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
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

// stepIDs maps each running step's name (its role) to its id, job.step.
func (l *Launcher) stepIDs() map[string]string {
	ids := map[string]string{}
	out, err := l.sup.Output(context.Background(), exec.Command("squeue", "-h", "-s", "-j", l.cfg.JobID, "-o", "%i %j"), time.Second)
	if err != nil {
		return ids
	}
	for _, line := range strings.Split(string(out), "\n") {
		if id, name, ok := strings.Cut(strings.TrimSpace(line), " "); ok {
			ids[name] = id
		}
	}
	return ids
}

func (l *Launcher) scancel(signal, step string) {
	if _, err := l.sup.Output(context.Background(), exec.Command("scancel", "--signal="+signal, step), time.Second); err != nil {
		l.log.WithError(err).WithField("step", step).Warn("scancel failed")
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

// failure names a failed step's first failing rank and its own exit code,
// from the ranks' records: srun's code is often another rank's, killed by
// --kill-on-bad-exit (143). Ranks that a signal ended are the stopped ones,
// not the cause. Without such a record it is srun's code.
func failure(role string, srunCode int, ranks []*result.Rank) (what string, code int) {
	var first *result.Rank
	var firstEnd time.Time
	for _, res := range ranks {
		if res.Final == 0 || res.Signal != "" {
			continue
		}
		end := res.End()
		if first == nil || end.Before(firstEnd) || end.Equal(firstEnd) && res.Rank < first.Rank {
			first, firstEnd = res, end
		}
	}
	if first == nil {
		return fmt.Sprintf("%s failed with exit code %d", role, srunCode), srunCode
	}
	return fmt.Sprintf("%s rank %d exited %d", role, first.Rank, first.Final), first.Final
}

// roleResults reads the records of this job's ranks of role; one that
// cannot be read is named, and left out.
func (l *Launcher) roleResults(role string) []*result.Rank {
	ranks, bad, err := result.ReadAll(l.cfg.JobWorkspace, l.cfg.JobID, role)
	if err != nil {
		l.log.WithError(err).WithField("role", role).Warn("cannot list the role's records")
	}
	for _, e := range bad {
		l.log.WithError(e).WithField("role", role).Warn("a record cannot be read: the summary leaves it out")
		fmt.Fprintf(l.stdout, "Unreadable, left out: %v\n", e)
	}
	return ranks
}

func allDone(runs []*stepRun) bool {
	for _, r := range runs {
		if !r.done {
			return false
		}
	}
	return true
}

// summarize prints the table and writes the JSON, from the steps and the
// per-rank result files their `slurmrun run` wrote.
func (l *Launcher) summarize(runs []*stepRun, code int) {
	sum := result.Launch{JobID: l.cfg.JobID, ExitCode: code}
	ranks := map[string][]*result.Rank{} // each role's records, read once
	for _, r := range runs {
		row := result.LaunchStep{Role: r.Role, Log: r.Log, StoppedBy: r.signal, Nodes: r.Nodes, Started: r.start.UTC()}
		if r.done {
			rc := r.code
			row.ExitCode = &rc
			row.DurationMS = r.end.Sub(r.start).Milliseconds()
		} else {
			row.DurationMS = time.Since(r.start).Milliseconds()
		}
		ranks[r.Role] = l.roleResults(r.Role)
		for _, res := range ranks[r.Role] {
			row.Ranks++
			row.StepID = res.StepID
			row.RankCodes = append(row.RankCodes, res.Final)
		}
		sum.Steps = append(sum.Steps, row)
	}
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tSTEP\tNODES\tRANKS\tEXIT CODE\tDURATION\tLOG")
	for _, s := range sum.Steps {
		exit := "running"
		if s.ExitCode != nil {
			exit = fmt.Sprint(*s.ExitCode)
		}
		switch {
		case s.StoppedBy != "":
			exit += " (stopped: " + s.StoppedBy + ")"
		case s.ExitCode != nil && *s.ExitCode != 0:
			// srun's code may be a rank that --kill-on-bad-exit ended.
			if what, code := failure(s.Role, *s.ExitCode, ranks[s.Role]); code != *s.ExitCode {
				exit += " (" + strings.TrimPrefix(what, s.Role+" ") + ")"
			}
		}
		step := s.StepID
		if step == "" {
			step = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%.1fs\t%s\n", s.Role, step, strings.Join(s.Nodes, ","), s.Ranks, exit,
			float64(s.DurationMS)/1000, s.Log)
	}
	tw.Flush()
	fmt.Fprintf(l.stdout, "\nLaunch summary (job %s, exit code %d):\n%s", l.cfg.JobID, code, b.String())
	if _, err := sum.Write(l.cfg.JobWorkspace); err != nil {
		l.log.WithError(err).Error("cannot write the launch summary")
	}
}
