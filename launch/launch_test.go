package launch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slurmrun/slurmrun/internal/must"
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
