package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slurmrun/slurmrun/internal/must"
	"github.com/slurmrun/slurmrun/result"
)

// hookTree is a fixture tree with SLURMRUN_HOOKS holding scripts by phase.
func hookTree(t *testing.T, hooks map[string]string) (*tree, string) {
	t.Helper()
	tr := newTree(t)
	dir := filepath.Join(tr.dir, "hooks")
	for name, body := range hooks {
		path := filepath.Join(dir, name)
		must.Do(t, os.MkdirAll(filepath.Dir(path), 0o755))
		must.Do(t, os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755))
	}
	tr.env["SLURMRUN_HOOKS"] = dir
	tr.env["perfMode"] = "false"
	return tr, dir
}

func stepOutcomes(res result.Rank) map[string]string {
	out := map[string]string{}
	for _, st := range res.Steps {
		out[st.Name] = st.Outcome
	}
	return out
}

// Pre hooks run in name order before pytest; what they export reaches
// pytest verbatim, shell metacharacters and all; a watcher a pre hook
// leaves running is swept after the post hooks; each hook is a step.
func TestHooks(t *testing.T) {
	weird := `$(touch /tmp/slurmrun-hook-evaluated) ; rm -rf nothing && "q" 'x' \n *`
	tr, dir := hookTree(t, map[string]string{
		"pre-pytest.d/20-watch": `(trap 'date +%s.%N > "$DIED"; exit 0' TERM; while :; do sleep 0.05; done) &
echo $! > "$WATCHER_PID"
echo "export WATCH_PID_FILE=$WATCHER_PID"
echo "watcher started"
echo 20 >> "$ORDER"
`,
		"pre-pytest.d/10-env": `echo 10 >> "$ORDER"
cat <<'X'
export WEIRD=` + weird + `
export 1BAD=no
X
`,
		"pre-pytest.d/.hidden":    "exit 9\n",
		"pre-pytest.d/30-notexec": "exit 9\n",
		"post-pytest.d/10-stop":   `echo "post: pytest exited $SLURMRUN_PYTEST_EXIT_CODE, watcher $(cat "$WATCH_PID_FILE")" >> "$ORDER"` + "\n",
	})
	must.Do(t, os.Chmod(filepath.Join(dir, "pre-pytest.d", "30-notexec"), 0o644))
	out := filepath.Join(tr.dir, "env.txt")
	tr.env["ENV_OUT"] = out
	tr.env["ORDER"] = filepath.Join(tr.dir, "order")
	tr.env["WATCHER_PID"] = filepath.Join(tr.dir, "watcher.pid")
	tr.env["DIED"] = filepath.Join(tr.dir, "watcher.died")
	tr.env["pytestCommand"] = tr.pytest("test_cases.py::test_env")
	os.Remove("/tmp/slurmrun-hook-evaluated")
	r := runBin(t, tr.env, "run")
	if r.code != 0 {
		t.Fatalf("exit code %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	env := "\n" + string(must.Read(t, out)) + "\n"
	if !strings.Contains(env, "\nWEIRD="+weird+"\n") || strings.Contains(env, "\n1BAD=") {
		t.Errorf("pytest's environment:\n%s", env)
	}
	if _, err := os.Stat("/tmp/slurmrun-hook-evaluated"); err == nil {
		os.Remove("/tmp/slurmrun-hook-evaluated")
		t.Error("an exported value was evaluated")
	}
	watcher, err := strconv.Atoi(strings.TrimSpace(string(must.Read(t, tr.env["WATCHER_PID"]))))
	must.Do(t, err)
	order := string(must.Read(t, tr.env["ORDER"]))
	if want := "10\n20\npost: pytest exited 0, watcher " + strconv.Itoa(watcher) + "\n"; order != want {
		t.Errorf("hooks ran as\n%s\nwant\n%s", order, want)
	}
	if alive(watcher) {
		syscall.Kill(watcher, syscall.SIGKILL)
		t.Errorf("the watcher %d was left running", watcher)
	}
	// The sweep, not slurmrun's exit, ended the watcher: it got its SIGTERM
	// after the post hook had read its pid file, within the sweep step.
	died, err := strconv.ParseFloat(strings.TrimSpace(string(must.Read(t, tr.env["DIED"]))), 64)
	must.Do(t, err)
	res := resultOf(t, tr.ws, 0)
	var sweepStart, sweepEnd float64
	for _, st := range res.Steps {
		if st.Name == "hook-sweep" {
			sweepStart, sweepEnd = float64(st.Start.UnixNano())/1e9, float64(st.End().UnixNano())/1e9
		}
	}
	if died < sweepStart || died > sweepEnd+0.01 {
		t.Errorf("the watcher ended at %.3f, the sweep ran %.3f-%.3f", died, sweepStart, sweepEnd)
	}
	mustContainInOrder(t, r.stdout, "watcher started", "Rank0 Pytest finished execution with exit code 0",
		"Rank0 Final Slurm run finished execution with exit code 0")
	got := stepOutcomes(res)
	for name, want := range map[string]string{"pre-pytest:10-env": "ok", "pre-pytest:20-watch": "ok",
		"post-pytest:10-stop": "ok", "hook-sweep": "ok"} {
		if got[name] != want {
			t.Errorf("step %s: %q, want %q (%v)", name, got[name], want, got)
		}
	}
	for _, name := range []string{"pre-pytest:.hidden", "pre-pytest:30-notexec"} {
		if _, ran := got[name]; ran {
			t.Errorf("%s ran", name)
		}
	}
}

// A failing pre hook fails the run like a failing setup step: pytest does
// not run and the hook's code is the rank's. A failing post hook is
// recorded and leaves pytest's code alone.
func TestFailingHooks(t *testing.T) {
	t.Run("pre", func(t *testing.T) {
		tr, _ := hookTree(t, map[string]string{"pre-pytest.d/10-broken": "sleep 300 &\necho no GPU >&2\nexit 7\n"})
		r := runBin(t, tr.env, "run")
		if r.code != 7 || strings.Contains(r.stdout, "Pytest finished") ||
			!strings.Contains(r.stdout, "Rank0 Final Slurm run finished execution with exit code 7") {
			t.Fatalf("exit code %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		res := resultOf(t, tr.ws, 0)
		got := stepOutcomes(res)
		if res.FailedStep != "pre-pytest:10-broken" || got["pytest"] != "skipped" || got["hook-sweep"] != "ok" {
			t.Errorf("record: failed step %q, steps %v", res.FailedStep, got)
		}
	})
	t.Run("post", func(t *testing.T) {
		tr, _ := hookTree(t, map[string]string{"post-pytest.d/10-broken": "exit 5\n"})
		r := runBin(t, tr.env, "run")
		if r.code != 0 {
			t.Fatalf("exit code %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		res := resultOf(t, tr.ws, 0)
		if got := stepOutcomes(res); got["post-pytest:10-broken"] != "failed" || res.Final != 0 || res.FailedStep != "" {
			t.Errorf("record: final %d, failed step %q, steps %v", res.Final, res.FailedStep, got)
		}
	})
}

// The README's example hooks, as written there, on a real run.
func TestReadmeHookExample(t *testing.T) {
	readme := string(must.Read(t, "../../README.md"))
	hooks := map[string]string{}
	for _, block := range strings.Split(readme, "```sh\n")[1:] {
		body, _, _ := strings.Cut(block, "```")
		first, rest, _ := strings.Cut(body, "\n")
		if name, ok := strings.CutPrefix(first, "# $SLURMRUN_HOOKS/"); ok {
			hooks[name] = strings.TrimPrefix(rest, "#!/bin/sh\n")
		}
	}
	if len(hooks) != 2 {
		t.Fatalf("the README's example hooks: %v", hooks)
	}
	tr, _ := hookTree(t, hooks)
	t.Cleanup(func() {
		os.Remove("/tmp/shm-watch.0.pid")
		os.Remove("/tmp/shm-watch.0.log")
	})
	out := filepath.Join(tr.dir, "env.txt")
	tr.env["ENV_OUT"] = out
	tr.env["SLURM_PROCID"] = "0"
	tr.env["pytestCommand"] = tr.pytest("test_cases.py::test_env")
	r := runBin(t, tr.env, "run")
	if r.code != 0 {
		t.Fatalf("exit code %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if env := string(must.Read(t, out)); !strings.Contains(env, "\nSHM_WATCH_LOG=/tmp/shm-watch.0.log") {
		t.Errorf("pytest did not get SHM_WATCH_LOG:\n%s", env)
	}
	if !strings.Contains(r.stdout, "pytest exited 0; /dev/shm over time: ") {
		t.Errorf("the post hook's line is missing:\n%s", r.stdout)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(must.Read(t, "/tmp/shm-watch.0.pid"))))
	must.Do(t, err)
	if alive(pid) {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Errorf("the example's watcher %d is still running", pid)
	}
}

// A cancel while pytest ignores SIGTERM and a pre hook's watcher does too:
// pytest is killed at the end of the grace, and the sweep after the post
// hooks takes only what is left of that grace, not a second one, so the
// rank ends within Slurm's KillWait.
func TestHookSweepAfterCancelTakesWhatIsLeftOfTheGrace(t *testing.T) {
	tr, _ := hookTree(t, map[string]string{
		"pre-pytest.d/10-watch": `(trap '' TERM; while :; do sleep 0.05; done) &
echo $! > "$WATCHER_PID"
`,
	})
	const grace = 2 * time.Second
	mark, watcher := filepath.Join(tr.dir, "mark"), filepath.Join(tr.dir, "watcher.pid")
	tr.env["SLURMRUN_GRACE"], tr.env["SLEEP_MARK"], tr.env["WATCHER_PID"] = grace.String(), mark, watcher
	tr.env["pytestCommand"] = `python3 -c "import os, pathlib, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); pathlib.Path(os.environ['SLEEP_MARK']).write_text('x'); time.sleep(60)" --trtllm-wheel=__PLACEHOLDER_TRTLLM_WHL_PATH__`
	cmd, stdout, stderr := start(t, tr.env, "run")
	if !waitFile(mark, 30*time.Second) {
		t.Fatal("pytest never started")
	}
	sent := time.Now()
	must.Do(t, cmd.Process.Signal(syscall.SIGTERM))
	r := wait(t, cmd, stdout, stderr)
	took := time.Since(sent)
	if r.code != 143 {
		t.Fatalf("exit code %d, want 143\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if took > grace+time.Second {
		t.Errorf("the rank took %s after SIGTERM, past its grace of %s (the sweep waited a second grace)", took.Round(time.Millisecond), grace)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(must.Read(t, watcher))))
	must.Do(t, err)
	if alive(pid) {
		t.Errorf("the watcher %d is still running", pid)
	}
}
