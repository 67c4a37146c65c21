package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slurmrun/slurmrun/internal/must"
)

// latencyHelper records, on SIGTERM, the CLOCK_MONOTONIC time it saw it.
const latencyHelper = `import signal, sys, time, os
out = sys.argv[1]
def on_term(s, f):
    with open(out + ".tmp", "w") as fh:
        fh.write(str(time.clock_gettime_ns(time.CLOCK_MONOTONIC)))
    os.rename(out + ".tmp", out)
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
open(out + ".ready", "w").close()
while True:
    signal.pause()
`

// monotonicNow is CLOCK_MONOTONIC, the clock the helper reads.
func monotonicNow() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// initUnderTest is an init and the arguments that put a command under it.
type initUnderTest struct {
	name string
	argv []string
}

func inits(b *testing.B) []initUnderTest {
	tini, err := exec.LookPath("tini")
	if err != nil {
		b.Fatal("tini is not installed (make bench installs it): ", err)
	}
	// tini needs -s to reap orphans when it is not PID 1; slurmrun always is a subreaper.
	return []initUnderTest{{"tini", []string{tini, "-s", "--"}}, {"slurmrun", []string{binary, "exec", "--"}}}
}

func startInit(b *testing.B, in initUnderTest, args ...string) *exec.Cmd {
	cmd := exec.Command(in.argv[0], append(append([]string{}, in.argv[1:]...), args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	return cmd
}

// waitFile waits until a file matches pattern (a path, or a glob), at
// most limit.
func waitFile(pattern string, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			return true
		}
		time.Sleep(2 * time.Millisecond)
	}
	return false
}

// forwardLatencies is, per init, the median time from SIGTERM to the init
// until its child's handler runs. The inits take turns, so that drift in the
// machine's load falls on both alike.
func forwardLatencies(b *testing.B, ins []initUnderTest, dir, script string, n int) map[string]time.Duration {
	samples := map[string][]time.Duration{}
	for i := 0; i < n; i++ {
		for _, in := range ins {
			out := filepath.Join(dir, fmt.Sprintf("%s-%d", in.name, i))
			cmd := startInit(b, in, "python3", script, out)
			if !waitFile(out+".ready", 10*time.Second) {
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				b.Fatalf("%s: child never ready", in.name)
			}
			time.Sleep(20 * time.Millisecond)
			sent := monotonicNow()
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
			data, err := os.ReadFile(out)
			if err != nil {
				b.Fatalf("%s: the child did not see SIGTERM: %v", in.name, err)
			}
			seen, _ := strconv.ParseInt(string(data), 10, 64)
			samples[in.name] = append(samples[in.name], time.Duration(seen-sent))
		}
	}
	medians := map[string]time.Duration{}
	for name, ds := range samples {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		medians[name] = ds[len(ds)/2]
	}
	return medians
}

// reapOrphans times a child that leaves n orphans and reads how many zombies
// the init still had when the child finished.
func reapOrphans(b *testing.B, in initUnderTest, dir, script string, n int) (time.Duration, string) {
	out := filepath.Join(dir, in.name+"-orphans")
	begin := time.Now()
	cmd := startInit(b, in, "python3", script, "orphans", out, strconv.Itoa(n))
	if err := cmd.Wait(); err != nil {
		b.Fatalf("%s: %v", in.name, err)
	}
	d := time.Since(begin)
	data := must.Read(b, out)
	return d, strings.TrimSpace(string(data))
}

// idle reads the init's resident memory and counts its context switches
// (wake-ups) over a window while its child sleeps.
func idle(b *testing.B, in initUnderTest, window time.Duration) (mem rss, perSecond float64) {
	cmd := startInit(b, in, "sleep", "30")
	defer func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() }()
	time.Sleep(500 * time.Millisecond)
	switches := func() int {
		total := 0
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", cmd.Process.Pid))
		for _, t := range tasks {
			data := must.Read(b, t)
			for _, l := range strings.Split(string(data), "\n") {
				if v, ok := strings.CutPrefix(l, "voluntary_ctxt_switches:"); ok {
					n, _ := strconv.Atoi(strings.TrimSpace(v))
					total += n
				}
				if v, ok := strings.CutPrefix(l, "nonvoluntary_ctxt_switches:"); ok {
					n, _ := strconv.Atoi(strings.TrimSpace(v))
					total += n
				}
			}
		}
		return total
	}
	before := switches()
	time.Sleep(window)
	after := switches()
	return rssOf(cmd.Process.Pid), float64(after-before) / window.Seconds()
}

// rss is a process's resident set in kB: all of it (VmRSS), and its
// anonymous part (RssAnon: heap and stacks, the process's own). The rest is
// clean file pages of the binary, shared through the page cache with every
// other process running it (the job, other ranks on the node).
type rss struct{ total, anon int }

func (r rss) String() string { return fmt.Sprintf("%d kB (anon %d)", r.total, r.anon) }

func rssOf(pid int) rss {
	var r rss
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(status), "\n") {
		name, v, _ := strings.Cut(l, ":")
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.Atoi(f[0])
		switch name {
		case "VmRSS":
			r.total = n
		case "RssAnon":
			r.anon = n
		}
	}
	return r
}

// flowRSS runs `slurmrun run` with a command that sleeps and reads the
// resident sets of its two processes meanwhile: the init and the job.
func flowRSS(b *testing.B) (initMem, jobMem rss) {
	tr := newTree(b)
	tr.env["DISAGG_SERVING_TYPE"] = "GEN_0"
	tr.env["perfMode"] = "false"
	tr.env["pytestCommand"] = "sleep 30"
	cmd, o, e := start(b, tr.env, "run")
	defer func() { killTree(cmd.Process.Pid); cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(o.String(), "Full Command:") {
		if time.Now().After(deadline) {
			b.Fatalf("the flow never reached pytest:\n%s\n%s", o, e)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second)
	job := childOf(b, cmd.Process.Pid)
	return rssOf(cmd.Process.Pid), rssOf(job)
}

// BenchmarkInitVersusTini measures slurmrun exec and Debian's tini side by
// side: signal-forward latency, 10 000 orphans reaped, idle memory and
// wake-ups, and prints the table with the ratios and targets.
func BenchmarkInitVersusTini(b *testing.B) {
	dir, _, script := initEnv(b)
	latScript := filepath.Join(dir, "latency.py")
	must.Do(b, os.WriteFile(latScript, []byte(latencyHelper), 0o644))
	ins := inits(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		lat := forwardLatencies(b, ins, dir, latScript, 41)
		reap := map[string]time.Duration{}
		zombies := map[string]string{}
		mem := map[string]rss{}
		wake := map[string]float64{}
		for _, in := range ins {
			reap[in.name], zombies[in.name] = reapOrphans(b, in, dir, script, 10000)
			mem[in.name], wake[in.name] = idle(b, in, 3*time.Second)
		}
		fmt.Printf("\n%-28s %22s %22s %10s %s\n", "measure", "tini", "slurmrun", "ratio", "target")
		ratio := float64(lat["slurmrun"]) / float64(lat["tini"])
		fmt.Printf("%-28s %22s %22s %10.2f <= 1.5x tini: %s\n", "SIGTERM forward latency", lat["tini"].Round(time.Microsecond),
			lat["slurmrun"].Round(time.Microsecond), ratio, verdict(ratio <= 1.5))
		fmt.Printf("%-28s %22s %22s %10.2f\n", "10000 orphans reaped (time)", reap["tini"].Round(time.Millisecond),
			reap["slurmrun"].Round(time.Millisecond), float64(reap["slurmrun"])/float64(reap["tini"]))
		fmt.Printf("%-28s %22s %22s %10s = 0: %s\n", "zombies left", zombies["tini"], zombies["slurmrun"], "",
			verdict(zombies["slurmrun"] == "zombies=0"))
		fmt.Printf("%-28s %22s %22s %10.2f <= 5 MB: %s\n", "idle RSS (exec's init)", mem["tini"], mem["slurmrun"],
			float64(mem["slurmrun"].total)/float64(mem["tini"].total), verdict(mem["slurmrun"].total <= 5*1024))
		fmt.Printf("%-28s %20.2f/s %20.2f/s %10s = 0/s: %s\n", "idle wake-ups", wake["tini"], wake["slurmrun"], "",
			verdict(wake["slurmrun"] == 0))
		initMem, jobMem := flowRSS(b)
		fmt.Printf("%-28s %22s %22s %10s <= 5 MB: %s\n", "run: the init's RSS", "", initMem, "", verdict(initMem.total <= 5*1024))
		fmt.Printf("%-28s %22s %22s %10s (reported)\n", "run: the job's RSS", "", jobMem, "")
		b.ReportMetric(ratio, "latency-ratio")
	}
}

func verdict(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISSED"
}
