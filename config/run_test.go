package config

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// loadRun reads Run for need from environ.
func loadRun(environ []string, need Needs) (*Run, error) {
	cfg := &Run{Need: need}
	if err := Read(environ, cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

func baseEnv(extra ...string) []string {
	return append([]string{
		"resourcePathNode=/tmp", "stageName=A100-PyTorch-Disagg-1", "pytestCommand=pytest x",
	}, extra...)
}

func TestLoadConfigReadsCamelCaseNames(t *testing.T) {
	ws := t.TempDir()
	cfg, err := loadRun(baseEnv("perfMode=true", "coverageConfigFile=/ws/.coveragerc", "jobWorkspace="+ws,
		"SLURM_PROCID=010", "SLURM_JOB_NUM_NODES=2", "DISAGG_SERVING_TYPE=GEN_3", "SLURMRUN_KEEP_ENV=SLURM_LOCALID,PMI_FD",
		"SLURMRUN_COVERAGE_TIMEOUT=90s"), NeedRun)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ResourcePathNode != "/tmp" || cfg.StageName != "A100-PyTorch-Disagg-1" || cfg.PytestCommand != "pytest x" {
		t.Errorf("camelCase strings not read: %+v", cfg)
	}
	if !cfg.PerfMode || cfg.CoverageConfigFile != "/ws/.coveragerc" || cfg.JobWorkspace != ws {
		t.Errorf("optional camelCase values not read: %+v", cfg)
	}
	if cfg.Rank != 10 {
		t.Errorf("SLURM_PROCID=010 read as %d, want decimal 10", cfg.Rank)
	}
	if cfg.NumNodes != 2 || cfg.Role != "GEN_3" || !cfg.Role.Worker() {
		t.Errorf("numbers or role wrong: %+v", cfg)
	}
	if strings.Join(cfg.KeepEnv, " ") != "SLURM_LOCALID PMI_FD" || cfg.CoverageTimeout != 90*time.Second {
		t.Errorf("slurmrun knobs wrong: %+v", cfg)
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := loadRun(baseEnv(), NeedRun)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Rank != 0 || cfg.NumNodes != 1 || cfg.JobID != "local" || cfg.PerfMode || cfg.Python != "python3" ||
		cfg.Role != "" || strings.Join(cfg.AptPackages, ",") != "libffi-dev" || cfg.NvidiaSMI != "auto" {
		t.Errorf("defaults wrong: %+v", cfg)
	}
}

func TestLoadConfigIgnoresUpperCaseLookalikes(t *testing.T) {
	// envconfig upper-cases keys; STAGENAME must not stand in for stageName.
	_, err := loadRun([]string{"RESOURCEPATHNODE=/tmp", "STAGENAME=x", "PYTESTCOMMAND=pytest"}, NeedRun)
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("want an Error, got %v", err)
	}
	for _, name := range []string{"resourcePathNode", "stageName", "pytestCommand"} {
		if !strings.Contains(err.Error(), name+": must be set") {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

func TestLoadConfigNamesEveryBadVariable(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		want []string
	}{
		{"missing required", []string{"pytestCommand="}, []string{"resourcePathNode: must be set", "stageName: must be set", "pytestCommand: must be set", "llmTarfile: must be set", "tarName: must be set"}},
		{"bad values", baseEnv("SLURM_PROCID=-1", "SLURM_JOB_NUM_NODES=0", "perfMode=yes", "DISAGG_SERVING_TYPE=GENERATOR",
			"SLURMRUN_GRACE=soon", "SLURMRUN_NVIDIA_SMI=maybe"),
			[]string{`SLURM_PROCID="-1"`, `SLURM_JOB_NUM_NODES="0"`, `perfMode="yes"`, `DISAGG_SERVING_TYPE="GENERATOR"`, `SLURMRUN_GRACE="soon"`, `SLURMRUN_NVIDIA_SMI="maybe"`}},
		{"aggregated needs the tarball", []string{"resourcePathNode=/tmp", "stageName=A100-PyTorch-1", "pytestCommand=pytest"},
			[]string{"llmTarfile: must be set", "tarName: must be set"}},
		{"tarName is a file name", baseEnv("tarName=../x.tgz"), []string{`tarName="../x.tgz": want a plain file name`}},
		{"ids become file names", baseEnv("SLURM_JOB_ID=1/../../etc", "SLURM_STEP_ID=.."), []string{`SLURM_JOB_ID="1/../../etc" holds '/'`, `SLURM_STEP_ID=".." is not a name`}},
		{"a bounded id", baseEnv("SLURM_JOB_ID=" + strings.Repeat("7", 5000)), []string{"SLURM_JOB_ID is 5000 characters long"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadRun(tt.env, NeedRun)
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
			if got := strings.Count(err.Error(), "\n"); got != len(tt.want) {
				t.Errorf("want %d problems, got %d:\n%v", len(tt.want), got, err)
			}
		})
	}
}

func TestLoadConfigLeavesProcessEnvironmentAlone(t *testing.T) {
	t.Setenv("SLURMRUN_TEST_MARKER", "kept")
	before := os.Environ()
	if _, err := loadRun(baseEnv(), NeedRun); err != nil {
		t.Fatal(err)
	}
	if strings.Join(os.Environ(), "\n") != strings.Join(before, "\n") {
		t.Error("Read changed the process environment")
	}
}

func TestInstallNeedsTarballEvenOnDisaggStages(t *testing.T) {
	_, err := loadRun(baseEnv(), NeedInstall)
	if err == nil || !strings.Contains(err.Error(), "llmTarfile") {
		t.Fatalf("want llmTarfile named, got %v", err)
	}
}

func TestUsageListsEveryVariable(t *testing.T) {
	var b strings.Builder
	if err := WriteUsage(&b, &Run{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"resourcePathNode", "stageName", "perfMode", "coverageConfigFile", "pytestCommand",
		"jobWorkspace", "SLURM_PROCID", "SLURM_LOCALID", "SLURM_JOB_NUM_NODES", "LD_LIBRARY_PATH", "DISAGG_SERVING_TYPE",
		"llmTarfile", "tarName", "SLURMRUN_KEEP_ENV"} {
		if !strings.Contains(b.String(), "\n"+name+" ") {
			t.Errorf("usage does not list %s", name)
		}
	}
}

// A profile is resolved once into its version's steps; an alias is the
// version; an opt-in replaces the step variant it names.
func TestProfilesResolve(t *testing.T) {
	for _, tt := range []struct {
		profile string
		optIn   string
		want    Profile
		has     []Step
		hasNot  []Step
	}{
		{profile: "seed", want: "seed", has: []Step{WheelPathFill, LibraryPath, ScrubSeed, InstallSeed}, hasNot: []Step{RankBarrier, PerfSanity, S3Drain}},
		{profile: "perfsanity", want: "38660dfb", has: []Step{PerfSanity}},
		{profile: "placeholder-by-role", want: "placeholder-by-role", has: []Step{WheelPathByRole}, hasNot: []Step{WheelPathFill}},
		{profile: "current", want: "main-2026-08", has: []Step{WheelPathPrint, RuntimeEnv, RankBarrier, S3Drain, InstallMain, GitConfigMain},
			hasNot: []Step{LibraryPath, PerfSanity, WheelPathFill}},
		{profile: "main-2026-08", optIn: "scrub-keep-list", want: "main-2026-08", has: []Step{ScrubKeepList}, hasNot: []Step{ScrubSeed}},
	} {
		cfg, err := loadRun(baseEnv("SLURMRUN_PROFILE="+tt.profile, "SLURMRUN_OPT_IN="+tt.optIn), NeedRun)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Version.Profile != tt.want {
			t.Errorf("%s: version %s, want %s", tt.profile, cfg.Version.Profile, tt.want)
		}
		for _, s := range tt.has {
			if !cfg.Version.Has(s) {
				t.Errorf("%s: no step %s", tt.profile, s.Variant)
			}
		}
		for _, s := range tt.hasNot {
			if cfg.Version.Has(s) {
				t.Errorf("%s: step %s", tt.profile, s.Variant)
			}
		}
	}
	// The opt-in applies to that run only: the table is not changed.
	for _, v := range Versions() {
		if v.Has(ScrubKeepList) {
			t.Errorf("profile %s has the keep-list scrub", v.Profile)
		}
	}
}

// Main installs on an infrastructure dry run of a Disagg stage, and then
// needs the tarball's variables; the seed does not install there.
func TestDryRunInstallNeedsTheTarball(t *testing.T) {
	ws := t.TempDir()
	_, err := loadRun(baseEnv("jobWorkspace="+ws, "infraDryRun=true", "SLURMRUN_PROFILE=main-2026-08"), NeedRun)
	var cerr *Error
	if !errors.As(err, &cerr) || !strings.Contains(err.Error(), "llmTarfile: must be set") || !strings.Contains(err.Error(), "tarName: must be set") {
		t.Fatalf("main, infraDryRun: %v", err)
	}
	cfg, err := loadRun(baseEnv("jobWorkspace="+ws, "infraDryRun=true"), NeedRun)
	if err != nil || cfg.Installs() {
		t.Fatalf("seed, infraDryRun: installs %v, %v", cfg != nil && cfg.Installs(), err)
	}
	if _, err := loadRun(baseEnv("SLURM_NTASKS=0", "SLURMRUN_BARRIER_TIMEOUT=0s"), NeedRun); err == nil ||
		!strings.Contains(err.Error(), `SLURM_NTASKS="0"`) || !strings.Contains(err.Error(), "SLURMRUN_BARRIER_TIMEOUT") {
		t.Errorf("bad barrier settings: %v", err)
	}
}
