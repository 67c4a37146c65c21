package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slurmrun/slurmrun/container"
	"github.com/slurmrun/slurmrun/result"

	"github.com/slurmrun/slurmrun/internal/must"
)

// SIGTERM at any step of run, as Slurm's cancel sends it: exit code 143, the
// Rank lines, the record with the signal, all within the grace period and a
// second, and nothing left running.
func TestSigtermAtEachStep(t *testing.T) {
	// A download that never ends: the server accepts and says nothing.
	hang := make(chan struct{})
	requested := make(chan struct{}, 16) // a download has begun
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case requested <- struct{}{}:
		default:
		}
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(hang)

	const grace = 2 * time.Second
	cases := []struct {
		step  string
		env   func(t *testing.T) map[string]string
		ready func(out string) bool
	}{
		{"install download", func(t *testing.T) map[string]string {
			return installEnv(t, srv.URL+"/llm.tar.gz")
		}, func(string) bool {
			select {
			case <-requested:
				return true
			default:
				return false
			}
		}},
		{"install lock wait", func(t *testing.T) map[string]string {
			env := installEnv(t, srv.URL+"/llm.tar.gz")
			env["SLURM_LOCALID"], env["SLURM_PROCID"] = "1", "1"
			return env
		}, func(out string) bool { return strings.Contains(out, "Waiting for install lock") }},
		{"coverage wait", func(t *testing.T) map[string]string {
			tr := newTree(t)
			tr.env["SLURM_PROCID"] = "1"
			return tr.env
		}, func(out string) bool { return strings.Contains(out, "TRTLLM WHEEL PATH") }},
		{"pytest", func(t *testing.T) map[string]string {
			tr := newTree(t)
			tr.env["SLEEP_MARK"] = filepath.Join(tr.dir, "sleeping")
			tr.env["pytestCommand"] = tr.pytest("test_cases.py::test_sleep")
			return tr.env
		}, func(out string) bool { return strings.Contains(out, "test_sleep") }},
		{"perf tail", func(t *testing.T) map[string]string {
			tr := newTree(t)
			// The perf check hangs: a sitecustomize that sleeps in it alone.
			site := filepath.Join(tr.dir, "slowperf")
			must.Do(t, os.Mkdir(site, 0o755))
			os.WriteFile(filepath.Join(site, "sitecustomize.py"), []byte("import sys, time\n"+
				"if sys.argv and sys.argv[0].endswith('sanity_perf_check.py'):\n"+
				"    print('perf check hangs', flush=True)\n    time.sleep(60)\n"), 0o644)
			tr.env["PYTHONPATH"] = site
			return tr.env
		}, func(out string) bool { return strings.Contains(out, "perf check hangs") }},
		// Killed at the end of the grace, once: not a second grace for the
		// sweep after it.
		{"pytest ignoring SIGTERM", func(t *testing.T) map[string]string {
			tr := newTree(t)
			tr.env["DISAGG_SERVING_TYPE"] = "GEN_0"
			tr.env["pytestCommand"] = `sh -c "trap '' TERM; echo ignoring; sleep 60 & wait; sleep 60"`
			return tr.env
		}, func(out string) bool { return strings.Contains(out, "ignoring") }},
	}
	for _, c := range cases {
		t.Run(c.step, func(t *testing.T) {
			env := c.env(t)
			env["SLURMRUN_GRACE"] = grace.String()
			ws := env["jobWorkspace"]
			cmd, o, e := start(t, env, "run")
			deadline := time.Now().Add(30 * time.Second)
			for !c.ready(o.String()) {
				if time.Now().After(deadline) {
					t.Fatalf("never reached the step:\n%s\n%s", o, e)
				}
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(300 * time.Millisecond)
			below := append([]int{cmd.Process.Pid}, container.Descendants(cmd.Process.Pid)...)
			begin := time.Now()
			cmd.Process.Signal(syscall.SIGTERM)
			r := wait(t, cmd, o, e)
			took := time.Since(begin)
			if r.code != 143 {
				t.Fatalf("exit code %d\n%s\n%s", r.code, r.stdout, r.stderr)
			}
			if strings.Contains(c.step, "ignoring") && took < grace {
				t.Errorf("killed after %v, before the grace %v", took, grace)
			}
			if took > grace+time.Second {
				t.Errorf("took %v after SIGTERM, more than the grace %v and a second", took, grace)
			}
			if !strings.Contains(r.stdout, "Final Slurm run finished execution with exit code 143") {
				t.Errorf("no final Rank line:\n%s", r.stdout)
			}
			res := resultOf(t, ws, rankOf(env))
			if res.Signal != "terminated" || res.Final != 143 {
				t.Errorf("record: signal %q, final %d", res.Signal, res.Final)
			}
			// The step that ran is cancelled with its code, and so is every
			// step after it, without one; none failed.
			var outcomes []string
			running := -1
			for i, st := range res.Steps {
				outcomes = append(outcomes, st.Name+"="+st.Outcome)
				if st.Outcome == result.Cancelled && st.ExitCode != nil && running < 0 {
					running = i
				}
			}
			for i, st := range res.Steps {
				if running < 0 || i > running && (st.Outcome != result.Cancelled || st.ExitCode != nil) || st.Outcome == result.Failed {
					t.Errorf("record's outcomes: %v", outcomes)
					break
				}
			}
			for _, pid := range below {
				if alive(pid) {
					t.Errorf("process %d left running", pid)
				}
			}
			t.Logf("%s: exit code 143 %v after SIGTERM (grace %v)", c.step, took.Round(time.Millisecond), grace)
		})
	}
}

func rankOf(env map[string]string) int {
	if env["SLURM_PROCID"] == "1" {
		return 1
	}
	return 0
}
