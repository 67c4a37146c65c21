package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/slurmrun/slurmrun/internal/must"
)

// Each profile on the fixture tree, case by case, with real pytest: the
// Rank lines, what pytest ran with and the final code. The side-by-side
// test (upstream_test.go) holds every profile to its published script;
// this one pins down the aliases and the opt-in that no script has whole.
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
				"current": {code: 0, noStdout: []string{"Check PerfSanity Result"}},
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
				"current": {stdout: []string{"Unset UCX_TLS (cluster injected UCX_TLS=tcp)", "Library Path:", "PMIX_MCA_gds=hash",
					"--trtllm-wheel=__PLACEHOLDER_TRTLLM_WHL_PATH__/tensorrt_llm/"},
					env: []string{"PMIX_MCA_gds=hash"}, noEnv: []string{"UCX_TLS"}},
			},
		},
		{
			name: "exit code 4: diagnosed, never retried",
			setup: func(t *testing.T, tr *tree) {
				tr.env["pytestCommand"] = `python3 -c "import sys; sys.exit(4)" --trtllm-wheel=__PLACEHOLDER_TRTLLM_WHL_PATH__/tensorrt_llm/`
			},
			want: map[string]want{
				"seed":       {code: 4, stdout: []string{"Rank0 Pytest finished execution with exit code 4", "DEBUG: Pytest failed with usage error (exit code 4)"}},
				"perfsanity": {code: 4, stdout: []string{"Rank0 Pytest finished execution with exit code 4", "DEBUG: Pytest failed with usage error (exit code 4)"}},
				"current":    {code: 4, stdout: []string{"Rank0 Pytest finished execution with exit code 4", "DEBUG: Pytest failed with usage error (exit code 4)"}},
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
				// Scrubbed after PMIX_MCA_gds is set, as main: it goes too.
				"current": {env: []string{"SLURM_PROCID=0", "UCX_NET_DEVICES=mlx5_0"},
					noEnv: []string{"PMI_RANK", "SLURM_LOCALID", "SLURM_NTASKS", "SLURM_JOB_ID", "PMIX_MCA_gds"}},
			},
		},
		{
			name: "the keep-list scrub, opted in",
			setup: func(t *testing.T, tr *tree) {
				tr.env["SLURMRUN_OPT_IN"] = "scrub-keep-list"
				for _, kv := range []string{"SLURM_LOCALID=0", "SLURM_NODEID=0", "SLURMD_NODENAME=node1", "SLURM_JOB_NAME=j",
					"SLURM_GPUS_ON_NODE=8", "SLURM_SUBMIT_HOST=login", "SLURM_STEP_ID=5", "SLURM_NTASKS=1", "SLURM_JOB_GPUS=0",
					"UCX_NET_DEVICES=mlx5_0", "I_MPI_PIN=1", "PMIX_RANK=0", "CRAY_LD=1"} {
					k, v, _ := strings.Cut(kv, "=")
					tr.env[k] = v
				}
			},
			want: map[string]want{
				"seed": {env: []string{"SLURM_PROCID=0", "SLURM_LOCALID=0", "SLURM_NODEID=0", "SLURMD_NODENAME=node1", "SLURM_JOB_NAME=j",
					"SLURM_JOB_ID=4242", "SLURM_JOB_NUM_NODES=1", "SLURM_GPUS_ON_NODE=8", "SLURM_SUBMIT_HOST=login",
					"UCX_TLS=tcp,cuda_copy,cuda_ipc", "NCCL_IB_DISABLE=1", "NCCL_NET_PLUGIN=none", "OMPI_MCA_btl=vader,self",
					"UCX_CUDA_IPC_ENABLE_MNNVL=n", "UCX_RNDV_SCHEME=put_zcopy"},
					noEnv: []string{"SLURM_STEP_ID", "SLURM_NTASKS", "SLURM_JOB_GPUS", "UCX_NET_DEVICES", "I_MPI_PIN", "PMIX_RANK", "CRAY_LD"}},
			},
		},
	}
	for _, c := range cases {
		for _, profile := range []string{"seed", "perfsanity", "current"} {
			w, ok := c.want[profile]
			if !ok {
				continue
			}
			t.Run(c.name+"/"+profile, func(t *testing.T) {
				tr := newTree(t)
				out := filepath.Join(tr.dir, "env.txt")
				tr.env["ENV_OUT"], tr.env["perfMode"], tr.env["SLURMRUN_PROFILE"] = out, "false", profile
				tr.env["pytestCommand"] = tr.pytest("test_cases.py::test_env")
				c.setup(t, tr)
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
			})
		}
	}
}

// A profile names one upstream version: plan says which, an alias is the
// version, and a name that is none of them is refused with the list.
func TestProfileNames(t *testing.T) {
	tr := newTree(t)
	for _, c := range []struct{ profile, want string }{
		{"seed", "Profile seed (SLURMRUN_PROFILE): upstream slurm_run.sh seed, as seed/slurm_run.sh"},
		{"perfsanity", "Profile 38660dfb (SLURMRUN_PROFILE): upstream slurm_run.sh @38660dfb, as upstream/slurm_run.38660dfb.sh"},
		{"current", "Profile main-2026-08 (SLURMRUN_PROFILE): upstream slurm_run.sh {id:57411251888} with #18240, as upstream/slurm_run.main-2026-08.sh"},
	} {
		tr.env["SLURMRUN_PROFILE"] = c.profile
		r := runBin(t, tr.env, "plan")
		if r.code != 0 || !strings.Contains(r.stdout, c.want) {
			t.Errorf("plan with %s: exit %d, want %q in:\n%s%s", c.profile, r.code, c.want, r.stdout, r.stderr)
		}
	}
	tr.env["SLURMRUN_PROFILE"], tr.env["SLURMRUN_OPT_IN"] = "newest", "scrub-keep-list,retry-usage-error"
	r := runBin(t, tr.env, "run")
	if r.code != 2 || !strings.Contains(r.stderr, `SLURMRUN_PROFILE="newest": want one of seed, 38660dfb, perfsanity, placeholder-by-role, main-2026-08, current`) ||
		!strings.Contains(r.stderr, `SLURMRUN_OPT_IN="scrub-keep-list,retry-usage-error": no opt-in "retry-usage-error"`) {
		t.Errorf("exit %d, want 2 naming both variables:\n%s", r.code, r.stderr)
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
