package config

import (
	"time"

	"github.com/slurmrun/slurmrun/internal/safename"
)

// Launch is what submit.py exports for a disaggregated job, read the
// same way as Run.
type Launch struct {
	NumCtxServers     Rank          `envconfig:"numCtxServers" default:"0" desc:"context servers"`
	NumGenServers     Count         `envconfig:"numGenServers" default:"1" desc:"generation servers"`
	GpusPerNode       Count         `envconfig:"gpusPerNode" default:"1" desc:"GPUs per node"`
	GpusPerCtxServer  Count         `envconfig:"gpusPerCtxServer" default:"1" desc:"GPUs of one context server"`
	GpusPerGenServer  Count         `envconfig:"gpusPerGenServer" default:"1" desc:"GPUs of one generation server"`
	NodesPerCtxServer Count         `envconfig:"nodesPerCtxServer" default:"1" desc:"nodes of one context server"`
	NodesPerGenServer Count         `envconfig:"nodesPerGenServer" default:"1" desc:"nodes of one generation server"`
	TotalNodes        Count         `envconfig:"totalNodes" default:"1" desc:"nodes in the job"`
	WorkerCommand     string        `envconfig:"pytestCommandWorker" desc:"GEN and CTX command (older submit.py)"`
	GenWorkerCommand  string        `envconfig:"pytestCommandGENWorker" desc:"GEN command (newer submit.py; wins over pytestCommandWorker)"`
	CtxWorkerCommand  string        `envconfig:"pytestCommandCTXWorker" desc:"CTX command (newer submit.py; wins over pytestCommandWorker)"`
	ServerCommand     string        `envconfig:"pytestCommandDisaggServer" desc:"DISAGG_SERVER command"`
	BenchmarkCommand  string        `envconfig:"pytestCommandBenchmark" desc:"BENCHMARK command"`
	JobWorkspace      string        `envconfig:"jobWorkspace" desc:"shared job directory: step logs, result files, the summary (required)"`
	GenOnly           bool          `envconfig:"TRTLLM_DISAGG_BENCHMARK_GEN_ONLY" default:"false" desc:"no context servers"`
	JobID             string        `envconfig:"SLURM_JOB_ID" desc:"the allocation (required: launch runs inside one)"`
	NodeList          string        `envconfig:"SLURM_JOB_NODELIST" desc:"the allocation's nodes (required)"`
	StatusFile        string        `envconfig:"SLURMRUN_STATUS_FILE" desc:"file launch writes when BENCHMARK has ended, for roles that wait for it (upstream's: <output_dir>/<test id>/benchmark_status.<idx>.txt, which their BENCHMARK writes itself); unset, none is written and the roles get SLURMRUN_ROLE_EXIT_TIMEOUT before they are stopped"`
	RoleExitTimeout   time.Duration `envconfig:"SLURMRUN_ROLE_EXIT_TIMEOUT" default:"60s" desc:"how long the roles get to exit after the benchmark before they are stopped"`
	Binary            string        `envconfig:"SLURMRUN_BIN" desc:"slurmrun as the steps see it (default: the image's /usr/local/bin/slurmrun when the srun arguments name a container, else this binary)"`
	Common
	Logs
	Install bool `envconfig:"SLURMRUN_LAUNCH_INSTALL" default:"true" desc:"run slurmrun install on every node first"`
}

func (cfg *Launch) check(set map[string]string) []string {
	problems := append(cfg.Common.check(set), cfg.Logs.check(set)...)
	problems = append(problems, required(set, "jobWorkspace")...)
	if cfg.JobID == "" || cfg.NodeList == "" {
		problems = append(problems, "SLURM_JOB_ID, SLURM_JOB_NODELIST: launch runs inside a Slurm allocation (sbatch or salloc)")
	} else if err := safename.Check("SLURM_JOB_ID", cfg.JobID); err != nil {
		problems = append(problems, err.Error()) // the summary file is named after it
	}
	if cfg.GenWorkerCommand == "" && cfg.WorkerCommand == "" {
		problems = append(problems, "pytestCommandGENWorker or pytestCommandWorker: must be set")
	}
	if !cfg.GenOnly && cfg.NumCtxServers > 0 && cfg.CtxWorkerCommand == "" && cfg.WorkerCommand == "" {
		problems = append(problems, "pytestCommandCTXWorker or pytestCommandWorker: must be set")
	}
	problems = append(problems, required(set, "pytestCommandDisaggServer", "pytestCommandBenchmark")...)
	return problems
}
