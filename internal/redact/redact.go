// Package redact keeps secrets out of what slurmrun itself writes: its
// stdout lines, logs, result files, lock files and plans. The commands it
// runs still get the real values; only slurmrun's own text is redacted.
//
// A value is secret when its variable's name says so (HF_TOKEN, MYSQL_PWD,
// GH_PAT, SENTRY_DSN, an API_KEY), and wherever it appears: the password of
// a URL's userinfo (https://user:pass@host), the value of a secret-named
// key in a connection string (AccountKey=…;), a NAME=value pair with a
// secret name (HF_TOKEN=… inline in pytestCommand), and well-known token
// shapes (JWTs, GitHub, Hugging Face, AWS, GitLab, Slack, OpenAI keys).
package redact

import (
	"io"
	"regexp"
	"sort"
	"strings"
)

// Mask is what a secret is written as.
const Mask = "********"

// secretSegments are name parts that make a variable secret wherever they
// stand (HF_TOKEN, CI_JOB_JWT, GH_PAT, MYSQL_PWD, NPM_AUTH, SENTRY_DSN).
var secretSegments = map[string]bool{
	"TOKEN": true, "SECRET": true, "SECRETS": true, "PASSWORD": true, "PASSWD": true, "PASS": true, "PWD": true,
	"PSW": true, "CREDENTIAL": true, "CREDENTIALS": true, "JWT": true, "PAT": true, "AUTH": true, "DSN": true,
	"APIKEY": true, "PRIVATE": true, "SIGNATURE": true, "COOKIE": true, "SESSION": true,
}

// secretSuffixes end a name that is secret as a whole (SSHPASS, GITHUBTOKEN).
var secretSuffixes = []string{"PASS", "PASSWORD", "PASSWD", "TOKEN", "SECRET", "APIKEY"}

// Name reports whether a variable's name marks its value as secret. KEY
// counts only as the last part (API_KEY, AWS_SECRET_ACCESS_KEY, SSH_KEY), so
// GIT_CONFIG_KEY_0 and KEYBOARD are not secret; PWD alone is the working
// directory.
func Name(name string) bool {
	upper := strings.ToUpper(name)
	if upper == "PWD" || upper == "OLDPWD" {
		return false
	}
	parts := strings.FieldsFunc(upper, func(r rune) bool { return r == '_' || r == '-' || r == '.' })
	for i, p := range parts {
		if secretSegments[p] || p == "KEY" && i == len(parts)-1 && len(parts) > 0 {
			return true
		}
	}
	for _, s := range secretSuffixes {
		if strings.HasSuffix(upper, s) && len(upper) > len(s) {
			return true
		}
	}
	return false
}

var (
	// scheme://user:password@ — the password goes, the user stays.
	urlPassword = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^/?#@\s:'"]*):([^/?#@\s'"]+)@`)
	// key=value inside connection strings and query strings.
	secretPair = regexp.MustCompile(`(?i)\b(AccountKey|SharedAccessKey|SharedAccessSignature|Password|Secret|ClientSecret|client_secret|Token|access_token|refresh_token|ApiKey|api_key|apikey|sig|X-Amz-Signature|X-Amz-Credential)=([^;&\s'"]+)`)
	// ODBC's Pwd=, inside a connection string only: PWD= alone is the
	// working directory.
	connPassword = regexp.MustCompile(`(?i)(;\s*Pwd)=([^;&\s'"]+)`)
	// NAME=value, the value plain or quoted.
	assignment = regexp.MustCompile(`\b([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|'[^']*'|[^\s;&|]+)`)
	// Token shapes that are secret wherever they appear.
	tokenShape = regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}` + // JWT
		`|\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}` + // GitHub
		`|\bgithub_pat_[A-Za-z0-9_]{20,}` +
		`|\bhf_[A-Za-z0-9]{20,}` + // Hugging Face
		`|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b` + // AWS access key id
		`|\bglpat-[A-Za-z0-9_-]{20,}` + // GitLab
		`|\bxox[abposr]-[A-Za-z0-9-]{10,}` + // Slack
		`|\bsk-[A-Za-z0-9_-]{20,}`) // OpenAI and alike
)

// Redactor redacts one job's secrets.
type Redactor struct {
	known *strings.Replacer // the values of secret-named variables
}

// New collects the values of environ's secret-named variables, so that they
// are masked wherever they appear, whatever their shape.
func New(environ []string) *Redactor {
	var values []string
	for _, kv := range environ {
		name, v, ok := strings.Cut(kv, "=")
		// Short values (a flag, a count) would mask harmless text too.
		if ok && len(v) >= 6 && Name(name) {
			values = append(values, v)
		}
	}
	// Longest first, so that a value holding another is masked whole.
	sort.Slice(values, func(i, j int) bool { return len(values[i]) > len(values[j]) })
	pairs := make([]string, 0, 2*len(values))
	for _, v := range values {
		pairs = append(pairs, v, Mask)
	}
	return &Redactor{known: strings.NewReplacer(pairs...)}
}

// String returns s with every secret it can tell masked.
func (r *Redactor) String(s string) string {
	if r != nil {
		s = r.known.Replace(s)
	}
	s = urlPassword.ReplaceAllString(s, "${1}:"+Mask+"@")
	s = secretPair.ReplaceAllString(s, "${1}="+Mask)
	s = connPassword.ReplaceAllString(s, "${1}="+Mask)
	s = assignment.ReplaceAllStringFunc(s, func(m string) string {
		name, _, _ := strings.Cut(m, "=")
		if Name(name) {
			return name + "=" + Mask
		}
		return m
	})
	return tokenShape.ReplaceAllString(s, Mask)
}

// Value returns what a variable's value is written as: masked whole when
// its name is secret, else with the secrets inside it masked.
func (r *Redactor) Value(name, v string) string {
	if v != "" && Name(name) {
		return Mask
	}
	return r.String(v)
}

// Writer redacts what is written through it. Each Write must hold whole
// lines (slurmrun's own prints and log entries do), so that no secret is
// split between two writes.
func (r *Redactor) Writer(w io.Writer) io.Writer { return &writer{w: w, r: r} }

type writer struct {
	w io.Writer
	r *Redactor
}

func (w *writer) Write(p []byte) (int, error) {
	if _, err := io.WriteString(w.w, w.r.String(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}
