package launch

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slurmrun/slurmrun/config"
	"github.com/slurmrun/slurmrun/internal/must"
	"github.com/slurmrun/slurmrun/result"
)

// srun keeps only its last --container-env: the user's names and launch's
// must be one option.
func TestWithContainerEnv(t *testing.T) {
	for _, tt := range []struct{ in, want []string }{
		{[]string{"--container-image=x"}, []string{"--container-image=x", "--container-env=A,B"}},
		{[]string{"--container-env=PATH", "--container-image=x"}, []string{"--container-image=x", "--container-env=PATH,A,B"}},
		{[]string{"--container-env", "PATH,HOME", "-N2"}, []string{"-N2", "--container-env=PATH,HOME,A,B"}},
	} {
		if got := withContainerEnv(tt.in, "A", "B"); strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("%q: got %q, want %q", tt.in, got, tt.want)
		}
	}
}

// Upstream writes slurm_srun_args.txt as one space-joined line; slurmrun
// reads it as the shell would, and a file of several lines one per line.
func TestReadSrunArgsFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content string
		want          []string
		bad           bool
	}{
		{"upstream one line", `--container-image=nvcr.io/x:1 --container-mounts=/a:/b,/c:/d "--container-env=A,B" --mpi=pmix '--comment=two words'` + "\n",
			[]string{"--container-image=nvcr.io/x:1", "--container-mounts=/a:/b,/c:/d", "--container-env=A,B", "--mpi=pmix", "--comment=two words"}, false},
		{"escaped space", `--comment=a\ b -N2`, []string{"--comment=a b", "-N2"}, false},
		{"one per line", "--comment=two words\n\n--mpi=pmix\n", []string{"--comment=two words", "--mpi=pmix"}, false},
		{"an expansion", `--container-image=$IMAGE`, nil, true},
		{"a substitution", `--comment=$(id)`, nil, true},
		{"a pipe", `-N2 | tee x`, nil, true},
	}
	for _, tt := range tests {
		path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_"))
		must.Do(t, os.WriteFile(path, []byte(tt.content), 0o644))
		got, err := ReadSrunArgsFile(path)
		if (err != nil) != tt.bad || !tt.bad && strings.Join(got, "\x00") != strings.Join(tt.want, "\x00") {
			t.Errorf("%s: got %q %v, want %q", tt.name, got, err, tt.want)
		}
	}
}

func testLauncher(cfg config.Launch, srunArgs ...string) *Launcher {
	cfg.JobWorkspace = "/ws"
	cfg.Binary = "/bin/slurmrun"
	return NewLauncher(&cfg, srunArgs, nil, nil, nil, nil)
}

// Plan places the roles as slurm_launch_draft.sh does: GEN servers on the
// first nodes, CTX after them, DISAGG_SERVER and BENCHMARK overlapping on
// the first node; each srun kills the step on a bad exit.
func TestPlan(t *testing.T) {
	base := config.Launch{NumGenServers: 1, NumCtxServers: 1, GpusPerNode: 4, GpusPerGenServer: 8, GpusPerCtxServer: 2,
		NodesPerGenServer: 2, NodesPerCtxServer: 1, TotalNodes: 3, WorkerCommand: "w", ServerCommand: "s", BenchmarkCommand: "b", Install: true}
	nodes := []string{"n1", "n2", "n3"}
	install, roles, err := testLauncher(base).Plan(nodes)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"INSTALL [n1 n2 n3] srun --job-name=INSTALL --kill-on-bad-exit=1 -N 3 --ntasks-per-node=1 /bin/slurmrun install",
		"GEN_0 [n1 n2] srun --job-name=GEN_0 --kill-on-bad-exit=1 -N 2 -w n1,n2 --ntasks=8 --ntasks-per-node=4 /bin/slurmrun run",
		"CTX_0 [n3] srun --job-name=CTX_0 --kill-on-bad-exit=1 -N 1 -w n3 --ntasks=2 --ntasks-per-node=2 /bin/slurmrun run",
		"DISAGG_SERVER [n1] srun --job-name=DISAGG_SERVER --kill-on-bad-exit=1 --overlap -N 1 -w n1 --ntasks=1 --ntasks-per-node=1 /bin/slurmrun run",
		"BENCHMARK [n1] srun --job-name=BENCHMARK --kill-on-bad-exit=1 --overlap -N 1 -w n1 --ntasks=1 --ntasks-per-node=1 /bin/slurmrun run",
	}
	var got []string
	for _, st := range append([]*RoleStep{install}, roles...) {
		got = append(got, fmt.Sprintf("%s %v %s", st.Role, st.Nodes, strings.Join(st.Argv, " ")))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if env := strings.Join(roles[1].Env, " "); env != "DISAGG_SERVING_TYPE=CTX_0 pytestCommand=w" {
		t.Errorf("CTX_0 env: %s", env)
	}

	t.Run("newer submit.py commands win; no install; gen only", func(t *testing.T) {
		c := base
		c.GenWorkerCommand, c.CtxWorkerCommand, c.Install, c.GenOnly = "g", "c", false, true
		install, roles, err := testLauncher(c).Plan(nodes)
		if err != nil || install != nil || len(roles) != 3 || roles[0].Env[1] != "pytestCommand=g" {
			t.Fatalf("%v %v %v", install, roles, err)
		}
	})
	t.Run("too few nodes", func(t *testing.T) {
		_, _, err := testLauncher(base).Plan(nodes[:2])
		if err == nil || !strings.Contains(err.Error(), "the allocation has 2 nodes") {
			t.Fatalf("%v", err)
		}
	})
	t.Run("a container step gets the role's variables from the job", func(t *testing.T) {
		_, roles, err := testLauncher(base, "--container-image=img", "--container-env=HOME").Plan(nodes)
		if err != nil {
			t.Fatal(err)
		}
		if argv := strings.Join(roles[0].Argv, " "); !strings.Contains(argv, "--container-image=img --container-env=HOME,DISAGG_SERVING_TYPE,pytestCommand --job-name=GEN_0") {
			t.Errorf("argv: %s", argv)
		}
	})
}

// What a dry run prints, a shell splits back into the same words.
func TestShellQuote(t *testing.T) {
	for _, argv := range [][]string{
		{"srun", "-N", "2", "--comment=two words"},
		{"pytestCommand=export A=1 && pytest \"x y\" $A 'z'", ""},
		{"it's", `back\slash`, "tab\there", "new\nline", "*", "~", "a;b", "$(id)"},
	} {
		q := shellQuote(argv)
		words, err := SplitWords(q)
		if err != nil || strings.Join(words, "\x00") != strings.Join(argv, "\x00") {
			t.Errorf("%q quoted as %s, split back as %q (%v)", argv, q, words, err)
		}
	}
	if q := shellQuote([]string{"plain-word_1.2/x:y@z%+,="}); q != "plain-word_1.2/x:y@z%+,=" {
		t.Errorf("a plain word was quoted: %s", q)
	}
}

func TestDefaultBinary(t *testing.T) {
	if b := defaultBinary([]string{"--container-image=x"}); b != ImageBinary {
		t.Errorf("container step: %s", b)
	}
	if b := defaultBinary([]string{"--container-name=x"}); b != ImageBinary {
		t.Errorf("named container step: %s", b)
	}
	if b := defaultBinary([]string{"-N2"}); b == ImageBinary || !filepath.IsAbs(b) {
		t.Errorf("host step: %s", b)
	}
}

// The failure a step reports is its first failing rank's own code, not a
// rank --kill-on-bad-exit stopped, nor srun's code when a record says more.
func TestFailure(t *testing.T) {
	t0 := time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)
	rank := func(n, final int, signal string, ms float64) *result.Rank {
		return &result.Rank{Rank: n, Final: final, Signal: signal, Started: t0,
			Steps: []*result.Step{{Name: "pytest", Start: t0, DurationMS: ms}}}
	}
	for _, tt := range []struct {
		ranks []*result.Rank
		what  string
		code  int
	}{
		{nil, "GEN_0 failed with exit code 143", 143},
		{[]*result.Rank{rank(0, 143, "terminated", 10), rank(1, 3, "", 20)}, "GEN_0 rank 1 exited 3", 3},
		{[]*result.Rank{rank(0, 4, "", 30), rank(1, 3, "", 20)}, "GEN_0 rank 1 exited 3", 3},
		{[]*result.Rank{rank(1, 4, "", 20), rank(0, 3, "", 20)}, "GEN_0 rank 0 exited 3", 3},
		{[]*result.Rank{rank(0, 0, "", 20)}, "GEN_0 failed with exit code 143", 143},
	} {
		if what, code := failure("GEN_0", 143, tt.ranks); what != tt.what || code != tt.code {
			t.Errorf("%q %d, want %q %d", what, code, tt.what, tt.code)
		}
	}
}
