// Package entrypoint is the per-rank slurm_run flow: the configuration it
// reads, and each of its steps in the order slurm_run.sh runs them.
package entrypoint

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/slurmrun/slurmrun/internal/safename"
)

// Config is everything the flow reads from its environment. The envconfig
// tag is the variable's exact name, camelCase included, as launch.sh exports it.
type Config struct {
	ResourcePathNode   string `envconfig:"resourcePathNode" desc:"node-local directory that holds TensorRT-LLM/src (required)"`
	StageName          string `envconfig:"stageName" desc:"CI stage; 'Disagg', 'GB200' and 'PyTorch' in it switch steps, and it names the perf output directory (required)"`
	PytestCommand      string `envconfig:"pytestCommand" desc:"the test command (shell syntax: && lists, export, unset, NAME=VAL prefixes, quotes, $VAR) (required)"`
	PerfMode           bool   `envconfig:"perfMode" default:"false" desc:"rank 0 runs the perf check and report after pytest"`
	CoverageConfigFile string `envconfig:"coverageConfigFile" desc:"coverage config whose ---wheel_path--- rank 0 replaces; other ranks wait for it"`
	JobWorkspace       string `envconfig:"jobWorkspace" desc:"shared job directory; result files go to <jobWorkspace>/slurmrun (default: the working directory)"`
	LLMTarfile         string `envconfig:"llmTarfile" desc:"URL or path of the TensorRT-LLM tarball (aggregated stages)"`
	TarName            string `envconfig:"tarName" desc:"file name of the downloaded tarball (aggregated stages)"`

	Rank            Rank          `envconfig:"SLURM_PROCID" default:"0" desc:"global rank; rank 0 rewrites the coverage config and runs the perf tail"`
	LocalRank       Rank          `envconfig:"SLURM_LOCALID" default:"0" desc:"rank on this node; local rank 0 installs, the others wait"`
	NodeID          Rank          `envconfig:"SLURM_NODEID" default:"0" desc:"node index in the job"`
	JobID           string        `envconfig:"SLURM_JOB_ID" default:"local" desc:"job id (lock and result file names)"`
	StepID          string        `envconfig:"SLURM_STEP_ID" desc:"step id (result file)"`
	RestartCount    Rank          `envconfig:"SLURM_RESTART_COUNT" default:"0" desc:"requeue count (lock names differ per requeue)"`
	NumNodes        Count         `envconfig:"SLURM_JOB_NUM_NODES" default:"1" desc:"nodes in the job; 1 scrubs PMI/MPI/SLURM variables from pytest's environment"`
	LDLibraryPath   string        `envconfig:"LD_LIBRARY_PATH" desc:"library path; <wheel>/tensorrt_llm/libs is prepended unless it is an entry"`
	Role            Role          `envconfig:"DISAGG_SERVING_TYPE" desc:"disaggregated role: GEN_<i>, CTX_<i>, DISAGG_SERVER or BENCHMARK (empty: aggregated)"`
	HostNodeName    string        `envconfig:"HOST_NODE_NAME" desc:"host name printed by the install (default: the FQDN)"`
	Python          string        `envconfig:"SLURMRUN_PYTHON" default:"python3" desc:"interpreter for pip, the wheel lookup and the perf scripts"`
	KeepEnv         []string      `envconfig:"SLURMRUN_KEEP_ENV" desc:"comma-separated names the single-node scrub keeps (e.g. SLURM_LOCALID)"`
	CoverageTimeout time.Duration `envconfig:"SLURMRUN_COVERAGE_TIMEOUT" default:"10m" desc:"how long ranks other than 0 wait for the coverage config"`
	InstallTimeout  time.Duration `envconfig:"SLURMRUN_INSTALL_TIMEOUT" default:"2h" desc:"how long local ranks other than 0 wait for the install"`
	InstallRetries  Count         `envconfig:"SLURMRUN_INSTALL_RETRIES" default:"3" desc:"attempts of each install command"`
	RetryDelay      time.Duration `envconfig:"SLURMRUN_INSTALL_RETRY_DELAY" default:"60s" desc:"pause between install attempts"`
	DownloadTimeout time.Duration `envconfig:"SLURMRUN_DOWNLOAD_TIMEOUT" default:"30m" desc:"limit of one tarball download attempt"`
	PipTimeout      time.Duration `envconfig:"SLURMRUN_PIP_TIMEOUT" default:"45m" desc:"limit of one pip attempt"`
	PipArgs         []string      `envconfig:"SLURMRUN_PIP_ARGS" desc:"comma-separated extra arguments for every pip install (e.g. --no-index)"`
	AptPackages     []string      `envconfig:"SLURMRUN_APT_PACKAGES" default:"libffi-dev" desc:"comma-separated packages the install adds with apt-get (set to - for none)"`
	NvidiaSMI       Switch        `envconfig:"SLURMRUN_NVIDIA_SMI" default:"auto" desc:"run nvidia-smi during the install: on, off, or auto (when it is on PATH)"`
	Grace           time.Duration `envconfig:"SLURMRUN_GRACE" default:"20s" desc:"after SIGTERM, how long commands get before SIGKILL (keep below Slurm's KillWait)"`
	LogLevel        LogLevel      `envconfig:"SLURMRUN_LOG_LEVEL" default:"info" desc:"log level: debug, info, warn, error"`
	LogFormat       string        `envconfig:"SLURMRUN_LOG_FORMAT" default:"text" desc:"log format: text or json"`
}

// Rank is a non-negative decimal integer. envconfig alone would read
// "010" as octal 8.
type Rank int

// Decode implements envconfig.Decoder.
func (r *Rank) Decode(s string) error {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 31)
	if err != nil {
		return fmt.Errorf("want a non-negative decimal integer")
	}
	*r = Rank(n)
	return nil
}

// Count is a positive decimal integer.
type Count int

// Decode implements envconfig.Decoder.
func (c *Count) Decode(s string) error {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 31)
	if err != nil || n == 0 {
		return fmt.Errorf("want a positive decimal integer")
	}
	*c = Count(n)
	return nil
}

// Switch is on, off or auto.
type Switch string

// Decode implements envconfig.Decoder.
func (w *Switch) Decode(s string) error {
	switch s {
	case "on", "off", "auto":
		*w = Switch(s)
		return nil
	}
	return fmt.Errorf("want on, off or auto")
}

// LogLevel is a logrus level.
type LogLevel logrus.Level

// Decode implements envconfig.Decoder.
func (l *LogLevel) Decode(s string) error {
	lv, err := logrus.ParseLevel(s)
	if err != nil {
		return fmt.Errorf("want debug, info, warn or error")
	}
	*l = LogLevel(lv)
	return nil
}

// Role is the disaggregated serving role of a step, empty in aggregated jobs.
type Role string

// Decode implements envconfig.Decoder.
func (r *Role) Decode(s string) error {
	switch {
	case s == "", s == "DISAGG_SERVER", s == "BENCHMARK":
	case strings.HasPrefix(s, "GEN_") || strings.HasPrefix(s, "CTX_"):
		if _, err := strconv.ParseUint(s[4:], 10, 16); err != nil {
			return fmt.Errorf("want GEN_<n> or CTX_<n> with a decimal n")
		}
	default:
		return fmt.Errorf("want GEN_<n>, CTX_<n>, DISAGG_SERVER or BENCHMARK")
	}
	*r = Role(s)
	return nil
}

// Worker reports whether the role is a GEN or CTX server.
func (r Role) Worker() bool {
	return strings.HasPrefix(string(r), "GEN_") || strings.HasPrefix(string(r), "CTX_")
}

// Name is the role for file names and logs.
func (r Role) Name() string {
	if r == "" {
		return "aggregated"
	}
	return string(r)
}

// NeedsPlaceholder reports whether the command must carry the wheel-path
// placeholder. Upstream's submit.py strips --cov from worker and router
// commands, so only the benchmark and aggregated commands must have it (F6).
func (r Role) NeedsPlaceholder() bool { return r == "" || r == "BENCHMARK" }

// Aggregated reports whether the stage installs inline (no "Disagg" in its name).
func (c *Config) Aggregated() bool { return !strings.Contains(c.StageName, "Disagg") }

// ConfigError lists every bad or missing variable at once.
type ConfigError struct{ Problems []string }

func (e *ConfigError) Error() string {
	return "bad configuration:\n  " + strings.Join(e.Problems, "\n  ")
}

// envMu serialises LoadConfig: envconfig reads the process environment, which
// LoadConfig replaces for the duration of the call.
var envMu sync.Mutex

// LoadConfig reads the configuration from environ (NAME=VALUE entries).
// need says which variables must be set and non-empty.
func LoadConfig(environ []string, need Needs) (*Config, error) {
	var cfg Config
	problems, err := processEnv(environ, &cfg)
	if err != nil {
		return nil, err
	}
	problems = append(problems, cfg.validate(environ, need)...)
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, &ConfigError{Problems: problems}
	}
	return &cfg, nil
}

// processEnv fills spec, a pointer to a struct with envconfig tags, from
// environ, and returns one problem for every variable it cannot parse.
func processEnv(environ []string, spec any) ([]string, error) {
	envMu.Lock()
	defer envMu.Unlock()
	saved := os.Environ()
	defer restoreEnv(saved)

	keys := configKeys(reflect.TypeOf(spec).Elem())
	os.Clearenv()
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if orig, known := keys.byUpper[strings.ToUpper(name)]; known {
			// envconfig upper-cases every name: feed it the exact-case
			// variable under the upper-case key, and only that one.
			if name != orig {
				continue
			}
			name = strings.ToUpper(name)
		}
		os.Setenv(name, value)
	}

	zero := reflect.New(reflect.TypeOf(spec).Elem()).Elem()
	var problems []string
	for range keys.byUpper {
		err := envconfig.Process("", spec)
		var perr *envconfig.ParseError
		if !errors.As(err, &perr) {
			if err != nil {
				return nil, fmt.Errorf("read configuration: %w", err)
			}
			break
		}
		problems = append(problems, fmt.Sprintf("%s=%q: %v", keys.byUpper[perr.KeyName], perr.Value, perr.Err))
		// Drop the bad value and read again, so every bad variable is named.
		os.Unsetenv(perr.KeyName)
		reflect.ValueOf(spec).Elem().Set(zero)
	}
	return problems, nil
}

// Needs selects the checks that depend on the subcommand.
type Needs int

const (
	// NeedRun checks what `slurmrun run` needs.
	NeedRun Needs = iota
	// NeedInstall checks what `slurmrun install` needs.
	NeedInstall
)

func (c *Config) validate(environ []string, need Needs) []string {
	set := make(map[string]string)
	for _, kv := range environ {
		if name, value, ok := strings.Cut(kv, "="); ok {
			set[name] = value
		}
	}
	var problems []string
	require := func(name string) {
		if strings.TrimSpace(set[name]) == "" {
			problems = append(problems, name+": must be set and non-empty")
		}
	}
	require("resourcePathNode")
	require("stageName")
	if need == NeedRun {
		require("pytestCommand")
	}
	if need == NeedInstall || c.Aggregated() {
		require("llmTarfile")
		require("tarName")
	}
	if c.TarName != "" && (strings.ContainsRune(c.TarName, '/') || c.TarName == "." || c.TarName == "..") {
		problems = append(problems, fmt.Sprintf("tarName=%q: want a plain file name", c.TarName))
	}
	problems = append(problems, c.pathProblems(need)...)
	// They become parts of the result file's and the install lock's names.
	if err := safename.Check("SLURM_JOB_ID", c.JobID); err != nil {
		problems = append(problems, err.Error())
	}
	if c.StepID != "" {
		if err := safename.Check("SLURM_STEP_ID", c.StepID); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		problems = append(problems, fmt.Sprintf("SLURMRUN_LOG_FORMAT=%q: want text or json", c.LogFormat))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"SLURMRUN_COVERAGE_TIMEOUT", c.CoverageTimeout}, {"SLURMRUN_INSTALL_TIMEOUT", c.InstallTimeout},
		{"SLURMRUN_DOWNLOAD_TIMEOUT", c.DownloadTimeout}, {"SLURMRUN_PIP_TIMEOUT", c.PipTimeout}, {"SLURMRUN_GRACE", c.Grace}} {
		if d.v <= 0 {
			problems = append(problems, fmt.Sprintf("%s=%q: want a positive duration such as 30s", d.name, set[d.name]))
		}
	}
	if c.RetryDelay < 0 {
		problems = append(problems, "SLURMRUN_INSTALL_RETRY_DELAY: want a non-negative duration")
	}
	if len(c.AptPackages) == 1 && c.AptPackages[0] == "-" {
		c.AptPackages = nil
	}
	return problems
}

// pathProblems checks the paths before any step runs: a directory that
// is not there or a file where a directory belongs is a configuration error,
// not a failing step, and a run whose record cannot be written must not
// start.
func (c *Config) pathProblems(need Needs) []string {
	var problems []string
	if c.ResourcePathNode != "" {
		if fi, err := os.Stat(c.ResourcePathNode); err != nil {
			problems = append(problems, fmt.Sprintf("resourcePathNode=%q: %v", c.ResourcePathNode, errors.Unwrap(err)))
		} else if !fi.IsDir() {
			problems = append(problems, fmt.Sprintf("resourcePathNode=%q: not a directory", c.ResourcePathNode))
		}
	}
	if c.CoverageConfigFile != "" {
		if fi, err := os.Stat(c.CoverageConfigFile); err == nil && fi.IsDir() {
			problems = append(problems, fmt.Sprintf("coverageConfigFile=%q: a directory, want a file", c.CoverageConfigFile))
		}
	}
	if need == NeedRun {
		name, dir := "jobWorkspace", c.JobWorkspace
		if dir == "" {
			name, dir = "the working directory (jobWorkspace is not set)", "."
		}
		if err := writableDir(filepath.Join(dir, "slurmrun")); err != nil {
			problems = append(problems, fmt.Sprintf("%s=%q: result files cannot be written: %v", name, dir, err))
		}
	}
	return problems
}

// writableDir reports whether dir is, or could be made as, a directory this
// process can write in: its nearest existing ancestor decides.
func writableDir(dir string) error {
	for p := dir; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) && p != filepath.Dir(p) {
			continue
		}
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", p)
		}
		if err := unix.Access(p, unix.W_OK|unix.X_OK); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		return nil
	}
}

type keyTable struct {
	byUpper map[string]string // envconfig key -> the variable's real name
}

func configKeys(rt reflect.Type) keyTable {
	t := keyTable{byUpper: make(map[string]string)}
	for _, f := range fieldDocs(rt) {
		t.byUpper[strings.ToUpper(f.name)] = f.name
	}
	return t
}

type fieldDoc struct{ name, typ, def, desc string }

func configFields() []fieldDoc { return fieldDocs(reflect.TypeOf(Config{})) }

func fieldDocs(rt reflect.Type) []fieldDoc {
	out := make([]fieldDoc, 0, rt.NumField())
	for i := 0; i < rt.NumField(); i++ {
		f := rt.Field(i)
		typ := f.Type.Kind().String()
		switch f.Type {
		case reflect.TypeOf(time.Duration(0)):
			typ = "duration"
		case reflect.TypeOf([]string(nil)):
			typ = "list"
		case reflect.TypeOf(Rank(0)), reflect.TypeOf(Count(0)):
			typ = "int"
		}
		out = append(out, fieldDoc{f.Tag.Get("envconfig"), typ, f.Tag.Get("default"), f.Tag.Get("desc")})
	}
	return out
}

// WriteUsage lists every variable of the run flow with its type, default
// and meaning.
func WriteUsage(w io.Writer) error { return writeUsage(w, configFields()) }

func writeUsage(w io.Writer, fields []fieldDoc) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIABLE\tTYPE\tDEFAULT\tMEANING")
	for _, f := range fields {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.name, f.typ, f.def, f.desc)
	}
	return tw.Flush()
}

func restoreEnv(saved []string) {
	os.Clearenv()
	for _, kv := range saved {
		if name, value, ok := strings.Cut(kv, "="); ok {
			os.Setenv(name, value)
		}
	}
}

func (l LogLevel) String() string { return logrus.Level(l).String() }
