package redact

import (
	"strings"
	"testing"
	"unicode"
)

func TestName(t *testing.T) {
	for _, secret := range []string{"HF_TOKEN", "GITHUB_TOKEN", "CI_JOB_JWT", "GH_PAT", "MYSQL_PWD", "SSHPASS", "NPM_AUTH",
		"SENTRY_DSN", "AWS_SECRET_ACCESS_KEY", "API_KEY", "OPENAI_API_KEY", "SSH_KEY", "KEY", "DB_PASSWORD", "hf_token",
		"REGISTRY_CREDENTIALS", "NPM_AUTH_TOKEN"} {
		if !Name(secret) {
			t.Errorf("%s not secret", secret)
		}
	}
	for _, harmless := range []string{"GIT_CONFIG_KEY_0", "GIT_CONFIG_VALUE_0", "KEYBOARD", "PWD", "OLDPWD", "PATH",
		"SLURM_JOB_PARTITION", "HOME", "PASSENGER", "TOKENIZERS_PARALLELISM", "KEY_0", "LD_LIBRARY_PATH", "PYTHONPATH"} {
		if Name(harmless) {
			t.Errorf("%s taken for a secret", harmless)
		}
	}
}

func TestString(t *testing.T) {
	r := New([]string{"HF_TOKEN=hf_notashape", "MYSQL_PWD=hunter22", "GIT_CONFIG_KEY_0=safe.directory", "SHORT_TOKEN=abc"})
	tests := []struct{ in, want string }{
		{"PIP_INDEX_URL=https://user:s3cr3t@pypi.example.com/simple", "PIP_INDEX_URL=https://user:" + Mask + "@pypi.example.com/simple"},
		{"HTTPS_PROXY=http://proxy:p%40ss@10.0.0.1:3128", "HTTPS_PROXY=http://proxy:" + Mask + "@10.0.0.1:3128"},
		{"postgres://app:pw@db/x", "postgres://app:" + Mask + "@db/x"},
		{"DefaultEndpointsProtocol=https;AccountName=a;AccountKey=abc+/=;EndpointSuffix=core", "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=" + Mask + ";EndpointSuffix=core"},
		{"HF_TOKEN=hf_inline_value python3 -m pytest", "HF_TOKEN=" + Mask + " python3 -m pytest"},
		{"export GH_PAT='quoted value' && pytest", "export GH_PAT=" + Mask + " && pytest"},
		{"jwt eyJhbGciOiJI.eyJzdWIiOiIx.SflKxwRJSMeK", "jwt " + Mask},
		{"ghp_0123456789abcdefghijABCDEFGHIJ", Mask},
		{"https://ghp_0123456789abcdefghijABCDEFGHIJ@github.com/x.git", "https://" + Mask + "@github.com/x.git"},
		{"AKIAABCDEFGHIJKLMNOP", Mask},
		{"the known value hunter22 anywhere", "the known value " + Mask + " anywhere"},
		{"hf_notashape", Mask},
		{"GIT_CONFIG_KEY_0=safe.directory GIT_CONFIG_VALUE_0=*", "GIT_CONFIG_KEY_0=safe.directory GIT_CONFIG_VALUE_0=*"},
		{"abc is too short to mask; https://host/path no userinfo", "abc is too short to mask; https://host/path no userinfo"},
		{"--trtllm-wheel=/usr/lib/python3/dist-packages/tensorrt_llm/ -k 'not cpu'", "--trtllm-wheel=/usr/lib/python3/dist-packages/tensorrt_llm/ -k 'not cpu'"},
		// PWD is the working directory; Pwd= is ODBC's password inside a connection string.
		{"+ PWD=/ws/defs OLDPWD=/ws", "+ PWD=/ws/defs OLDPWD=/ws"},
		{"DRIVER={ODBC};SERVER=db;UID=app;PWD=s3cret;", "DRIVER={ODBC};SERVER=db;UID=app;PWD=" + Mask + ";"},
		{"Server=db; Uid=app; Pwd=s3cret", "Server=db; Uid=app; Pwd=" + Mask},
	}
	for _, tt := range tests {
		if got := r.String(tt.in); got != tt.want {
			t.Errorf("%q\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
	if got := r.Value("SENTRY_DSN", "https://key@o1.ingest.sentry.io/1"); got != Mask {
		t.Errorf("a secret-named value: %q", got)
	}
	var b strings.Builder
	r.Writer(&b).Write([]byte("Full Command: MYSQL_PWD=hunter22 pytest\n"))
	if b.String() != "Full Command: MYSQL_PWD="+Mask+" pytest\n" {
		t.Errorf("writer: %q", b.String())
	}
}

// A password in a URL never survives, whatever it is, and redacting twice
// changes nothing more.
func FuzzString(f *testing.F) {
	for _, s := range []string{"s3cr3t", "p@ss", "a:b", "x y", "🔑", "%40"} {
		f.Add("user", s)
	}
	r := New(nil)
	f.Fuzz(func(t *testing.T, user, pass string) {
		// Not a URL's userinfo: separators, quotes and white space.
		if strings.ContainsAny(user, "/?#@:'\"") || strings.ContainsAny(pass, "/?#@'\"") ||
			strings.IndexFunc(user+pass, unicode.IsSpace) >= 0 ||
			user == "" || len(pass) < 3 || strings.Contains(Mask, pass) {
			return
		}
		in := "https://" + user + ":" + pass + "@host/simple"
		out := r.String(in)
		if strings.Contains(out, ":"+pass+"@") {
			t.Fatalf("%q -> %q", in, out)
		}
		if again := r.String(out); again != out {
			t.Fatalf("not stable: %q -> %q -> %q", in, out, again)
		}
	})
}
