package entrypoint

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// on says whether the rank's profile has a later slurm_run.sh behaviour
// (config.Behaviours).
func (f *Flow) on(behaviour string) bool { return f.cfg.Profile.Has(behaviour) }

// withProfile adds the steps only later slurm_run.sh versions have, and
// only for a profile that has them: the seed's list stays as it is.
func (f *Flow) withProfile(base []Step) []Step {
	var out []Step
	for _, st := range base {
		out = append(out, st)
		switch st.Name {
		case "library-path":
			if f.on("unset-injected-ucx-tls") {
				out = append(out, Step{Name: "unset-injected-ucx-tls", Run: unsetInjectedUCXTLS, Plan: true})
			}
		case "single-node-scrub":
			// After the scrub, which removes PMIX_ variables.
			if f.on("pmix-gds-hash") {
				out = append(out, Step{Name: "pmix-gds-hash", Run: exportPMIxGDS, Plan: true})
			}
		case "perf":
			if f.on("perfsanity-tail") {
				out = append(out, Step{Name: "perfsanity", Tail: true, Run: checkPerfSanity, Skip: skipPerfSanity})
			}
		}
	}
	return out
}

// unsetInjectedUCXTLS drops the UCX_TLS=tcp that pyxis/enroot may inject,
// which breaks NIXL's GPU memory registration (upstream's comment).
func unsetInjectedUCXTLS(_ context.Context, f *Flow) error {
	if v, ok := f.env.Get("UCX_TLS"); ok && v == "tcp" {
		fmt.Fprintln(f.out, "Unset UCX_TLS (cluster injected UCX_TLS=tcp)")
		f.env.Unset("UCX_TLS")
	}
	return nil
}

// exportPMIxGDS sets PMIx's gds component for pytest (open-mpi/ompi#6981).
func exportPMIxGDS(_ context.Context, f *Flow) error {
	f.childEnv.Set("PMIX_MCA_gds", "hash")
	return nil
}

func skipPerfSanity(f *Flow) string {
	switch {
	case f.cfg.Rank != 0:
		return "not rank 0"
	case !strings.Contains(f.cfg.StageName, "PerfSanity"):
		return "stage is not PerfSanity"
	}
	return ""
}

// checkPerfSanity runs the PerfSanity regression check on the job
// workspace, as slurm_run.sh @38660dfb does after the perf tail.
func checkPerfSanity(ctx context.Context, f *Flow) error {
	fmt.Fprintln(f.out, "Check PerfSanity Result")
	st, _ := f.run(ctx, f.defsDir, f.cfg.Python, filepath.Join(f.defsDir, "perf", "perf_regression_check.py"), f.cfg.JobWorkspace)
	f.codes.PerfSanity = intp(st.Code)
	fmt.Fprintf(f.out, "Rank%d PerfSanity check finished execution with exit code %d\n", f.cfg.Rank, st.Code)
	if st.Code != 0 {
		return stepFailed(st.Code, "PerfSanity check failed")
	}
	return nil
}

// keepListPrefixes are the names the keep-list scrub removes.
var keepListPrefixes = []string{"OMPI_", "PMIX_", "PMI_", "SLURM_", "MPI_", "UCX_", "I_MPI_", "HYDRA_", "KMP_", "MPICH_", "MV2_", "CRAY_"}

// singleNodeTransports are what the keep-list scrub sets for one node.
var singleNodeTransports = [][2]string{
	{"UCX_TLS", "tcp,cuda_copy,cuda_ipc"}, {"NCCL_IB_DISABLE", "1"}, {"NCCL_NET_PLUGIN", "none"},
	{"OMPI_MCA_btl", "vader,self"}, {"UCX_CUDA_IPC_ENABLE_MNNVL", "n"}, {"UCX_RNDV_SCHEME", "put_zcopy"},
}

// keptByKeepList says what the keep-list scrub keeps of what it would
// remove: the rank's identity, the job's variables and the GPU counts.
func keptByKeepList(name string) bool {
	switch name {
	case "SLURM_PROCID", "SLURM_LOCALID", "SLURM_NODEID", "SLURM_STEP_ID", "SLURM_GPUS_ON_NODE":
		return true
	}
	return strings.HasPrefix(name, "SLURM_JOB_") || strings.HasPrefix(name, "SLURM_GPUS")
}

// ScrubKeepList removes, from env, the MPI, PMIx, Slurm and transport
// variables the keep-list scrub removes, except those it keeps and the
// names in keep, sets the single-node transports, and returns the removed
// names.
func ScrubKeepList(env *Env, keep []string) []string {
	removed := scrub(env, keepListPrefixes, keep, keptByKeepList)
	for _, kv := range singleNodeTransports {
		env.Set(kv[0], kv[1])
	}
	return removed
}

// purgePytestCaches removes __pycache__ directories and .pytest_cache
// below dir, as the retry after a usage error does.
func purgePytestCaches(dir string) error {
	return filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "__pycache__" || d.Name() == ".pytest_cache") {
			if err := os.RemoveAll(path); err != nil {
				return err
			}
			return filepath.SkipDir
		}
		return nil
	})
}
