package config

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Profile selects which later slurm_run.sh behaviours the flow has:
// seed (TensorRT-LLM's slurm_run.sh as slurmrun reproduces it), perfsanity
// (@38660dfb: seed and the PerfSanity tail), current (every later one).
type Profile string

// Decode implements envconfig.Decoder.
func (p *Profile) Decode(s string) error {
	switch Profile(s) {
	case "seed", "perfsanity", "current":
		*p = Profile(s)
		return nil
	}
	return fmt.Errorf("want seed, perfsanity or current")
}

// Behaviour is one later slurm_run.sh behaviour, by the name the flow
// checks, the upstream version it comes from and the profiles that have it.
type Behaviour struct {
	Name, Upstream, What string
	Profiles             []Profile
}

// Behaviours lists each difference between the profiles.
func Behaviours() []Behaviour {
	both := []Profile{"perfsanity", "current"}
	current := []Profile{"current"}
	return []Behaviour{
		{"perfsanity-tail", "@38660dfb", "rank 0 of a stage named PerfSanity runs perf_regression_check.py $jobWorkspace after the perf tail; its code ranks after the perf check's", both},
		{"placeholder-by-role", "{id:3595982320}", "the wheel placeholder is filled only for an aggregated rank or BENCHMARK", current},
		{"scrub-keep-list", "{id:36181326104}", "the single-node scrub keeps rank identity, SLURM_JOB_*, SLURMD_NODENAME and GPU counts, removes OMPI_ PMIX_ PMI_ SLURM_ MPI_ UCX_ I_MPI_ HYDRA_ KMP_ MPICH_ MV2_ CRAY_ and sets single-node transports", current},
		{"usage-error-retry", "{id:36181326104}", "on pytest's exit code 4, __pycache__ and .pytest_cache are removed and pytest runs once more with -c pytest.ini", current},
		{"scrub-roles", "{id:56720826487}", "DISAGG_SERVER and BENCHMARK ranks are scrubbed as single-node ones, whatever the job's node count", current},
		{"unset-injected-ucx-tls", "{id:56720826487}", "UCX_TLS=tcp, which pyxis/enroot may inject, is unset", current},
		{"pmix-gds-hash", "{id:56720826487}", "PMIX_MCA_gds=hash is exported (open-mpi/ompi#6981)", current},
	}
}

// Has says whether the profile has the behaviour named.
func (p Profile) Has(name string) bool {
	for _, b := range Behaviours() {
		if b.Name == name {
			for _, q := range b.Profiles {
				if q == p {
					return true
				}
			}
			return false
		}
	}
	panic("config: no behaviour " + name) // a typo in the flow, not the user's
}

// writeProfiles lists the behaviours and the profiles that have them.
func writeProfiles(w io.Writer) {
	fmt.Fprintln(w, "\nSLURMRUN_PROFILE selects these behaviours of later slurm_run.sh versions:")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BEHAVIOUR\tPROFILES\tUPSTREAM\tWHAT")
	for _, b := range Behaviours() {
		names := make([]string, len(b.Profiles))
		for i, p := range b.Profiles {
			names[i] = string(p)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", b.Name, strings.Join(names, ","), b.Upstream, b.What)
	}
	tw.Flush()
}
