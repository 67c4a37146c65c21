package launch

// The node plan: which srun steps a job has, on which nodes, with which
// arguments and environment.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

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
