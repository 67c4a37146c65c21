package entrypoint

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/slurmrun/slurmrun/internal/must"
)

func TestExpandHostlist(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []string
		bad  bool
	}{
		{in: "node1", want: []string{"node1"}},
		{in: "gpu[01-03,7],login1", want: []string{"gpu01", "gpu02", "gpu03", "gpu7", "login1"}},
		{in: "gpu[1-10]", want: []string{"gpu1", "gpu2", "gpu3", "gpu4", "gpu5", "gpu6", "gpu7", "gpu8", "gpu9", "gpu10"}},
		{in: "rack[1-2]-n[1-2]", want: []string{"rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"}},
		{in: "a[1-2]x,b", want: []string{"a1x", "a2x", "b"}},
		{in: "", want: nil},
		{in: "gpu[1-", bad: true},
		{in: "gpu[3-1]", bad: true},
		{in: "gpu[x]", bad: true},
		{in: "gpu]1[", bad: true},
	} {
		got, err := ExpandHostlist(tt.in)
		if (err != nil) != tt.bad || !slices.Equal(got, tt.want) {
			t.Errorf("ExpandHostlist(%q) = %q, %v", tt.in, got, err)
		}
	}
}

func TestTasksPerNode(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []int
	}{{"2(x3),1", []int{2, 2, 2, 1}}, {"4", []int{4}}, {"1,1", []int{1, 1}}, {"x", nil}, {"2(x0)", nil}, {"", nil}} {
		got, _ := tasksPerNode(tt.in)
		if !slices.Equal(got, tt.want) {
			t.Errorf("tasksPerNode(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestRangesAndSeconds(t *testing.T) {
	if got := ranges([]int{7, 0, 1, 2, 3, 9, 10}); got != "0-3, 7, 9-10" {
		t.Errorf("ranges: %q", got)
	}
	for d, want := range map[time.Duration]string{time.Hour: "3600s", 1500 * time.Millisecond: "1.5s", 2 * time.Second: "2s"} {
		if got := seconds(d); got != want {
			t.Errorf("seconds(%s) = %q, want %q", d, got, want)
		}
	}
}

// Which markers count: this step's ranks below the count, by kind; any
// other name in the directory is not a rank's.
func TestMarkers(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"rank_0.ready", "rank_1.done", "rank_2.gone", "rank_3.ready", "rank_x.ready", "rank_1.tmp", ".rank_0.ready.tmp1", "other"} {
		must.Do(t, os.WriteFile(filepath.Join(dir, n), nil, 0o644))
	}
	m, err := markers(dir, 3)
	must.Do(t, err)
	if !m.ready[0] || !m.done[1] || !m.gone[2] || m.ready[3] || m.present() != 2 || len(m.came()) != 3 {
		t.Errorf("markers: %+v", m)
	}
}
