package main

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slurmrun/slurmrun/container"
	"github.com/slurmrun/slurmrun/embed"
	"github.com/slurmrun/slurmrun/entrypoint"
	"github.com/slurmrun/slurmrun/result"

	"github.com/slurmrun/slurmrun/internal/must"
)

// The integration tests run the built binary as a real process against a
// fixture tree, with a real tensorrt_llm wheel pip-installed into a venv,
// Debian's real pytest, and real git.
var (
	binary  string // bin/slurmrun built for the tests
	venvBin string // <venv>/bin, first on PATH: its python3 has pytest and the wheel
	siteDir string // where pip installed the wheel
	wheel   string // the wheel file
	// fixtureErr says why there is no venv: the tests that run the flow skip.
	fixtureErr error
)

func TestMain(m *testing.M) {
	container.DispatchSigExec()
	// Run under nohup or `cmd &`, this binary has HUP, INT or QUIT ignored,
	// and its children would inherit that. Catching them (and doing
	// nothing) keeps this binary as it was started while the binaries the
	// tests start get the default actions, as from a terminal; the tests
	// that need another state set it themselves.
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT} {
		if container.Inherited().Ignores(sig) {
			signal.Notify(make(chan os.Signal, 1), sig)
		}
	}
	os.Exit(func() int {
		if os.Getenv("SLURMRUN_TEST_NO_FIXTURE") != "" {
			return m.Run()
		}
		tmp, err := os.MkdirTemp("", "slurmrun-it-")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(tmp)
		if err := setup(tmp); err != nil {
			fmt.Fprintln(os.Stderr, "integration fixture:", err)
			return 1
		}
		if fixtureErr != nil {
			fmt.Fprintf(os.Stderr, "integration fixture: %v: the tests that run the flow skip (make deps installs what it needs)\n", fixtureErr)
		}
		return m.Run()
	}())
}

func setup(tmp string) error {
	binary = filepath.Join(tmp, "slurmrun")
	// The same tag and flags as `make build` (see container/sigstate.go).
	build := exec.Command("go", "build", "-tags", "slurmrun_fwdsig", "-ldflags=-checklinkname=0", "-o", binary, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	fixtureErr = pythonFixture(tmp)
	return nil
}

// pythonFixture pip-installs a real wheel into a venv that sees Debian's
// pytest; without python3-venv or pytest it says why.
func pythonFixture(tmp string) error {
	var err error
	if wheel, err = buildWheel(tmp, "0.0.0"); err != nil {
		return err
	}
	venv := filepath.Join(tmp, "venv")
	if err := newVenv(venv, wheel); err != nil {
		return err
	}
	venvBin = filepath.Join(venv, "bin")
	out, err := exec.Command(filepath.Join(venvBin, "python3"), "-c",
		"import pytest, tensorrt_llm, os; print(os.path.dirname(os.path.dirname(tensorrt_llm.__file__)))").Output()
	if err != nil {
		return fmt.Errorf("venv python with pytest and the wheel: %w", err)
	}
	siteDir = strings.TrimSpace(string(out))
	return nil
}

// needFixture skips a test that runs the flow when there is no Python
// fixture, and says why.
func needFixture(t testing.TB) {
	t.Helper()
	if fixtureErr != nil {
		t.Skipf("no Python fixture: %v (make deps installs python3-venv and python3-pytest)", fixtureErr)
	}
}

// newVenv makes a venv that sees Debian's pytest and pip-installs wheel into it.
func newVenv(dir, wheel string) error {
	for _, argv := range [][]string{
		{"/usr/bin/python3", "-m", "venv", "--system-site-packages", dir},
		{filepath.Join(dir, "bin", "python3"), "-m", "pip", "install", "-q", "--no-index", "--no-deps", wheel},
	} {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), "PIP_DISABLE_PIP_VERSION_CHECK=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, out)
		}
	}
	return nil
}

// buildWheel writes a real wheel of the demo's tensorrt_llm package.
func buildWheel(dir, version string) (string, error) {
	tree := embed.DemoTree()
	files := map[string][]byte{}
	err := fs.WalkDir(tree, "site/tensorrt_llm", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(tree, p)
		files[strings.TrimPrefix(p, "site/")] = data
		return err
	})
	if err != nil {
		return "", err
	}
	return writeWheel(dir, "tensorrt_llm", version, files)
}

// writeWheel writes a pure-Python wheel of files as distribution name.
func writeWheel(dir, name, version string, files map[string][]byte) (string, error) {
	info := name + "-" + version + ".dist-info/"
	files[info+"METADATA"] = []byte("Metadata-Version: 2.1\nName: " + name + "\nVersion: " + version + "\n")
	files[info+"WHEEL"] = []byte("Wheel-Version: 1.0\nGenerator: slurmrun-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
	files[info+"top_level.txt"] = []byte(name + "\n")
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var record strings.Builder
	for _, n := range names {
		sum := sha256.Sum256(files[n])
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", n, base64.RawURLEncoding.EncodeToString(sum[:]), len(files[n]))
	}
	record.WriteString(info + "RECORD,,\n")
	files[info+"RECORD"] = []byte(record.String())
	names = append(names, info+"RECORD")

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range names {
		w, err := zw.Create(n)
		if err != nil {
			return "", err
		}
		w.Write(files[n])
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	path := filepath.Join(dir, name+"-"+version+"-py3-none-any.whl")
	return path, os.WriteFile(path, buf.Bytes(), 0o644)
}

// extraTests are the fixture's test cases beside the demo's tests.
const extraTests = `import os, pathlib, signal, subprocess, sys, time

def test_fail():
    assert False, "a failing test"

def test_kill_self():
    os.kill(os.getpid(), signal.SIGKILL)

def test_sleep():
    pathlib.Path(os.environ["SLEEP_MARK"]).write_text(str(os.getpid()))
    time.sleep(60)

def test_env(request):
    pathlib.Path(os.environ["ENV_OUT"]).write_text("\n".join(sorted(k + "=" + v for k, v in os.environ.items())))

def test_git_trusts_repositories_of_other_users(tmp_path):
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    os.chown(repo, 65534, 65534)
    os.chown(repo / ".git", 65534, 65534)
    out = subprocess.run(["git", "-C", str(repo), "status", "--short"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
`

// tree is one test's copy of the fixture.
type tree struct {
	dir, defs, ws string
	env           map[string]string
}

const stage = "A100-PyTorch-Disagg-Post-Merge-1"

func newTree(t testing.TB) *tree {
	t.Helper()
	needFixture(t)
	dir := t.TempDir()
	if err := embed.Unpack(dir); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(dir, "site")) // the venv holds the real install
	tr := &tree{dir: dir, defs: filepath.Join(dir, "TensorRT-LLM", "src", "tests", "integration", "defs"),
		ws: filepath.Join(dir, "workspace")}
	must.Do(t, os.WriteFile(filepath.Join(tr.defs, "test_cases.py"), []byte(extraTests), 0o644))
	home := filepath.Join(dir, "home")
	must.Do(t, os.Mkdir(home, 0o755))
	tr.env = map[string]string{
		"PATH":                venvBin + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME":                home,
		"LANG":                "C.UTF-8",
		"resourcePathNode":    dir,
		"stageName":           stage,
		"perfMode":            "true",
		"jobWorkspace":        tr.ws,
		"coverageConfigFile":  filepath.Join(tr.ws, ".coveragerc"),
		"SLURM_PROCID":        "0",
		"SLURM_JOB_NUM_NODES": "1",
		"SLURM_JOB_ID":        "4242",
		"pytestCommand":       tr.pytest("test_demo.py"),
	}
	return tr
}

// pytest is a realistic pytestCommand selecting tests.
func (tr *tree) pytest(selection ...string) string {
	return strings.Join(append([]string{"LLM_ROOT=" + filepath.Join(tr.dir, "TensorRT-LLM", "src"), "COLUMNS=120",
		"python3", "-m", "pytest", "-v", "--rootdir", tr.defs, "--test-prefix=" + stage,
		"--trtllm-wheel=" + entrypoint.WheelPlaceholder + "/tensorrt_llm/",
		"--coverage-config=" + filepath.Join(tr.ws, ".coveragerc")}, selection...), " ")
}

// syncBuffer is a buffer the test may read while the process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type ran struct {
	stdout, stderr string
	code           int
}

// start runs the binary with env in its own process group, bounded by a
// timeout after which the whole group is killed.
func start(t testing.TB, env map[string]string, args ...string) (*exec.Cmd, *syncBuffer, *syncBuffer) {
	t.Helper()
	return startIn(t, "", env, append([]string{binary}, args...)...)
}

// startIn is start for any command, in dir ("": the test's).
func startIn(t testing.TB, dir string, env map[string]string, argv ...string) (*exec.Cmd, *syncBuffer, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	// The tests read the output while the process writes it.
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A process left holding the output pipes cannot hang the test.
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(2*time.Minute, func() { killTree(cmd.Process.Pid) })
	t.Cleanup(func() {
		timer.Stop()
		killTree(cmd.Process.Pid)
	})
	return cmd, &stdout, &stderr
}

// killTree kills pid's group and every process below pid: slurmrun starts
// its commands in groups of their own.
func killTree(pid int) {
	below := container.Descendants(pid)
	syscall.Kill(-pid, syscall.SIGKILL)
	for _, p := range below {
		syscall.Kill(p, syscall.SIGKILL)
	}
}

func wait(t testing.TB, cmd *exec.Cmd, stdout, stderr *syncBuffer) ran {
	t.Helper()
	err := cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return ran{stdout.String(), stderr.String(), code}
}

func runBin(t testing.TB, env map[string]string, args ...string) ran {
	t.Helper()
	cmd, o, e := start(t, env, args...)
	return wait(t, cmd, o, e)
}

// readResult reads the rank's result file from the job workspace.
func resultOf(t testing.TB, ws string, rank int) result.Rank {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(ws, "slurmrun", fmt.Sprintf("result.job*.rank%d.json", rank)))
	if len(matches) != 1 {
		t.Fatalf("want one result file for rank %d, found %q", rank, matches)
	}
	r, err := result.Read(matches[0])
	if err != nil {
		t.Fatal(err)
	}
	return *r
}

func lines(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") }

// mustContainInOrder checks that each want line appears in order, as a
// whole line or at the end of one: a child killed by a signal can leave
// its last line unterminated, and the Rank lines then follow on it.
func mustContainInOrder(t testing.TB, out string, want ...string) {
	t.Helper()
	ls := lines(out)
	i := 0
	for _, w := range want {
		for i < len(ls) && !strings.HasSuffix(ls[i], w) {
			i++
		}
		if i == len(ls) {
			t.Fatalf("line %q missing or out of order in:\n%s", w, out)
		}
		i++
	}
}

func execOutput(argv ...string) (string, error) {
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	return string(out), err
}

// asLocalRank copies env for another rank on the same node.
func asLocalRank(env map[string]string, rank int) map[string]string {
	out := make(map[string]string, len(env))
	for k, v := range env {
		out[k] = v
	}
	out["SLURM_PROCID"], out["SLURM_LOCALID"] = fmt.Sprint(rank), fmt.Sprint(rank)
	return out
}
