package entrypoint

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"

	"github.com/slurmrun/slurmrun/internal/must"
)

// argvs expands each simple command of c the way the interpreter would.
func argvs(t testing.TB, c *Command, env ...string) [][]string {
	t.Helper()
	var out [][]string
	cfg := &expand.Config{Env: expand.ListEnviron(env...), NoUnset: true}
	var err error
	syntax.Walk(c.file, func(n syntax.Node) bool {
		if call, ok := n.(*syntax.CallExpr); ok && err == nil {
			var fields []string
			fields, err = expand.Fields(cfg, call.Args...)
			out = append(out, fields)
			return false
		}
		return true
	})
	if err != nil {
		t.Fatalf("expand %q: %v", c.Text, err)
	}
	return out
}

func TestParseCommandAcceptsTheRealGrammar(t *testing.T) {
	for _, text := range []string{
		`LLM_ROOT=/tmp/TensorRT-LLM/src COLUMNS=300 __LUNOWUD=-thread_pool_size=12 pytest -vv --timeout=3600 --rootdir /defs --cov=__PLACEHOLDER_TRTLLM_WHL_PATH__/tensorrt_llm/`,
		`unset UCX_TLS && TLLM_LOG_LEVEL=INFO ENROOT_ALLOW_DEV=yes /src/tensorrt_llm/llmapi/trtllm-llmapi-launch pytest -v`,
		`unset UCX_TLS UCX_NET_DEVICES && FLASHINFER_JIT_DIR=/tmp/flashinfer_jit_cache_${SLURM_LOCALID} HF_HOME=/tmp/hf_home pytest`,
		`export UCX_TLS=cuda_copy,cuda_ipc,sm,self,tcp && PYTHONPATH=/x:${PYTHONPATH:-} pytest --unittest-markexpr='not cpu_only'`,
		` LLM_ROOT=/src  pytest  -k "a and b"`,
	} {
		if _, err := ParseCommand(text); err != nil {
			t.Errorf("refused %q: %v", text, err)
		}
	}
}

func TestParseCommandRefuses(t *testing.T) {
	tests := []struct{ text, want string }{
		{`pytest $(id)`, "command substitution $(...)"},
		{"pytest `id`", "command substitution (backticks)"},
		{`pytest <(id)`, "process substitution"},
		{`pytest > out.txt`, "redirection"},
		{`pytest 2>&1`, "redirection"},
		{`pytest | tee log`, "pipe (|)"},
		{`pytest &`, "background job"},
		{`eval pytest`, "builtin eval"},
		{`source env.sh && pytest`, "builtin source"},
		{`(cd x && pytest)`, "*syntax.Subshell"},
		{`if true; then pytest; fi`, "*syntax.IfClause"},
		{`pytest $((1+2))`, "arithmetic expansion"},
		{`pytest ${X/a/b}`, "parameter expansion other than"},
		{`declare -x A=1 && pytest`, "builtin declare"},
		{`f() { pytest; }; f`, "*syntax.FuncDecl"},
		{`pytest "unterminated`, "reached EOF"},
		{`   `, "empty"},
	}
	for _, tt := range tests {
		_, err := ParseCommand(tt.text)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseCommand(%q) = %v, want an error containing %q", tt.text, err, tt.want)
		}
	}
}

// hostile are wheel locations that must reach the command verbatim.
var hostile = []string{
	"/usr/local/lib/python3.12/dist-packages",
	"/opt/with space/site-packages",
	`/opt/quo"te's/site`,
	"/opt/$(touch pwned)/site",
	"/opt/`touch pwned`/site",
	"/opt/*/site",
	"/opt/{a,b}/site",
	"~root/site",
	`/opt/back\slash/$HOME/${X:-y}`,
	"/opt/new\nline",
	`/opt/\x41\n\t\\'\e/site`,
}

func TestFillPlaceholderIsNeverParsed(t *testing.T) {
	cmd, err := ParseCommand(`A=__PLACEHOLDER_TRTLLM_WHL_PATH__ pytest --cov=__PLACEHOLDER_TRTLLM_WHL_PATH__/tensorrt_llm/ "dq=__PLACEHOLDER_TRTLLM_WHL_PATH__" 'sq=__PLACEHOLDER_TRTLLM_WHL_PATH__'`)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range hostile {
		filled, n, err := cmd.Fill(WheelPlaceholder, v)
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		if n != 4 {
			t.Errorf("%q: %d replacements, want 4", v, n)
		}
		got := argvs(t, filled, "HOME=/root")
		want := [][]string{{"pytest", "--cov=" + v + "/tensorrt_llm/", "dq=" + v, "sq=" + v}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("value %q:\n got %q\nwant %q", v, got, want)
		}
		if !strings.Contains(filled.Text, v) {
			t.Errorf("display text lacks the value: %q", filled.Text)
		}
	}
}

func TestFillRefusesPlaceholderInsideExpansion(t *testing.T) {
	cmd, _ := ParseCommand("pytest ${X:-__PLACEHOLDER_TRTLLM_WHL_PATH__}")
	if _, _, err := cmd.Fill(WheelPlaceholder, "/a b"); err == nil || !strings.Contains(err.Error(), "inside ${...}") {
		t.Fatalf("want a refusal, got %v", err)
	}
}

func TestFillCountsMissingPlaceholder(t *testing.T) {
	cmd, _ := ParseCommand("pytest -v")
	_, n, err := cmd.Fill(WheelPlaceholder, "/x")
	if err != nil || n != 0 {
		t.Fatalf("n=%d err=%v", n, err)
	}
}

func TestReferences(t *testing.T) {
	tests := []struct {
		text string
		want []string
	}{
		{`FLASHINFER_JIT_DIR=/tmp/cache_${SLURM_LOCALID} pytest $X "${Y}" ${Z:-d}`, []string{"X", "Y", "SLURM_LOCALID"}},
		{`export A=1 && pytest $A $B`, []string{"B"}},
		{`A=1 pytest $A`, []string{"A"}},
		{`pytest`, nil},
	}
	for _, tt := range tests {
		cmd, err := ParseCommand(tt.text)
		if err != nil {
			t.Fatal(err)
		}
		if got := cmd.References(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("References(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}

// The interpreter must give the same argv the expansion above predicts,
// including for hostile values: run a real program and read its argv.
func TestInterpreterRunsFilledCommandVerbatim(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "argv")
	script := filepath.Join(dir, "show")
	must.Do(t, os.WriteFile(script, []byte("#!/usr/bin/env python3\nimport sys, os\nopen(os.environ['OUT'], 'w').write('\\0'.join(sys.argv[1:]))\n"), 0o755))
	cmd, err := ParseCommand(`unset DROP && export OUT=` + out + ` && KEEP=1 ` + script + ` --cov=__PLACEHOLDER_TRTLLM_WHL_PATH__/tensorrt_llm/ 'not cpu_only'`)
	if err != nil {
		t.Fatal(err)
	}
	f := newTestFlow(t, dir)
	for _, v := range hostile {
		filled, _, err := cmd.Fill(WheelPlaceholder, v)
		if err != nil {
			t.Fatal(err)
		}
		f.command = filled
		if code, _ := f.interpret(context.Background()); code != 0 {
			t.Fatalf("%q: exit code %d", v, code)
		}
		data := must.Read(t, out)
		if got, want := string(data), "--cov="+v+"/tensorrt_llm/\x00not cpu_only"; got != want {
			t.Errorf("argv %q, want %q", got, want)
		}
		if _, err := os.Stat(filepath.Join(f.defsDir, "pwned")); err == nil {
			t.Fatal("a substituted value was executed")
		}
	}
}

func FuzzFillPlaceholder(f *testing.F) {
	for _, v := range hostile {
		f.Add(v)
	}
	f.Add("")
	f.Add("'\"\\$`")
	cmd, err := ParseCommand(`X=__PLACEHOLDER_TRTLLM_WHL_PATH__ pytest a__PLACEHOLDER_TRTLLM_WHL_PATH__b "c__PLACEHOLDER_TRTLLM_WHL_PATH__" 'd__PLACEHOLDER_TRTLLM_WHL_PATH__' $'e__PLACEHOLDER_TRTLLM_WHL_PATH__\t'`)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if strings.ContainsRune(v, 0) {
			return // no environment or argv can hold NUL
		}
		filled, n, err := cmd.Fill(WheelPlaceholder, v)
		if err != nil {
			t.Fatal(err)
		}
		if n != 5 {
			t.Fatalf("%d replacements", n)
		}
		got := argvs(t, filled)
		want := [][]string{{"pytest", "a" + v + "b", "c" + v, "d" + v, "e" + v + "\t"}}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("value %q: got %q", v, got)
		}
	})
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"pytest -v", "A=1 pytest && unset B", "pytest $(id)", "pytest | tee", "export A=${B:-c} && pytest",
		"pytest '__PLACEHOLDER_TRTLLM_WHL_PATH__'", "pytest ${__PLACEHOLDER_TRTLLM_WHL_PATH__}", "a; b || c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		cmd, err := ParseCommand(text)
		if err != nil {
			return
		}
		// An accepted command can always be filled or says why not, and
		// filling never introduces a construct the parser would refuse.
		filled, _, err := cmd.Fill(WheelPlaceholder, "/a b/$(x)")
		if err != nil {
			return
		}
		syntax.Walk(filled.file, func(n syntax.Node) bool {
			switch n.(type) {
			case *syntax.CmdSubst, *syntax.ProcSubst, *syntax.Redirect:
				t.Fatalf("filled %q holds %T", text, n)
			}
			return true
		})
	})
}

// An error the interpreter hits fails the command, whatever mvdan.cc/sh does
// with its status, and nothing after it runs. The kinds of error it can
// report at run time are the ones the parse-time check lets through; the
// others must be refused before anything runs.
func TestInterpreterErrorsFailTheCommand(t *testing.T) {
	dir := t.TempDir()
	ran := filepath.Join(dir, "ran")
	tests := []struct {
		name, command string
		refused       bool // by ParseCommand, before any step
	}{
		{"brace expansion over the limit", "touch " + ran + " {1..20000}", false},
		{"unset variable (set -u)", "touch " + ran + " $NOT_SET_ANYWHERE", false},
		{"unset variable in a default", "touch " + ran + " ${A:-$NOT_SET_ANYWHERE}", false},
		{"error, then a later command", "true {1..20000}; touch " + ran, false},
		{"indirect expansion", "touch " + ran + " ${!NOT_SET_ANYWHERE}", true},
		{"arithmetic", "touch " + ran + " $((1/0))", true},
		{"substring", "touch " + ran + " ${PATH:x:y}", true},
		{"export of a bad name", "export 1BAD=x && touch " + ran, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, err := ParseCommand(tt.command)
			if tt.refused {
				if err == nil {
					t.Fatal("accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			f := newTestFlow(t, dir)
			f.command = cmd
			os.Remove(ran)
			code, msg := f.interpret(context.Background())
			if code == 0 {
				t.Errorf("exit code 0 (interpreter error %q)", msg)
			}
			if _, err := os.Stat(ran); err == nil {
				t.Errorf("the command ran anyway")
			}
		})
	}
}
