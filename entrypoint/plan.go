package entrypoint

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"

	"github.com/slurmrun/slurmrun/config"
	"github.com/slurmrun/slurmrun/internal/redact"
	"github.com/slurmrun/slurmrun/proc"
)

// RunInstall runs the install step alone, as the disaggregated launcher's
// install srun does, writes its record (role INSTALL, as launch names the
// step) and returns the exit code.
func (f *Flow) RunInstall(ctx context.Context) int {
	f.result.Role = "INSTALL"
	rec := begin(f.result, "install")
	var err error
	for _, s := range f.cfg.Version.Steps {
		if s == config.GitSafeDirectory || s == config.GitConfigMain {
			err = implementations()[s].Run(ctx, f) // pip's git is configured as run's
		}
	}
	if err == nil {
		err = f.Install(ctx)
	}
	finish(rec, err, proc.TerminatingSignal(ctx) != 0)
	code := 0
	if err != nil {
		f.log.WithError(err).WithField("step", "install").Error("step failed")
		code = codeOf(err)
		f.codes.Setup, f.result.FailedStep = code, "install"
		if sig := proc.TerminatingSignal(ctx); sig != 0 {
			code, f.codes.Setup, f.result.Signal = 128+int(sig), 128+int(sig), sig.String()
		}
	} else {
		f.log.WithField("step", "install").Info("step done")
	}
	code, _ = f.writeRecord(code)
	return code
}

// Plan prints what Run would do: the resolved configuration, each step and
// whether it runs, the argv of each command in pytestCommand and how
// pytest's environment differs from slurmrun's. It starts nothing but the
// read-only wheel lookup.
func (f *Flow) Plan(ctx context.Context, w io.Writer) error {
	if err := f.Prepare(); err != nil {
		return err
	}
	w = f.red.Writer(w)
	fmt.Fprintln(w, "Configuration:")
	for _, nv := range config.Values(f.cfg) {
		fmt.Fprintf(w, "  %s=%s\n", nv[0], f.red.Value(nv[0], nv[1]))
	}

	v := f.cfg.Version
	fmt.Fprintf(w, "\nProfile %s (SLURMRUN_PROFILE): upstream slurm_run.sh %s, as %s\n", v.Profile, v.Upstream, v.Script)
	for _, o := range config.OptIns() {
		if slices.Contains(f.cfg.OptIn, o.Name) {
			fmt.Fprintf(w, "  opt-in %s (SLURMRUN_OPT_IN): %s %s\n", o.Name, o.Upstream, o.What)
		}
	}

	// The steps that only derive pytest's environment run as they would,
	// their own lines discarded; the others are described.
	out, errOut := f.out, f.errOut
	f.out, f.errOut, f.planning = io.Discard, io.Discard, true
	defer func() { f.out, f.errOut, f.planning = out, errOut, false }()
	f.childEnv = f.env.Clone()
	fmt.Fprintln(w, "\nSteps:")
	for i, st := range f.steps() {
		what := "runs"
		if st.When != "" {
			what += " " + st.When
		} else if st.Skip != nil {
			if why := st.Skip(f); why != "" {
				what = "skipped: " + why
			}
		}
		if st.Plan && what == "runs" {
			if err := st.Run(ctx, f); err != nil {
				what = fmt.Sprintf("would fail: %v", err)
			}
		}
		fmt.Fprintf(w, "  %2d. %-24s %s\n", i+1, st.Name, what)
	}

	fmt.Fprintf(w, "\nCommands (in %s):\n", f.defsDir)
	for _, line := range planCommands(f.command, f.childEnv.Clone()) {
		fmt.Fprintln(w, "  "+line)
	}
	fmt.Fprintln(w, "\nEnvironment of pytest compared with slurmrun's:")
	for _, line := range EnvDiff(NewEnv(f.initial), f.childEnv, f.red) {
		fmt.Fprintln(w, "  "+line)
	}
	return nil
}

// planCommands expands each simple command as the interpreter would,
// applying export and unset as they come.
func planCommands(c *Command, env *Env) []string {
	var out []string
	syntax.Walk(c.file, func(node syntax.Node) bool {
		cfg := &expand.Config{Env: expand.ListEnviron(env.List()...), NoUnset: true}
		switch n := node.(type) {
		case *syntax.DeclClause:
			for _, a := range n.Args {
				if a.Naked || a.Name == nil {
					continue
				}
				v, err := expand.Literal(cfg, a.Value)
				if err != nil {
					out = append(out, fmt.Sprintf("export %s: %v", a.Name.Value, err))
					continue
				}
				env.Set(a.Name.Value, v)
			}
			out = append(out, "export "+strings.Join(declNames(n), " "))
			return false
		case *syntax.CallExpr:
			args, err := expand.Fields(cfg, n.Args...)
			if err != nil {
				out = append(out, fmt.Sprintf("error: %v", err))
				return false
			}
			var prefix []string
			for _, a := range n.Assigns {
				v, err := expand.Literal(cfg, a.Value)
				if err != nil {
					v = fmt.Sprintf("<%v>", err)
				}
				prefix = append(prefix, a.Name.Value+"="+v)
			}
			if len(args) > 0 && args[0] == "unset" {
				for _, name := range args[1:] {
					env.Unset(name)
				}
			}
			out = append(out, fmt.Sprintf("%sargv %q", strings.Join(append(prefix, ""), " "), args))
			return false
		}
		return true
	})
	return out
}

func declNames(d *syntax.DeclClause) []string {
	var names []string
	for _, a := range d.Args {
		if a.Name != nil {
			names = append(names, a.Name.Value)
		}
	}
	return names
}

// EnvDiff lists what after adds (+), removes (-) and changes (~) relative to
// before, masking secret values.
func EnvDiff(before, after *Env, red *redact.Redactor) []string {
	show := red.Value
	var out []string
	for _, n := range after.Names() {
		a, _ := after.Get(n)
		if b, ok := before.Get(n); !ok {
			out = append(out, "+ "+n+"="+show(n, a))
		} else if a != b {
			out = append(out, "~ "+n+"="+show(n, a))
		}
	}
	for _, n := range before.Names() {
		if _, ok := after.Get(n); !ok {
			out = append(out, "- "+n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i][2:] < out[j][2:] })
	return out
}
