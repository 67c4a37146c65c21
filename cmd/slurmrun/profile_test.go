package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/slurmrun/slurmrun/internal/must"
)

// Each profile on the fixture tree, case by case: the Rank lines, what
// pytest ran with (its Full Command line and its environment) and the
// final code. seed is the behaviour every other test pins down.
func TestProfiles(t *testing.T) {
	type want struct {
		code     int
		stdout   []string // in order
		noStdout []string
		env      []string // NAME=VALUE lines of pytest's environment
		noEnv    []string // names pytest must not have
	}
	cases := []struct {
		name  string
		setup func(t *testing.T, tr *tree)
		want  map[string]want
		after func(t *testing.T, tr *tree, profile string)
	}{
		{
			name: "a failing PerfSanity check",
			setup: func(t *testing.T, tr *tree) {
				tr.env["stageName"] = "A100-PyTorch-Disagg-PerfSanity-1"
				must.Do(t, os.WriteFile(filepath.Join(tr.defs, "perf", "perf_regression_check.py"),
					[]byte("import sys\nprint('regression check of', sys.argv[1])\nsys.exit(1)\n"), 0o644))
			},
			want: map[string]want{
				"seed": {code: 0, noStdout: []string{"Check PerfSanity Result"}},
				"perfsanity": {code: 1, stdout: []string{"Rank0 Pytest finished execution with exit code 0", "Check PerfSanity Result",
					"regression check of ", "Rank0 PerfSanity check finished execution with exit code 1"}},
				"current": {code: 1, stdout: []string{"Check PerfSanity Result", "Rank0 PerfSanity check finished execution with exit code 1"}},
			},
		},
		{
			name: "UCX_TLS=tcp injected into a GEN rank of a 2-node job",
			setup: func(t *testing.T, tr *tree) {
				tr.env["UCX_TLS"], tr.env["DISAGG_SERVING_TYPE"], tr.env["SLURM_JOB_NUM_NODES"] = "tcp", "GEN_0", "2"
			},
			want: map[string]want{
				"seed":       {stdout: []string{"Full Command: ", "--trtllm-wheel=" + siteDir + "/tensorrt_llm/"}, env: []string{"UCX_TLS=tcp"}, noEnv: []string{"PMIX_MCA_gds"}},
				"perfsanity": {env: []string{"UCX_TLS=tcp"}, noEnv: []string{"PMIX_MCA_gds"}},
				"current": {stdout: []string{"Unset UCX_TLS (cluster injected UCX_TLS=tcp)", "--trtllm-wheel=__PLACEHOLDER_TRTLLM_WHL_PATH__/tensorrt_llm/"},
					env: []string{"PMIX_MCA_gds=hash"}, noEnv: []string{"UCX_TLS"}},
			},
		},
		{
			name: "exit code 4, then success with -c pytest.ini",
			setup: func(t *testing.T, tr *tree) {
				tr.env["pytestCommand"] = `python3 -c "import sys; sys.exit(0 if sys.argv[-2:] == ['-c', 'pytest.ini'] else 4)" --trtllm-wheel=__PLACEHOLDER_TRTLLM_WHL_PATH__/tensorrt_llm/`
				for _, d := range []string{"__pycache__", ".pytest_cache"} {
					must.Do(t, os.MkdirAll(filepath.Join(tr.defs, d), 0o755))
					must.Do(t, os.WriteFile(filepath.Join(tr.defs, d, "stale"), nil, 0o644))
				}
			},
			want: map[string]want{
				"seed": {code: 4, stdout: []string{"Rank0 Pytest finished execution with exit code 4", "DEBUG: Pytest failed with usage error (exit code 4)"},
					noStdout: []string{"retrying once"}},
				"perfsanity": {code: 4, stdout: []string{"Rank0 Pytest finished execution with exit code 4"}},
				"current": {stdout: []string{"retrying once with -c pytest.ini", "Rank0 Pytest finished execution with exit code 0"},
					noStdout: []string{"DEBUG: Pytest failed with usage error"}},
			},
			after: func(t *testing.T, tr *tree, profile string) {
				_, err := os.Stat(filepath.Join(tr.defs, "__pycache__", "stale"))
				if purged := os.IsNotExist(err); purged != (profile == "current") {
					t.Errorf("caches purged: %v", purged)
				}
			},
		},
		{
			name: "a BENCHMARK rank of a 2-node job",
			setup: func(t *testing.T, tr *tree) {
				tr.env["DISAGG_SERVING_TYPE"], tr.env["SLURM_JOB_NUM_NODES"] = "BENCHMARK", "2"
				tr.env["PMI_RANK"], tr.env["SLURM_LOCALID"], tr.env["UCX_NET_DEVICES"], tr.env["SLURM_NTASKS"] = "0", "0", "mlx5_0", "2"
			},
			want: map[string]want{
				"seed":       {env: []string{"PMI_RANK=0", "UCX_NET_DEVICES=mlx5_0", "SLURM_NTASKS=2"}},
				"perfsanity": {env: []string{"PMI_RANK=0", "UCX_NET_DEVICES=mlx5_0"}},
				"current": {stdout: []string{"Full Command: ", "--trtllm-wheel=" + siteDir + "/tensorrt_llm/"},
					env: []string{"SLURM_LOCALID=0", "SLURM_PROCID=0", "SLURM_JOB_ID=4242", "UCX_TLS=tcp,cuda_copy,cuda_ipc",
						"NCCL_IB_DISABLE=1", "OMPI_MCA_btl=vader,self", "PMIX_MCA_gds=hash"}, noEnv: []string{"PMI_RANK", "UCX_NET_DEVICES", "SLURM_NTASKS"}},
			},
		},
	}
	for _, c := range cases {
		for _, profile := range []string{"seed", "perfsanity", "current"} {
			t.Run(c.name+"/"+profile, func(t *testing.T) {
				tr := newTree(t)
				out := filepath.Join(tr.dir, "env.txt")
				tr.env["ENV_OUT"], tr.env["perfMode"], tr.env["SLURMRUN_PROFILE"] = out, "false", profile
				tr.env["pytestCommand"] = tr.pytest("test_cases.py::test_env")
				c.setup(t, tr)
				w := c.want[profile]
				r := runBin(t, tr.env, "run")
				if r.code != w.code {
					t.Fatalf("exit code %d, want %d\n%s\n%s", r.code, w.code, r.stdout, r.stderr)
				}
				inOrder(t, r.stdout, append(w.stdout, "Rank0 Final Slurm run finished execution with exit code "+strconv.Itoa(w.code))...)
				for _, no := range w.noStdout {
					if strings.Contains(r.stdout, no) {
						t.Errorf("stdout holds %q:\n%s", no, r.stdout)
					}
				}
				if len(w.env)+len(w.noEnv) > 0 {
					env := "\n" + string(must.Read(t, out)) + "\n"
					for _, kv := range w.env {
						if !strings.Contains(env, "\n"+kv+"\n") {
							t.Errorf("pytest's environment lacks %s", kv)
						}
					}
					for _, name := range w.noEnv {
						if strings.Contains(env, "\n"+name+"=") {
							t.Errorf("pytest's environment has %s", name)
						}
					}
				}
				if c.after != nil {
					c.after(t, tr, profile)
				}
			})
		}
	}
}

// inOrder checks that each of want appears in out, each after the one before.
func inOrder(t *testing.T, out string, want ...string) {
	t.Helper()
	rest := out
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("%q missing or out of order in:\n%s", w, out)
		}
		rest = rest[i+len(w):]
	}
}
