package entrypoint

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/slurmrun/slurmrun/internal/redact"
	"github.com/slurmrun/slurmrun/result"

	"github.com/slurmrun/slurmrun/internal/must"
)

func TestWithLibraryPath(t *testing.T) {
	const lib = "/site/tensorrt_llm/libs"
	tests := []struct{ in, want string }{
		{"", lib},
		{"/usr/lib", lib + ":/usr/lib"},
		{"/usr/lib:", lib + ":/usr/lib"},
		{lib, lib},
		{"/usr/lib:" + lib + "/", "/usr/lib:" + lib + "/"},
		{"/usr/lib:" + lib + ":/x", "/usr/lib:" + lib + ":/x"},
		// A substring is not an entry (slurm_run.sh line 75 tests one).
		{lib + "64:/usr/lib", lib + ":" + lib + "64:/usr/lib"},
		{"/prefix" + lib, lib + ":/prefix" + lib},
	}
	for _, tt := range tests {
		if got := WithLibraryPath(tt.in, lib); got != tt.want {
			t.Errorf("WithLibraryPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestScrub(t *testing.T) {
	env := NewEnv([]string{"PMI_RANK=1", "PMIX_RANK=1", "MPI_X=1", "OMPI_COMM_WORLD_SIZE=2", "SLURM_PROCID=3",
		"SLURM_LOCALID=1", "SLURM_JOB_ID=9", "SLURMD_NODENAME=n1", "PATH=/bin", "MY_PMI=1", "UCX_TLS=tcp", "I_MPI_X=1"})
	removed := Scrub(env, []string{"SLURM_LOCALID"})
	want := []string{"PMI_RANK", "PMIX_RANK", "MPI_X", "OMPI_COMM_WORLD_SIZE", "SLURM_JOB_ID", "SLURMD_NODENAME"}
	if !reflect.DeepEqual(removed, want) {
		t.Errorf("removed %q, want %q", removed, want)
	}
	if got := strings.Join(env.List(), " "); got != "SLURM_PROCID=3 SLURM_LOCALID=1 PATH=/bin MY_PMI=1 UCX_TLS=tcp I_MPI_X=1" {
		t.Errorf("left %s", got)
	}
}

func TestDumpMasksSecrets(t *testing.T) {
	environ := []string{"HF_TOKEN=hf_abc", "S3_SECRET_KEY=s3", "OPEN_SEARCH_DB_CREDENTIALS_PSW=pw", "db_password=x",
		"MY_PASSWD=y", "api_key=z", "GITHUB_CREDENTIAL=c", "PATH=/bin", "EMPTY_TOKEN=", "B=2", "A=1",
		"PIP_INDEX_URL=https://u:pipsecret@pypi.example/simple", "HTTPS_PROXY=http://p:proxysecret@proxy:3128",
		"DATABASE_URL=postgres://app:dbsecret@db/x", "SENTRY_DSN=https://dsnkey@sentry.example/1",
		"AZURE_STORAGE_CONNECTION_STRING=AccountName=a;AccountKey=azsecret;EndpointSuffix=core",
		"CI_JOB_JWT=eyJhbGciOiJI.eyJzdWIiOiIx.SflKxwRJSMeK", "GH_PAT=ghp_0123456789abcdefghijABCDEF", "MYSQL_PWD=mysqlsecret",
		"SSHPASS=sshsecret", "NPM_AUTH=npmsecret", "GIT_CONFIG_KEY_0=safe.directory", "GIT_CONFIG_VALUE_0=*", "PWD=/work",
		"pytestCommand=HF_TOKEN=hf_inline python3 -m pytest"}
	got := NewEnv(environ).Dump(redact.New(environ))
	m := redact.Mask
	want := []string{"A=1", "AZURE_STORAGE_CONNECTION_STRING=AccountName=a;AccountKey=" + m + ";EndpointSuffix=core", "B=2",
		"CI_JOB_JWT=" + m, "DATABASE_URL=postgres://app:" + m + "@db/x", "EMPTY_TOKEN=", "GH_PAT=" + m,
		"GITHUB_CREDENTIAL=" + m, "GIT_CONFIG_KEY_0=safe.directory", "GIT_CONFIG_VALUE_0=*", "HF_TOKEN=" + m,
		"HTTPS_PROXY=http://p:" + m + "@proxy:3128", "MYSQL_PWD=" + m, "MY_PASSWD=" + m, "NPM_AUTH=" + m,
		"OPEN_SEARCH_DB_CREDENTIALS_PSW=" + m, "PATH=/bin", "PIP_INDEX_URL=https://u:" + m + "@pypi.example/simple", "PWD=/work",
		"S3_SECRET_KEY=" + m, "SENTRY_DSN=" + m, "SSHPASS=" + m, "api_key=" + m, "db_password=" + m,
		"pytestCommand=HF_TOKEN=" + m + " python3 -m pytest"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Dump:\n got %q\nwant %q", got, want)
	}
}

// A failed perf report counts as a failed check only when the check
// passed, as slurm_run.sh folds them (the precedence is result's).
func TestFoldReport(t *testing.T) {
	if foldReport(0, 4) != 4 || foldReport(1, 4) != 1 || foldReport(0, 0) != 0 {
		t.Error("a failed report must count as a failed check only when the check passed")
	}
}

func TestCoverageHandshake(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ".coveragerc")
	must.Do(t, os.WriteFile(path, []byte("[paths]\nsource = ---wheel_path---/tensorrt_llm/\n"), 0o640))
	reader := newTestFlow(t, dir)
	reader.cfg.Rank, reader.cfg.CoverageConfigFile, reader.cfg.CoverageTimeout = 1, path, 5*time.Second
	writer := newTestFlow(t, dir)
	writer.cfg.CoverageConfigFile, writer.wheelDir = path, "/site & |x"

	done := make(chan error, 1)
	go func() { done <- shareCoverageConfig(context.Background(), reader) }()
	select {
	case err := <-done:
		t.Fatalf("rank 1 went on before rank 0 wrote the file: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if err := shareCoverageConfig(context.Background(), writer); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	data := must.Read(t, path)
	if string(data) != "[paths]\nsource = /site & |x/tensorrt_llm/\n" {
		t.Errorf("rewritten config: %q", data)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v not kept", fi.Mode())
	}
	// A second writer (another role's rank 0) finds nothing to do.
	if err := shareCoverageConfig(context.Background(), writer); err != nil {
		t.Fatal(err)
	}
}

func TestCoverageWaitIsBounded(t *testing.T) {
	dir := t.TempDir()
	f := newTestFlow(t, dir)
	f.cfg.Rank, f.cfg.CoverageConfigFile, f.cfg.CoverageTimeout = 2, filepath.Join(dir, "never"), 200*time.Millisecond
	err := shareCoverageConfig(context.Background(), f)
	if err == nil || !strings.Contains(err.Error(), "timed out after 200ms") || !strings.Contains(err.Error(), "never") {
		t.Fatalf("want a bounded wait naming the file, got %v", err)
	}
}

// A GIT_CONFIG_COUNT beyond the keys that are set fails at the first
// missing key, at once, however large the count.
func TestGitConfigCountIsBoundedByTheEnvironment(t *testing.T) {
	for _, tt := range []struct {
		count string
		ok    bool
	}{{"9223372036854775807", false}, {"2", false}, {"1", true}, {"0", true}, {"-1", false}, {"x", false}} {
		f := newTestFlow(t, t.TempDir())
		f.env.Set("GIT_CONFIG_COUNT", tt.count)
		f.env.Set("GIT_CONFIG_KEY_0", "core.pager")
		f.env.Set("GIT_CONFIG_VALUE_0", "cat")
		done := make(chan error, 1)
		go func() { done <- allowAnyGitDirectory(context.Background(), f) }()
		select {
		case err := <-done:
			if (err == nil) != tt.ok {
				t.Errorf("GIT_CONFIG_COUNT=%s: %v", tt.count, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("GIT_CONFIG_COUNT=%s: still looping", tt.count)
		}
	}
}

// tensorrt_llm's metadata in the working directory is found through Python's
// empty path entry: the location is that directory, absolute, never empty.
func TestWheelLocationIsAbsolute(t *testing.T) {
	dir := t.TempDir()
	f := newTestFlow(t, dir)
	must.Do(t, os.Mkdir(filepath.Join(dir, "tensorrt_llm-9.9.dist-info"), 0o755))
	loc, err := f.WheelLocation(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if loc != dir {
		t.Fatalf("location %q, want %q", loc, dir)
	}
}

// A step's record says how it ended: a bound that ran out is "timed out",
// an end the job's cancellation caused is "cancelled", not a failure.
func TestStepOutcomes(t *testing.T) {
	dir := t.TempDir()
	f := newTestFlow(t, dir)
	f.cfg.Rank, f.cfg.CoverageConfigFile, f.cfg.CoverageTimeout = 2, filepath.Join(dir, "never"), 50*time.Millisecond
	timedOut := shareCoverageConfig(context.Background(), f)
	for _, tc := range []struct {
		name      string
		err       error
		cancelled bool
		want      string
		code      int
	}{
		{"ok", nil, false, result.OK, 0},
		{"failed", stepFailed(3, "pytestCommand failed"), false, result.Failed, 3},
		{"bound ran out", timedOut, false, result.TimedOut, 1},
		{"cancelled while it ran", stepFailed(143, "pytestCommand failed"), true, result.Cancelled, 143},
	} {
		rec := &result.Step{Name: tc.name, Start: time.Now()}
		finish(rec, tc.err, tc.cancelled)
		if rec.Outcome != tc.want || tc.err != nil && (rec.ExitCode == nil || *rec.ExitCode != tc.code || rec.Detail != tc.err.Error()) {
			t.Errorf("%s: %+v", tc.name, rec)
		}
	}
}
