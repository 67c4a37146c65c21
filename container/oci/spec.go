package oci

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/slurmrun/slurmrun/internal/atomicfile"
)

// SpecOptions describe an OCI bundle that runs the flow.
type SpecOptions struct {
	Args     []string // the container's command, e.g. [/usr/local/bin/slurmrun run]
	Env      []string // the job's environment
	Cwd      string
	Binds    []Bind // host directories the job needs, e.g. jobWorkspace and resourcePathNode
	ShmBytes int64  // size of /dev/shm; NCCL and PyTorch's shared memory need far more than 64 MB
	Terminal bool
	Hostname string
	// NvidiaHook is nvidia-container-runtime-hook's path, or empty.
	NvidiaHook string
}

// Bind is a bind mount.
type Bind struct {
	Source, Destination string
	ReadOnly            bool
}

// ParseBind reads SRC[:DST][:ro].
func ParseBind(s string) (Bind, error) {
	parts := strings.Split(s, ":")
	b := Bind{Source: parts[0], Destination: parts[0]}
	switch {
	case len(parts) == 2 && parts[1] == "ro":
		b.ReadOnly = true
	case len(parts) >= 2:
		b.Destination = parts[1]
		if len(parts) == 3 && parts[2] == "ro" {
			b.ReadOnly = true
		} else if len(parts) > 2 {
			return Bind{}, fmt.Errorf("bind %q: want SRC[:DST][:ro]", s)
		}
	}
	if !filepath.IsAbs(b.Source) || !filepath.IsAbs(b.Destination) {
		return Bind{}, fmt.Errorf("bind %q: paths must be absolute", s)
	}
	return b, nil
}

// Rlimits LLM jobs need: pinned memory for NCCL and the CUDA IPC paths
// (memlock unlimited), a large stack, many open files. Each is capped at
// the caller's own hard limit, since raising a hard limit needs a privilege
// the runtime may not have.
func jobRlimits() []specs.POSIXRlimit {
	want := []struct {
		name     string
		resource int
		value    uint64
	}{
		{"RLIMIT_MEMLOCK", unix.RLIMIT_MEMLOCK, unix.RLIM_INFINITY},
		{"RLIMIT_STACK", unix.RLIMIT_STACK, 64 << 20},
		{"RLIMIT_NOFILE", unix.RLIMIT_NOFILE, 1 << 20},
	}
	var out []specs.POSIXRlimit
	for _, w := range want {
		v := w.value
		var cur unix.Rlimit
		if err := unix.Getrlimit(w.resource, &cur); err == nil && cur.Max < v {
			v = cur.Max
		}
		out = append(out, specs.POSIXRlimit{Type: w.name, Hard: v, Soft: v})
	}
	return out
}

// SpecVersion is the ociVersion written: every field NewSpec sets exists in
// runtime-spec 1.0.2, and runtimes still deployed (crun 1.8 in Debian 12)
// refuse the library's newer version string.
const SpecVersion = "1.0.2"

// NewSpec builds the OCI runtime configuration for the flow.
func NewSpec(o SpecOptions) *specs.Spec {
	caps := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	mounts := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc"},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=" + strconv.FormatInt(o.ShmBytes, 10)}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"}},
	}
	for _, b := range o.Binds {
		opts := []string{"rbind", "rprivate"}
		if b.ReadOnly {
			opts = append(opts, "ro")
		}
		mounts = append(mounts, specs.Mount{Destination: b.Destination, Type: "bind", Source: b.Source, Options: opts})
	}
	cwd := o.Cwd
	if cwd == "" {
		cwd = "/"
	}
	s := &specs.Spec{
		Version:  SpecVersion,
		Hostname: o.Hostname,
		Root:     &specs.Root{Path: "rootfs"},
		Process: &specs.Process{
			Terminal: o.Terminal,
			User:     specs.User{UID: uint32(os.Getuid()), GID: uint32(os.Getgid())},
			Args:     o.Args,
			Env:      o.Env,
			Cwd:      cwd,
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			Rlimits:         jobRlimits(),
			NoNewPrivileges: true,
		},
		Mounts: mounts,
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace}},
			MaskedPaths: []string{"/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
				"/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"},
			ReadonlyPaths: []string{"/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
	if o.Hostname == "" {
		// Without a hostname of its own the UTS namespace would be empty-named.
		s.Hostname, _ = os.Hostname()
	}
	if o.NvidiaHook != "" {
		// What NVIDIA's own runtime wrapper injects: the legacy prestart hook.
		s.Hooks = &specs.Hooks{Prestart: []specs.Hook{{Path: o.NvidiaHook, Args: []string{filepath.Base(o.NvidiaHook), "prestart"}}}}
	}
	return s
}

// FindNvidiaHook returns nvidia-container-runtime-hook's path when installed.
func FindNvidiaHook() string {
	p, err := exec.LookPath("nvidia-container-runtime-hook")
	if err != nil {
		return ""
	}
	return p
}

// ReadSpec reads BUNDLE/config.json.
func ReadSpec(bundle string) (*specs.Spec, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, err
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("%s/config.json: %w", bundle, err)
	}
	return &s, nil
}

// WriteSpec writes DIR/config.json through a temporary name.
func WriteSpec(dir string, s *specs.Spec) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// 0600: it holds the job's whole environment, secrets included.
	return atomicfile.WriteFile(filepath.Join(dir, "config.json"), append(data, '\n'), 0o600)
}

// Finding is one thing a bundle lacks for the flow.
type Finding struct {
	Problem bool // false: a warning
	Text    string
}

// CheckSpec says what the flow would miss in a bundle.
func CheckSpec(bundle string, s *specs.Spec, required, directories []string) []Finding {
	var out []Finding
	problem := func(format string, args ...any) { out = append(out, Finding{true, fmt.Sprintf(format, args...)}) }
	warn := func(format string, args ...any) { out = append(out, Finding{false, fmt.Sprintf(format, args...)}) }
	if s.Process == nil {
		problem("process: missing")
		return out
	}
	root := ""
	if s.Root != nil {
		root = s.Root.Path
		if !filepath.IsAbs(root) {
			root = filepath.Join(bundle, root)
		}
		if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
			problem("root.path %s: not a directory", root)
		}
	}
	if len(s.Process.Args) == 0 {
		problem("process.args: empty")
	} else if !strings.Contains(strings.Join(s.Process.Args, " "), "slurmrun") {
		warn("process.args %q do not run slurmrun: nothing reaps, forwards signals or writes the result file", s.Process.Args)
	} else if root != "" && filepath.IsAbs(s.Process.Args[0]) {
		if why := missing(root, s.Mounts, s.Process.Args[0]); why != "" {
			problem("process.args[0] %s: %s", s.Process.Args[0], why)
		}
	}
	env := map[string]string{}
	for _, kv := range s.Process.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	for _, name := range required {
		if env[name] == "" {
			problem("process.env: %s is not set", name)
		}
	}
	for _, name := range directories {
		if p := env[name]; p != "" && root != "" {
			if why := missing(root, s.Mounts, p); why != "" {
				problem("mounts: %s=%s: %s", name, p, why)
			}
		}
	}
	if root != "" {
		for i, m := range s.Mounts {
			// A mount point under an earlier mount is that mount's business.
			if covering(s.Mounts[:i], m.Destination) >= 0 {
				continue
			}
			if _, err := os.Lstat(filepath.Join(root, m.Destination)); err != nil {
				warn("mounts: %s is not a directory in the rootfs: the runtime creates it, and two tasks sharing the rootfs can race on that (cannot mkdir … File exists)", m.Destination)
			}
		}
	}
	shm := false
	for _, m := range s.Mounts {
		if m.Destination != "/dev/shm" {
			continue
		}
		shm = true
		for _, o := range m.Options {
			if v, ok := strings.CutPrefix(o, "size="); ok {
				if n, ok := ParseSize(v); ok && n < 1<<30 {
					warn("/dev/shm is %s: NCCL and PyTorch data loaders want gigabytes", v)
				}
			}
		}
	}
	if !shm {
		warn("mounts: no /dev/shm of its own (the runtime default is 64 MB)")
	}
	limits := map[string]uint64{}
	for _, r := range s.Process.Rlimits {
		limits[r.Type] = r.Soft
	}
	// What spec writes is capped at the caller's hard limit: no warning
	// about a limit that could not be higher here.
	if v, ok := limits["RLIMIT_MEMLOCK"]; (!ok || v != unix.RLIM_INFINITY) && hardLimit(unix.RLIMIT_MEMLOCK) == unix.RLIM_INFINITY {
		warn("rlimits: RLIMIT_MEMLOCK is not unlimited (pinned memory for NCCL)")
	}
	if v := limits["RLIMIT_NOFILE"]; v < min(65536, hardLimit(unix.RLIMIT_NOFILE)) {
		warn("rlimits: RLIMIT_NOFILE %d is below 65536", v)
	}
	if s.Process.Terminal {
		warn("process.terminal is true: Slurm forces it off, and a runtime without a terminal to hand fails")
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Problem && !out[j].Problem })
	return out
}

// covering returns the index of the mount that path is under (the last of
// the deepest destinations, as the runtime mounts them in order), or -1.
func covering(mounts []specs.Mount, path string) int {
	best, depth := -1, -1
	for i, m := range mounts {
		d := filepath.Clean(m.Destination)
		if path == d || d == "/" || strings.HasPrefix(path, d+"/") {
			if len(d) >= depth {
				best, depth = i, len(d)
			}
		}
	}
	return best
}

// missing says why path will not be there in the container, or "": it is
// looked for where the container will see it, through the mount that
// covers it (a bind's source on the host) or in the rootfs. A tmpfs, or any
// mount other than a bind, starts empty.
func missing(root string, mounts []specs.Mount, path string) string {
	path = filepath.Clean(path)
	i := covering(mounts, path)
	if i < 0 {
		if _, err := os.Stat(filepath.Join(root, path)); err != nil {
			return "not in the rootfs"
		}
		return ""
	}
	m := mounts[i]
	if !isBind(m) {
		if path == filepath.Clean(m.Destination) {
			return ""
		}
		return fmt.Sprintf("under the %s mount at %s, which starts empty: bind it", m.Type, m.Destination)
	}
	host := filepath.Join(m.Source, strings.TrimPrefix(path, filepath.Clean(m.Destination)))
	if _, err := os.Stat(host); err != nil {
		return fmt.Sprintf("the bind of %s at %s hides the rootfs there, and %s is not on the host", m.Source, m.Destination, host)
	}
	return ""
}

func isBind(m specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

func hardLimit(resource int) uint64 {
	var l unix.Rlimit
	if err := unix.Getrlimit(resource, &l); err != nil {
		return unix.RLIM_INFINITY
	}
	return l.Max
}

// ParseSize reads a size as tmpfs takes it: bytes, or with k, m or g.
func ParseSize(v string) (int64, bool) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(v, "k"), strings.HasSuffix(v, "K"):
		mult = 1 << 10
	case strings.HasSuffix(v, "m"), strings.HasSuffix(v, "M"):
		mult = 1 << 20
	case strings.HasSuffix(v, "g"), strings.HasSuffix(v, "G"):
		mult = 1 << 30
	}
	if mult != 1 {
		v = v[:len(v)-1]
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n * mult, true
}
