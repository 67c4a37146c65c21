package entrypoint

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slurmrun/slurmrun/internal/atomicfile"
)

// The rank barrier is main's slurm_wait_all_ranks: every rank of a
// multi-node step enters pytest at once, because pytest's first import runs
// an MPI collective whose PMIx fence times out after 300 s, and one node
// still installing would abort every rank. Each rank leaves a marker in a
// directory of the job workspace (a shared filesystem) keyed by job, step
// and restart; a rank that has seen every rank's marker turns its own from
// .ready into .done, and the rank that finds every marker .done removes the
// directory: by then no rank is still waiting for it. A rank that gives up
// (its bound, a cancel) turns its marker into .gone: it still counts as
// having come in what the ranks print, but releases no one, and the last
// rank to leave removes the directory.

// barrierPause bounds the time between two looks at the markers: the last
// rank's arrival releases the others within it.
const barrierPause = 500 * time.Millisecond

// barrierReport is how often rank 0 says how many ranks are ready.
const barrierReport = 10 * time.Second

func skipBarrier(f *Flow) string {
	// Read after the scrub, as upstream reads it: a scrubbed rank (single
	// node, BENCHMARK, DISAGG_SERVER) has no fence to wait for.
	if v, ok := f.childEnv.Get("SLURM_NTASKS"); !ok || v == "" {
		return "SLURM_NTASKS is not in pytest's environment"
	}
	switch {
	case f.cfg.NTasks <= 1:
		return "one task in the step"
	case f.cfg.JobWorkspace == "":
		return "jobWorkspace is not set"
	}
	return ""
}

// barrierDir is the step's marker directory: upstream's name, and the
// restart count after a requeue, so that an earlier attempt's markers never
// count.
func (f *Flow) barrierDir() string {
	step := f.cfg.StepID
	if step == "" {
		step = "0"
	}
	name := fmt.Sprintf("run_ready_job_%s_step_%s", f.cfg.JobID, step)
	if f.cfg.RestartCount > 0 {
		name += fmt.Sprintf("_restart_%d", f.cfg.RestartCount)
	}
	return filepath.Join(f.cfg.JobWorkspace, name)
}

// markerSet is which ranks below the step's count left which marker.
type markerSet struct{ ready, done, gone map[int]bool }

// present counts the ranks that wait or were released: a rank that gave
// up releases no one.
func (m markerSet) present() int { return len(m.ready) + len(m.done) }

// came is every rank that arrived, whether it waits, went on or gave up.
func (m markerSet) came() map[int]bool {
	out := map[int]bool{}
	for _, set := range []map[int]bool{m.ready, m.done, m.gone} {
		for r := range set {
			out[r] = true
		}
	}
	return out
}

// markers reads the markers of ranks below n in dir.
func markers(dir string, n int) (markerSet, error) {
	m := markerSet{ready: map[int]bool{}, done: map[int]bool{}, gone: map[int]bool{}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return m, err
	}
	for _, e := range entries {
		base, kind, ok := strings.Cut(e.Name(), ".")
		num, isRank := strings.CutPrefix(base, "rank_")
		r, err := strconv.Atoi(num)
		if !ok || !isRank || err != nil || r < 0 || r >= n {
			continue
		}
		switch kind {
		case "ready":
			m.ready[r] = true
		case "done":
			m.done[r] = true
		case "gone":
			m.gone[r] = true
		}
	}
	return m, nil
}

// waitForAllRanks waits until every rank of the step has arrived.
func waitForAllRanks(ctx context.Context, f *Flow) error {
	n, rank := int(f.cfg.NTasks), int(f.cfg.Rank)
	dir := f.barrierDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return stepFailed(1, "rank barrier: %w", err)
	}
	ready := filepath.Join(dir, fmt.Sprintf("rank_%d.ready", rank))
	if err := atomicfile.WriteFile(ready, []byte(f.nodeName()+"\n"), 0o644); err != nil {
		return stepFailed(1, "rank barrier: %w", err)
	}
	var seen markerSet
	var reported time.Time
	err := pollEvery(ctx, f.cfg.BarrierTimeout, barrierPause, func() (bool, error) {
		var err error
		if seen, err = markers(dir, n); err != nil {
			return false, err
		}
		if seen.present() >= n {
			return true, nil
		}
		if rank == 0 && time.Since(reported) >= barrierReport {
			fmt.Fprintf(f.out, "(Waiting for all %d ranks to be ready) ready: %d/%d\n", n, len(seen.came()), n)
			reported = time.Now()
		}
		return false, nil
	})
	if err != nil {
		f.leaveBarrier(dir, ready, "gone", n)
		if errors.Is(err, errTimeout) {
			came := seen.came()
			fmt.Fprintf(f.out, "ERROR: rank %d timed out after %s waiting for all %d ranks to be ready; ready: %d/%d\n",
				rank, seconds(f.cfg.BarrierTimeout), n, len(came), n)
			missing := f.missingRanks(came)
			fmt.Fprintln(f.out, "Rank barrier: "+missing)
			return stepFailed(1, "rank barrier %w: %s", err, missing)
		}
		return stepFailed(1, "rank barrier: %w", err)
	}
	f.leaveBarrier(dir, ready, "done", n)
	return nil
}

// leaveBarrier turns this rank's marker into kind (done: released; gone:
// gave up), and removes the markers once no rank waits on them: all done,
// or none ready or done.
func (f *Flow) leaveBarrier(dir, ready, kind string, n int) {
	if err := os.Rename(ready, strings.TrimSuffix(ready, "ready")+kind); err != nil {
		f.log.WithError(err).Warn("rank barrier: cannot mark this rank " + kind + "; the markers stay")
		return
	}
	m, err := markers(dir, n)
	if err == nil && (len(m.done) >= n || m.present() == 0) {
		if err := os.RemoveAll(dir); err != nil {
			f.log.WithError(err).Warn("rank barrier: cannot remove the markers")
		}
	}
}

// nodeName is the Slurm node this rank runs on, as the markers name it.
func (f *Flow) nodeName() string {
	if v, ok := f.env.Get("SLURMD_NODENAME"); ok && v != "" {
		return v
	}
	host, _ := os.Hostname()
	return host
}

// missingRanks names the ranks that never arrived and, where the step's
// layout says, the nodes they were to run on.
func (f *Flow) missingRanks(arrived map[int]bool) string {
	var missing []int
	for r := 0; r < int(f.cfg.NTasks); r++ {
		if !arrived[r] {
			missing = append(missing, r)
		}
	}
	layout := f.stepLayout()
	if layout == nil {
		return fmt.Sprintf("%d of %d ranks never arrived: %s", len(missing), f.cfg.NTasks, ranges(missing))
	}
	var order []string
	byNode := map[string][]int{}
	for _, r := range missing {
		node := layout[r]
		if _, ok := byNode[node]; !ok {
			order = append(order, node)
		}
		byNode[node] = append(byNode[node], r)
	}
	var parts []string
	for _, node := range order {
		parts = append(parts, ranges(byNode[node])+" on "+node)
	}
	return fmt.Sprintf("%d of %d ranks never arrived: %s", len(missing), f.cfg.NTasks, strings.Join(parts, "; "))
}

// stepLayout maps each rank to its node under Slurm's default block
// distribution, from SLURM_STEP_NODELIST and SLURM_STEP_TASKS_PER_NODE; nil
// when the step says another distribution or the variables are missing.
func (f *Flow) stepLayout() []string {
	get := func(name string) string { v, _ := f.env.Get(name); return v }
	if d := get("SLURM_DISTRIBUTION"); d != "" && !strings.HasPrefix(d, "block") {
		return nil
	}
	nodes, err := ExpandHostlist(get("SLURM_STEP_NODELIST"))
	if err != nil || len(nodes) == 0 {
		return nil
	}
	counts, err := tasksPerNode(get("SLURM_STEP_TASKS_PER_NODE"))
	if err != nil || len(counts) != len(nodes) {
		return nil
	}
	var layout []string
	for i, c := range counts {
		for j := 0; j < c; j++ {
			layout = append(layout, nodes[i])
		}
	}
	if len(layout) != int(f.cfg.NTasks) {
		return nil
	}
	return layout
}

// tasksPerNode expands Slurm's "2(x3),1" into [2 2 2 1].
func tasksPerNode(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		count, times := part, "1"
		if i := strings.Index(part, "(x"); i >= 0 && strings.HasSuffix(part, ")") {
			count, times = part[:i], part[i+2:len(part)-1]
		}
		c, err1 := strconv.Atoi(count)
		t, err2 := strconv.Atoi(times)
		if err1 != nil || err2 != nil || c < 0 || t < 1 {
			return nil, fmt.Errorf("tasks per node %q", s)
		}
		for ; t > 0; t-- {
			out = append(out, c)
		}
	}
	return out, nil
}

// ExpandHostlist expands a Slurm host list such as "gpu[01-03,7],login1".
func ExpandHostlist(list string) ([]string, error) {
	var out []string
	depth, start := 0, 0
	for i := 0; i <= len(list); i++ {
		if i < len(list) {
			switch list[i] {
			case '[':
				depth++
				continue
			case ']':
				depth--
				continue
			case ',':
				if depth > 0 {
					continue
				}
			default:
				continue
			}
		}
		if depth != 0 {
			return nil, fmt.Errorf("host list %q: unbalanced brackets", list)
		}
		hosts, err := expandHost(list[start:i])
		if err != nil {
			return nil, err
		}
		out = append(out, hosts...)
		start = i + 1
	}
	return out, nil
}

// expandHost expands one host expression, bracket by bracket.
func expandHost(expr string) ([]string, error) {
	open := strings.IndexByte(expr, '[')
	if open < 0 {
		if expr == "" {
			return nil, nil
		}
		return []string{expr}, nil
	}
	end := strings.IndexByte(expr[open:], ']')
	if end < 0 {
		return nil, fmt.Errorf("host %q: unbalanced brackets", expr)
	}
	prefix, body, rest := expr[:open], expr[open+1:open+end], expr[open+end+1:]
	tails, err := expandHost(rest)
	if err != nil {
		return nil, err
	}
	if len(tails) == 0 {
		tails = []string{""}
	}
	var out []string
	for _, r := range strings.Split(body, ",") {
		lo, hi, isRange := strings.Cut(r, "-")
		if !isRange {
			hi = lo
		}
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || b < a || b-a > 1<<16 {
			return nil, fmt.Errorf("host %q: bad range %q", expr, r)
		}
		for v := a; v <= b; v++ {
			for _, t := range tails {
				out = append(out, fmt.Sprintf("%s%0*d%s", prefix, len(lo), v, t))
			}
		}
	}
	return out, nil
}

// ranges writes sorted ranks as "0-3, 7".
func ranges(ranks []int) string {
	slices.Sort(ranks)
	var parts []string
	for i := 0; i < len(ranks); {
		j := i
		for j+1 < len(ranks) && ranks[j+1] == ranks[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, strconv.Itoa(ranks[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", ranks[i], ranks[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}

// seconds writes d as upstream's "${timeoutSecs}s": 3600s, or 0.5s.
func seconds(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}
