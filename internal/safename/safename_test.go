package safename

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, ok := range []string{"4242", "local", "node1.root.77.0.1", "job_1-2+3:4@x", "0"} {
		if err := Check("X", ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "a/b", "../x", "/abs", "a b", "a\x00b", "a\nb", strings.Repeat("9", MaxLen+1), "ü"} {
		if err := Check("X", bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// Whatever is accepted stays one element below the directory it is put in.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{"4242", "../x", "a/b", ".."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if Check("X", s) != nil {
			return
		}
		p := filepath.Join("/ws", "result.job"+s+".json")
		if filepath.Dir(p) != "/ws" {
			t.Fatalf("%q leaves the directory: %s", s, p)
		}
		if filepath.Join("/state", s) != "/state/"+s {
			t.Fatalf("%q is not one element", s)
		}
	})
}
