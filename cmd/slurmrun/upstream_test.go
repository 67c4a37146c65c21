package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/slurmrun/slurmrun/config"
	"github.com/slurmrun/slurmrun/internal/must"
)

// The differential test: for every profile, the published upstream
// scripts it reproduces (../shared/seed and ../shared/upstream) run with
// bash beside `slurmrun run`, case by case, on identical fixtures with the
// same stubs (pytest, nvidia-smi, apt-get, the perf, PerfSanity and S3
// scripts), the same real pip, git, wget and tar. Compared: each rank's
// stdout, exit code, pytest's argv, directory, environment and git
// configuration, the stubs' calls, the coverage config, the files left in
// the tree and, where the install runs, what pip installed. Every
// difference the comparison forgives is one of the deliberate ones listed
// (and in the README), each with its reason.

// sharedDir is ../shared beside the repository, as CI lays it out, or
// SLURMRUN_SHARED.
func sharedDir(t testing.TB) string {
	if p := os.Getenv("SLURMRUN_SHARED"); p != "" {
		return p
	}
	p, _ := filepath.Abs(filepath.Join("..", "..", "..", "shared"))
	if _, err := os.Stat(filepath.Join(p, "upstream")); err != nil {
		t.Fatalf("upstream scripts not found at %s/upstream (set SLURMRUN_SHARED to the folder with seed/ and upstream/): %v", p, err)
	}
	return p
}

// stub is one program for every stubbed command, named by the file it is
// run as: it records its call (and, as pytest, its environment and git's
// configuration) to $STUB_LOG, prints a line, and exits with
// $STUB_EXIT_<NAME>.
const stub = `#!/usr/bin/python3
import json, os, re, subprocess, sys, time
name = os.path.basename(sys.argv[0])
rec = {"prog": name, "argv": sys.argv[1:], "cwd": os.getcwd(), "t": time.time()}
if name == "pytest":
    rec["env"] = dict(os.environ)
    rec["git"] = subprocess.run(["git", "config", "--get-regexp", r"^(safe\.directory|url\..*)$"],
                                capture_output=True, text=True).stdout
with open(os.environ["STUB_LOG"], "a") as f:
    f.write(json.dumps(rec) + "\n")
if name == "nvidia-smi" and sys.argv[1:] == ["-q"]:
    print("==============NVSMI LOG==============\n\nAttached GPUs                             : 2")
    print("GPU 00000000:07:00.0\n    Product Name                          : NVIDIA H200")
    print("    GPU UUID                              : GPU-0a1b2c3d-0000-1111-2222-333344445555")
    print("GPU 00000000:0F:00.0\n    GPU UUID                              : GPU-9f8e7d6c-0000-1111-2222-333344445555")
else:
    print("stub %s: %s" % (name, " ".join(sys.argv[1:])))
sys.exit(int(os.environ.get("STUB_EXIT_" + re.sub(r"\W", "_", name.removesuffix(".py")).upper(), "0")))
`

// sleepStub lets upstream's non-zero ranks skip their blind `sleep 30` for
// the coverage config (the cases start rank 0 first or write the config
// before); every other sleep (the barrier's and the install lock's 10 s
// polls) is real.
const sleepStub = "#!/bin/sh\n[ \"$1\" = 30 ] && exit 0\nexec /usr/bin/sleep \"$@\"\n"

// coverageConfig holds both versions' placeholders.
const coverageConfig = "[run]\nbranch = True\n[paths]\nsource =\n    ---wheel_path---/tensorrt_llm/\n    @TRTLLM_WHEEL_PATH@/tensorrt_llm/\n"

// errTrapFix is slurmrun's one change to every version's flow: after
// `set +e`, which means "the following lines always run", the ERR trap
// (set -E) still ends the script at the first failing command, so a failing
// pytest or perf check loses every later Rank line, the perf tail and, on
// main, the S3 drain. slurmrun runs them, as the side branch
// {id:36181326104} does with this same line.
var errTrapFix = [2]string{"# Turn off \"exit on error\" so the following lines always run\nset +e\n",
	"# Turn off \"exit on error\" so the following lines always run\nset +e\ntrap - ERR\n"}

// upstreamPatches are changes to the published scripts that the profile
// includes and the file predates, each with the upstream change it is.
var upstreamPatches = map[string][][2]string{
	// #18240 (2026-08-27): the S3 drain on rank 0 only.
	"upstream/slurm_run.main-2026-08.sh": {{
		"python3 \"$llmSrcNode/tests/test_common/s3_output.py\" \\\n    --drain-spool \"$jobWorkspace\" || true\n",
		"if [ $SLURM_PROCID -eq 0 ]; then\n    python3 \"$llmSrcNode/tests/test_common/s3_output.py\" \\\n        --drain-spool \"$jobWorkspace\" || true\nfi\n",
	}},
}

// diffCase is one situation, run on both sides for each of its profiles.
type diffCase struct {
	name string
	// profiles the case runs for; nil: every profile. The seed's installer
	// is not published: cases that install run for main only.
	profiles []config.Profile
	env      map[string]string
	// ranks are each rank's variables beyond env, started in order, the
	// next once gate says so of the one before; nil: rank 0 alone.
	ranks []map[string]string
	gate  func(fx *fixture, r *rankRun) bool
	// install: a fresh venv holding tensorrt_llm 0.0.0, the tarball (0.0.1)
	// served over loopback HTTP, and an index of the wheels pip may need.
	install bool
	// written: the coverage config as rank 0 leaves it, before any rank.
	written bool
}

// The cases. Every one runs a realistic pytestCommand: a variable
// prefix, a quoted value, the wheel placeholder.
func diffCases() []diffCase {
	main := []config.Profile{"main-2026-08"}
	multiNode := map[string]string{"SLURM_JOB_NUM_NODES": "2", "SLURM_NTASKS": "2", "SLURM_STEP_ID": "3",
		"PMI_RANK": "0", "PMIX_RANK": "0", "OMPI_COMM_WORLD_SIZE": "2", "SLURM_NODEID": "0", "SLURMD_NODENAME": "node1"}
	with := func(base map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	return []diffCase{
		{name: "rank0"},
		{name: "waiting-rank", env: map[string]string{"SLURM_PROCID": "1", "SLURM_LOCALID": "1"}, written: true},
		{name: "gen-multi-node", env: with(multiNode, "DISAGG_SERVING_TYPE", "GEN_0", "SLURM_NTASKS", "1", "UCX_TLS", "tcp")},
		{name: "benchmark", env: with(multiNode, "DISAGG_SERVING_TYPE", "BENCHMARK", "UCX_TLS", "tcp")},
		{name: "disagg-server", env: with(multiNode, "DISAGG_SERVING_TYPE", "DISAGG_SERVER")},
		{name: "failing-pytest", env: map[string]string{"STUB_EXIT_PYTEST": "1"}},
		{name: "usage-error", env: map[string]string{"STUB_EXIT_PYTEST": "4"}},
		{name: "perf-regression", env: map[string]string{"stageName": "A100-TensorRT-Disagg-Perf-1", "STUB_EXIT_SANITY_PERF_CHECK": "1"}},
		{name: "perfsanity", env: map[string]string{"stageName": "A100-PyTorch-Disagg-PerfSanity-1", "STUB_EXIT_PERF_REGRESSION_CHECK": "1",
			"STUB_EXIT_S3_OUTPUT": "2"}},
		{name: "injected-ucx-tls", env: map[string]string{"UCX_TLS": "tcp", "PMIX_MCA_gds": "ds21"}},
		{name: "infra-dry-run", install: true, env: map[string]string{"infraDryRun": "true", "GITHUB_CLONE_TOKEN": "ghp_" + strings.Repeat("a1B2", 9)}},
		{name: "run-ray", install: true, profiles: main, env: map[string]string{"stageName": "A100-PyTorch-1", "pytestExtra": "--run-ray"}},
		{name: "aggregated-two-local-ranks", install: true, profiles: main, env: map[string]string{"stageName": "A100-PyTorch-1",
			"HOST_NODE_NAME": "node-a", "SLURM_JOB_NUM_NODES": "1", "SLURM_NTASKS": "2"},
			ranks: []map[string]string{{"SLURM_PROCID": "1", "SLURM_LOCALID": "1"}, {"SLURM_PROCID": "0", "SLURM_LOCALID": "0"}},
			gate: func(_ *fixture, r *rankRun) bool {
				return strings.Contains(r.stdout.String(), "(Waiting for install lock)")
			}},
		{name: "barrier", written: true, env: with(multiNode, "DISAGG_SERVING_TYPE", "GEN_0", "SLURM_NTASKS", "3",
			"SLURM_STEP_NODELIST", "node[1-2]", "SLURM_STEP_TASKS_PER_NODE", "2,1"),
			ranks: []map[string]string{
				{"SLURM_PROCID": "1", "SLURM_LOCALID": "1"},
				{"SLURM_PROCID": "0", "SLURM_LOCALID": "0"},
				{"SLURM_PROCID": "2", "SLURM_LOCALID": "0", "SLURM_NODEID": "1", "SLURMD_NODENAME": "node2"}},
			// Rank 1 is at the barrier, then rank 0 has said 2/3 are ready:
			// only then does rank 2 come.
			gate: func(fx *fixture, r *rankRun) bool {
				if r.env["SLURM_PROCID"] == "1" {
					m, _ := filepath.Glob(filepath.Join(fx.ws, "run_ready_job_*", "rank_1.ready"))
					return len(m) > 0
				}
				return strings.Contains(r.stdout.String(), "(Waiting for all 3 ranks to be ready) ready: 2/3")
			}},
	}
}

// fixture is one side's tree: resourcePathNode, jobWorkspace, home, stubs
// and, for install cases, its own venv.
type fixture struct {
	root, src, defs, ws, venvBin string
	env                          map[string]string
}

// rankRun is one rank's process.
type rankRun struct {
	env            map[string]string
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	code           int
}

// upstreamEnv is what the two sides share: the tests' index of wheels and
// the tarball's server.
type upstreamEnv struct {
	shared, links, url string
	wheel0             string // tensorrt_llm 0.0.0, preinstalled in install cases' venvs
}

func TestUpstreamSideBySide(t *testing.T) {
	needFixture(t)
	ue := &upstreamEnv{shared: sharedDir(t), links: t.TempDir()}
	for _, w := range [][2]string{{"ray", "2.55.1"}, {"fixture_dev_req", "1.0"}, {"fixture_grpc_req", "1.0"}} {
		_, err := writeWheel(ue.links, w[0], w[1], map[string][]byte{w[0] + "/__init__.py": []byte("")})
		must.Do(t, err)
	}
	ue.wheel0 = wheel
	tarball := sourceTarball(t, "0.0.1", map[string][]byte{
		"TensorRT-LLM/src/requirements-dev.txt":      []byte("fixture-dev-req==1.0\n"),
		"TensorRT-LLM/src/requirements-grpc-smg.txt": []byte("fixture-grpc-req==1.0\n"),
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(tarball) }))
	t.Cleanup(srv.Close)
	ue.url = srv.URL + "/llm.tar.gz"
	if _, err := exec.LookPath("wget"); err != nil {
		t.Fatal("wget is needed to run upstream's installer (make deps installs it)")
	}
	for _, v := range config.Versions() {
		for _, c := range diffCases() {
			if c.profiles != nil && !slices.Contains(c.profiles, v.Profile) {
				continue
			}
			t.Run(string(v.Profile)+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				var up, ours []*rankRun
				var fxUp, fxOurs *fixture
				done := make(chan struct{})
				go func() {
					defer close(done)
					fxUp = ue.fixture(t, v, c)
					up = fxUp.runRanks(t, c, "bash", fxUp.script(t, ue, v))
				}()
				fxOurs = ue.fixture(t, v, c)
				ours = fxOurs.runRanks(t, c, binary, "run")
				<-done
				if t.Failed() {
					return
				}
				compareSides(t, v, c, fxUp, fxOurs, up, ours)
			})
		}
	}
}

// fixture lays out one side's tree for case c of version v.
func (ue *upstreamEnv) fixture(t testing.TB, v config.Version, c diffCase) *fixture {
	tr := newTree(t)
	root := tr.dir
	fx := &fixture{root: root, src: filepath.Join(root, "TensorRT-LLM", "src"), defs: tr.defs, ws: tr.ws, venvBin: venvBin}
	stubs := filepath.Join(root, "stubs")
	must.Do(t, os.MkdirAll(stubs, 0o755))
	for _, p := range []string{filepath.Join(stubs, "pytest"), filepath.Join(stubs, "nvidia-smi"), filepath.Join(stubs, "apt-get"),
		filepath.Join(fx.defs, "perf", "sanity_perf_check.py"), filepath.Join(fx.defs, "perf", "create_perf_comparison_report.py"),
		filepath.Join(fx.defs, "perf", "perf_regression_check.py"), filepath.Join(fx.src, "tests", "test_common", "s3_output.py")} {
		must.Do(t, os.WriteFile(p, []byte(stub), 0o755))
	}
	must.Do(t, os.WriteFile(filepath.Join(stubs, "sleep"), []byte(sleepStub), 0o755))
	// Where main's slurm_run.sh sources slurm_setup_runtime_env from.
	setup := filepath.Join(fx.src, "jenkins", "scripts", "slurm_env_setup.sh")
	must.Do(t, os.MkdirAll(filepath.Dir(setup), 0o755))
	must.Do(t, os.WriteFile(setup, must.Read(t, filepath.Join(ue.shared, "upstream", "slurm_env_setup.main-2026-08.sh")), 0o644))
	cov := coverageConfig
	if c.written {
		cov = strings.NewReplacer("---wheel_path---", siteDir, "@TRTLLM_WHEEL_PATH@", siteDir).Replace(cov)
	}
	must.Do(t, os.WriteFile(filepath.Join(fx.ws, ".coveragerc"), []byte(cov), 0o644))
	if c.install {
		fx.venvBin = newBareVenv(t, filepath.Join(root, "venv"), ue.wheel0)
	}
	stage := stage
	if s, ok := c.env["stageName"]; ok {
		stage = s
	}
	command := "LLM_ROOT=" + fx.src + ` __LUNOWUD="-thread_pool_size=1" pytest -v --timeout=3600 --rootdir ` + fx.defs +
		" --test-prefix=" + stage + " --trtllm-wheel=" + "__PLACEHOLDER_TRTLLM_WHL_PATH__" + "/tensorrt_llm/" +
		" --coverage-config=" + filepath.Join(fx.ws, ".coveragerc") + " " + c.env["pytestExtra"] + " test_demo.py"
	fx.env = map[string]string{
		"PATH":                          stubs + ":" + fx.venvBin + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME":                          tr.env["HOME"],
		"LANG":                          "C.UTF-8",
		"LD_LIBRARY_PATH":               "/usr/local/lib",
		"STUB_LOG":                      filepath.Join(root, "calls.log"),
		"resourcePathNode":              root,
		"stageName":                     stage,
		"perfMode":                      "true",
		"jobWorkspace":                  fx.ws,
		"coverageConfigFile":            filepath.Join(fx.ws, ".coveragerc"),
		"llmTarfile":                    ue.url,
		"tarName":                       "llm.tar.gz",
		"pytestCommand":                 command,
		"SLURM_PROCID":                  "0",
		"SLURM_LOCALID":                 "0",
		"SLURM_JOB_NUM_NODES":           "1",
		"SLURM_JOB_ID":                  "4242",
		"SLURMRUN_PROFILE":              string(v.Profile),
		"SLURMRUN_INSTALL_RETRY_DELAY":  "1s",
		"PIP_NO_INDEX":                  "1",
		"PIP_FIND_LINKS":                ue.links,
		"PIP_DISABLE_PIP_VERSION_CHECK": "1",
		"PIP_NO_COLOR":                  "1",
		"PIP_PROGRESS_BAR":              "off",
		"PYTHONDONTWRITEBYTECODE":       "1",
	}
	for k, val := range c.env {
		if k != "pytestExtra" {
			fx.env[k] = val
		}
	}
	return fx
}

// newBareVenv makes a venv that sees Debian's pytest and pip (no pip of
// its own: a second quick to make), with pip3 beside its python3 as pip
// installs it, and tensorrt_llm from wheel installed.
func newBareVenv(t testing.TB, dir, wheel string) string {
	if out, err := execOutput("/usr/bin/python3", "-m", "venv", "--system-site-packages", "--without-pip", dir); err != nil {
		t.Fatal(err, out)
	}
	bin := filepath.Join(dir, "bin")
	must.Do(t, os.WriteFile(filepath.Join(bin, "pip3"), []byte("#!/bin/sh\nexec \""+bin+"/python3\" -m pip \"$@\"\n"), 0o755))
	cmd := exec.Command(filepath.Join(bin, "python3"), "-m", "pip", "install", "-q", "--no-index", "--no-deps", wheel)
	cmd.Env = append(os.Environ(), "PIP_DISABLE_PIP_VERSION_CHECK=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return bin
}

// script lays out version v's published files as upstream's launcher
// copies them (slurm_run.sh beside slurm_install.sh and bash_utils.sh) and
// returns slurm_run.sh's path.
func (fx *fixture) script(t testing.TB, ue *upstreamEnv, v config.Version) string {
	dir := filepath.Join(fx.root, "scripts")
	must.Do(t, os.MkdirAll(dir, 0o755))
	for _, src := range append([]string{v.Script}, v.Sources...) {
		data := string(must.Read(t, filepath.Join(ue.shared, src)))
		patches := upstreamPatches[src]
		if src == v.Script {
			patches = append(patches, errTrapFix)
		}
		for _, p := range patches {
			if !strings.Contains(data, p[0]) {
				t.Fatalf("%s no longer holds the text the test patches:\n%s", src, p[0])
			}
			data = strings.Replace(data, p[0], p[1], 1)
		}
		base := filepath.Base(src)
		name := base[:strings.IndexAny(base, ".")] + ".sh"
		if name == "slurm_env_setup.sh" {
			continue // sourced from the tree (fixture)
		}
		must.Do(t, os.WriteFile(filepath.Join(dir, name), []byte(data), 0o755))
	}
	return filepath.Join(dir, "slurm_run.sh")
}

// runRanks runs the case's ranks of argv on this side and waits for them.
func (fx *fixture) runRanks(t testing.TB, c diffCase, argv ...string) []*rankRun {
	ranks := c.ranks
	if ranks == nil {
		ranks = []map[string]string{{}}
	}
	var runs []*rankRun
	for i, extra := range ranks {
		env := map[string]string{}
		for k, v := range fx.env {
			env[k] = v
		}
		for k, v := range extra {
			env[k] = v
		}
		r := &rankRun{env: env}
		r.cmd, r.stdout, r.stderr = startIn(t, fx.root, env, argv...)
		exited := make(chan struct{})
		go func() {
			err := r.cmd.Wait()
			if ee, ok := err.(*exec.ExitError); ok {
				r.code = ee.ExitCode()
			} else if err != nil {
				r.code = -1
			}
			close(exited)
		}()
		runs = append(runs, r)
		defer func() { <-exited }()
		if c.gate != nil && i < len(ranks)-1 {
			deadline := time.Now().Add(time.Minute)
		wait:
			for !c.gate(fx, r) {
				select {
				case <-exited:
					break wait
				case <-time.After(20 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Errorf("%s: rank %s never reached its gate:\n%s\n%s", argv[0], env["SLURM_PROCID"], r.stdout, r.stderr)
					return runs
				}
			}
		}
	}
	return runs
}

// call is one recorded call of a stub.
type call struct {
	Prog string            `json:"prog"`
	Argv []string          `json:"argv"`
	Cwd  string            `json:"cwd"`
	Env  map[string]string `json:"env"`
	Git  string            `json:"git"`
	T    float64           `json:"t"` // when it started, Unix seconds
}

func (fx *fixture) calls(t testing.TB) []call {
	data, err := os.ReadFile(fx.env["STUB_LOG"])
	if os.IsNotExist(err) {
		return nil
	}
	must.Do(t, err)
	var out []call
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var c call
		must.Do(t, json.Unmarshal(sc.Bytes(), &c))
		out = append(out, c)
	}
	return out
}

// bashOwn are variables bash itself puts in the environments of what it
// starts: not part of slurm_run.sh's behaviour.
var bashOwn = map[string]bool{"_": true, "SHLVL": true, "OLDPWD": true}

// deliberateEnv says whether an environment entry differs by design:
// bash's own, and the git configuration slurmrun gives through
// GIT_CONFIG_* instead of writing ~/.gitconfig.
func deliberateEnv(name string) bool {
	return bashOwn[name] || strings.HasPrefix(name, "GIT_CONFIG_")
}

var lsDate = regexp.MustCompile(`\b[A-Z][a-z]{2} [ 0-9]\d (\d\d:\d\d| \d{4})\b`)

// normalise makes a side's text comparable: its tree is <ROOT>, `ls -l`'s
// dates go, and the secrets slurmrun masks are masked.
func (fx *fixture) normalise(s string) string {
	s = strings.ReplaceAll(s, fx.root, "<ROOT>")
	s = lsDate.ReplaceAllString(s, "<DATE>")
	if tok := fx.env["GITHUB_CLONE_TOKEN"]; tok != "" {
		s = strings.ReplaceAll(s, tok, "********")
	}
	return s
}

// stdoutLines normalises a rank's stdout: the `env | sort` listing (the
// lines between the library path and `Full Command:`) without the
// deliberate entries, and without slurmrun's own line naming the report.
func (fx *fixture) stdoutLines(s string) []string {
	var out []string
	inEnv := false
	ls := lines(fx.normalise(s))
	for i, l := range ls {
		switch {
		case strings.HasPrefix(l, "Report of the job's ranks, when all have finished: "):
			continue
		case i >= 2 && ls[i-2] == "Library Path:":
			inEnv = true
		case strings.HasPrefix(l, "Full Command: "):
			inEnv = false
		}
		if inEnv {
			if name, _, _ := strings.Cut(l, "="); deliberateEnv(name) {
				continue
			}
		}
		out = append(out, l)
	}
	return out
}

// files lists what is left in the tree, apart from what differs by design:
// the stubs' log, the home directory (upstream writes ~/.gitconfig),
// slurmrun's result files, and the rank barrier's markers (upstream never
// removes them).
func (fx *fixture) files(t *testing.T) []string {
	var out []string
	filepath.WalkDir(fx.root, func(p string, d fs.DirEntry, err error) error {
		must.Do(t, err)
		rel, _ := filepath.Rel(fx.root, p)
		switch {
		case rel == "home" || rel == "venv" || rel == "slurmrun" || rel == filepath.Join("workspace", "slurmrun") || rel == "calls.log":
			return filepath.SkipDir
		case strings.HasPrefix(rel, filepath.Join("workspace", "run_ready_job_")):
			return filepath.SkipDir
		}
		out = append(out, rel)
		return nil
	})
	return out
}

// compareSides compares what the two sides did and did to the fixture.
func compareSides(t *testing.T, v config.Version, c diffCase, fxUp, fxOurs *fixture, up, ours []*rankRun) {
	for i := range up {
		u, o := up[i], ours[i]
		rank := o.env["SLURM_PROCID"]
		if u.code != o.code {
			t.Errorf("rank %s: exit code upstream %d, slurmrun %d", rank, u.code, o.code)
		}
		if d := lineDiff(fxUp.stdoutLines(u.stdout.String()), fxOurs.stdoutLines(o.stdout.String())); d != "" {
			t.Errorf("rank %s: stdout differs (- upstream, + slurmrun):\n%s", rank, d)
		}
		if t.Failed() {
			t.Logf("rank %s upstream stderr:\n%s\nslurmrun stderr:\n%s", rank, tail(u.stderr.String(), 60), tail(o.stderr.String(), 40))
		}
	}
	// The stubs' calls, in order per program; sorted where several ranks
	// run at once and the order is theirs.
	upCalls, ourCalls := byProgram(fxUp, fxUp.calls(t)), byProgram(fxOurs, fxOurs.calls(t))
	for _, prog := range sortedKeys(upCalls, ourCalls) {
		if len(up) > 1 {
			sort.Strings(upCalls[prog])
			sort.Strings(ourCalls[prog])
		}
		if d := lineDiff(upCalls[prog], ourCalls[prog]); d != "" {
			t.Errorf("calls of %s differ (- upstream, + slurmrun):\n%s", prog, d)
		}
	}
	// slurmrun gives every rank safe.directory=*; upstream's ~/.gitconfig
	// has it on rank 0's home only.
	for _, cl := range fxOurs.calls(t) {
		if cl.Prog == "pytest" && !strings.Contains(cl.Git, "safe.directory *") {
			t.Errorf("pytest's git has no safe.directory=*: %q", cl.Git)
		}
	}
	if u, o := fxUp.normalise(string(must.Read(t, fxUp.env["coverageConfigFile"]))), fxOurs.normalise(string(must.Read(t, fxOurs.env["coverageConfigFile"]))); u != o {
		t.Errorf("coverage config differs:\nupstream:\n%s\nslurmrun:\n%s", u, o)
	}
	if d := lineDiff(fxUp.files(t), fxOurs.files(t)); d != "" {
		t.Errorf("files left differ (- upstream, + slurmrun):\n%s", d)
	}
	if c.install {
		if d := lineDiff(pipFreeze(t, fxUp), pipFreeze(t, fxOurs)); d != "" {
			t.Errorf("installed packages differ (- upstream, + slurmrun):\n%s", d)
		}
	}
	// What slurmrun leaves where upstream leaves more, by design.
	if _, err := os.Stat(filepath.Join(fxOurs.root, "home", ".gitconfig")); err == nil {
		t.Error("slurmrun wrote ~/.gitconfig")
	}
	if m, _ := filepath.Glob(filepath.Join(fxOurs.ws, "run_ready_job_*")); len(m) > 0 {
		t.Errorf("the rank barrier's markers were left: %v", m)
	}
	if tok := fxOurs.env["GITHUB_CLONE_TOKEN"]; tok != "" {
		for i, o := range ours {
			if strings.Contains(o.stdout.String()+o.stderr.String(), tok) {
				t.Errorf("rank %d printed the token", i)
			}
		}
		recs, _ := filepath.Glob(filepath.Join(fxOurs.ws, "slurmrun", "*"))
		for _, p := range recs {
			if bytes.Contains(must.Read(t, p), []byte(tok)) {
				t.Errorf("%s holds the token", p)
			}
		}
		if _, err := os.Stat(filepath.Join(fxUp.root, "home", ".gitconfig")); v.Has(config.InstallMain) && err != nil {
			t.Errorf("upstream wrote no ~/.gitconfig: the case does not test what it says: %v", err)
		}
	}
}

// byProgram renders each program's calls as comparable lines. nvidia-smi's
// are its distinct calls: slurmrun reads the GPU UUIDs from the `-q` it
// printed instead of running it a second time.
func byProgram(fx *fixture, calls []call) map[string][]string {
	out := map[string][]string{}
	for _, c := range calls {
		line := fmt.Sprintf("argv=%q cwd=%s", c.Argv, c.Cwd)
		if c.Prog == "pytest" {
			var env []string
			for k, v := range c.Env {
				if !deliberateEnv(k) {
					env = append(env, k+"="+v)
				}
			}
			sort.Strings(env)
			var git []string
			for _, l := range lines(c.Git) {
				if l != "" && !strings.HasPrefix(l, "safe.directory ") {
					git = append(git, l)
				}
			}
			line += fmt.Sprintf("\n  env=%q\n  git=%q", env, git)
		}
		line = fx.normalise(line)
		if c.Prog == "nvidia-smi" && slices.Contains(out[c.Prog], line) {
			continue
		}
		out[c.Prog] = append(out[c.Prog], line)
	}
	return out
}

func pipFreeze(t *testing.T, fx *fixture) []string {
	out, err := exec.Command(filepath.Join(fx.venvBin, "python3"), "-m", "pip", "list", "--local", "--format=freeze").Output()
	must.Do(t, err)
	return lines(string(out))
}

func sortedKeys(ms ...map[string][]string) []string {
	var keys []string
	for _, m := range ms {
		for k := range m {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	return keys
}

// lineDiff is "" when a and b are equal, else the lines of each that the
// other lacks at that place (a longest-common-subsequence diff).
func lineDiff(a, b []string) string {
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var d strings.Builder
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			i, j = i+1, j+1
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			fmt.Fprintf(&d, "+ %s\n", b[j])
			j++
		default:
			fmt.Fprintf(&d, "- %s\n", a[i])
			i++
		}
	}
	return d.String()
}

func tail(s string, n int) string {
	ls := lines(s)
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}
