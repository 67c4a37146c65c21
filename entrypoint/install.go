package entrypoint

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/slurmrun/slurmrun/container"
	"github.com/slurmrun/slurmrun/internal/atomicfile"
)

func skipInstall(f *Flow) string {
	if !f.cfg.Aggregated() {
		return "disaggregated stage: a separate `slurmrun install` step installs"
	}
	return ""
}

// installInline is slurm_install.sh's slurm_install_setup, run by the flow
// on aggregated stages.
func installInline(ctx context.Context, f *Flow) error { return f.Install(ctx) }

// InstallLock is the file local rank 0 writes when the install has ended:
// "ok", or "failed: <why>" so that the waiting ranks fail at once instead of
// waiting out their bound. The restart count keeps a requeued job from
// finding the previous attempt's lock (slurm_install.sh polls its lock without a bound).
func (f *Flow) InstallLock() string {
	return filepath.Join(f.cfg.ResourcePathNode, fmt.Sprintf("install_lock_job_%s_node_%d_restart_%d.lock",
		f.cfg.JobID, f.cfg.NodeID, f.cfg.RestartCount))
}

// Install runs the install on local rank 0 and waits for it on the others.
// The lock's first line names this run (runIdentity): a lock left by an
// earlier run with the same job id (`local` outside Slurm, a reused id) is
// not this run's, and the waiting ranks go on waiting for rank 0's.
func (f *Flow) Install(ctx context.Context) error {
	lock := f.InstallLock()
	run := runIdentity()
	if f.cfg.LocalRank != 0 {
		fmt.Fprintf(f.out, "(Waiting for install lock) Current directory: %s\n", f.cfg.ResourcePathNode)
		var state string
		err := poll(ctx, f.cfg.InstallTimeout, func() (bool, error) {
			data, err := os.ReadFile(lock)
			if errors.Is(err, os.ErrNotExist) {
				return false, nil
			}
			if err != nil {
				return false, err
			}
			owner, rest, _ := strings.Cut(string(data), "\n")
			if owner != "run "+run {
				return false, nil // an earlier run's
			}
			state = rest
			return true, nil
		})
		if err != nil {
			return stepFailed(1, "waiting for local rank 0 to install (%s): %w", lock, err)
		}
		if s := strings.TrimSpace(state); s != "ok" {
			return stepFailed(1, "local rank 0's install %s", s)
		}
		return nil
	}
	if err := os.Remove(lock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return stepFailed(1, "remove stale install lock: %w", err)
	}
	err := f.installSteps(ctx)
	state := "ok\n"
	if err != nil {
		state = "failed: " + err.Error() + "\n"
	} else {
		fmt.Fprintf(f.out, "(Writing install lock) Current directory: %s\n", f.cfg.ResourcePathNode)
	}
	if werr := atomicfile.WriteFile(lock, []byte("run "+run+"\n"+f.red.String(state)), 0o644); werr != nil && err == nil {
		err = stepFailed(1, "install lock: %w", werr)
	}
	return err
}

// runIdentity names this run of the job's tasks on this node: the process
// that started them (slurmstepd for a step's tasks, whatever started the
// local ranks otherwise), by pid and start time, so that a restarted or
// reused process id does not match. slurmrun runs as the init's child, so
// that is the init's parent.
func runIdentity() string {
	starter := os.Getppid()
	if st, err := container.Stat(starter); err == nil {
		starter = st.PPid
	}
	st, err := container.Stat(starter)
	if err != nil {
		return strconv.Itoa(starter)
	}
	return fmt.Sprintf("%d@%s", starter, st.StartTime)
}

func (f *Flow) installSteps(ctx context.Context) error {
	archive := filepath.Join(f.cfg.ResourcePathNode, f.cfg.TarName)
	if err := f.retry(ctx, "download "+f.cfg.LLMTarfile, f.cfg.DownloadTimeout, func(ctx context.Context) error {
		return f.download(ctx, archive)
	}); err != nil {
		return err
	}
	if err := ExtractTarball(archive, f.cfg.ResourcePathNode); err != nil {
		return stepFailed(1, "extract %s: %w", archive, err)
	}
	python, err := exec.LookPath(f.cfg.Python)
	if err != nil {
		return stepFailed(127, "%s: %w", f.cfg.Python, err)
	}
	fmt.Fprintln(f.out, python)
	if err := f.installCommand(ctx, 0, f.cfg.ResourcePathNode, python, "--version"); err != nil {
		return err
	}
	if len(f.cfg.AptPackages) > 0 {
		argv := append([]string{"apt-get", "install", "-y"}, f.cfg.AptPackages...)
		if err := f.installCommand(ctx, f.cfg.PipTimeout, f.cfg.ResourcePathNode, argv...); err != nil {
			return err
		}
	}
	uuids, err := f.gpuInfo(ctx)
	if err != nil {
		return err
	}
	pip := append([]string{python, "-m", "pip", "install", "--retries", "10"}, f.cfg.PipArgs...)
	if strings.Contains(f.cfg.PytestCommand, "--run-ray") {
		if err := f.installCommand(ctx, f.cfg.PipTimeout, f.cfg.ResourcePathNode, append(pip, "ray[default]")...); err != nil {
			return err
		}
	}
	if err := f.installCommand(ctx, f.cfg.PipTimeout, f.srcDir, append(pip, "-r", "requirements-dev.txt")...); err != nil {
		return err
	}
	wheels, _ := filepath.Glob(filepath.Join(f.cfg.ResourcePathNode, "TensorRT-LLM", "tensorrt_llm-*.whl"))
	if len(wheels) == 0 {
		return stepFailed(1, "no TensorRT-LLM/tensorrt_llm-*.whl in %s after extracting %s", f.cfg.ResourcePathNode, f.cfg.TarName)
	}
	if err := f.installCommand(ctx, f.cfg.PipTimeout, f.cfg.ResourcePathNode,
		append(append(pip, "--force-reinstall", "--no-deps"), wheels...)...); err != nil {
		return err
	}
	host := f.cfg.HostNodeName
	if host == "" {
		host, _ = os.Hostname()
	}
	fmt.Fprintf(f.out, "HOST_NODE_NAME = %s ; GPU_UUIDS = %s ; STAGE_NAME = %s\n", host, uuids, f.cfg.StageName)
	return nil
}

// gpuInfo runs the nvidia-smi calls when configured (auto: when present)
// and returns the GPU UUIDs as the install line prints them ("u1,u2,").
func (f *Flow) gpuInfo(ctx context.Context) (string, error) {
	if f.cfg.NvidiaSMI == "off" {
		return "", nil
	}
	if _, err := exec.LookPath("nvidia-smi"); err != nil && f.cfg.NvidiaSMI == "auto" {
		f.log.Info("nvidia-smi is not on PATH: GPU report skipped")
		return "", nil
	}
	for _, argv := range [][]string{{"nvidia-smi"}, {"nvidia-smi", "-q"}, {"nvidia-smi", "topo", "-m"}} {
		if err := f.installCommand(ctx, 0, f.cfg.ResourcePathNode, argv...); err != nil {
			return "", err
		}
	}
	cmd := exec.Command("nvidia-smi", "--query-gpu=uuid", "--format=csv,noheader")
	cmd.Env, cmd.Stderr = f.env.List(), f.stderr
	out, err := f.sup.Output(ctx, cmd, f.cfg.Grace)
	if err != nil {
		return "", stepFailed(1, "nvidia-smi --query-gpu=uuid: %w", err)
	}
	var b strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if u := strings.TrimSpace(sc.Text()); u != "" {
			b.WriteString(u + ",")
		}
	}
	return b.String(), nil
}

// installCommand runs argv with retries, each attempt bounded by limit
// (0: unbounded), with slurmrun's output.
func (f *Flow) installCommand(ctx context.Context, limit time.Duration, dir string, argv ...string) error {
	name := strings.Join(argv, " ")
	return f.retry(ctx, name, limit, func(ctx context.Context) error {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = f.env.List(), dir, f.stdout, f.stderr
		if cmd.Err != nil {
			return stepFailed(127, "%s: %w", argv[0], cmd.Err)
		}
		st, err := f.sup.RunContext(ctx, cmd, f.cfg.Grace)
		if err != nil {
			return stepFailed(st.Code, "%s: %w", name, err)
		}
		if st.Code != 0 {
			return stepFailed(st.Code, "%s: %s", name, st)
		}
		return nil
	})
}

// retry runs attempt up to InstallRetries times. Unlike upstream's
// retry_command (slurm_install.sh), which returns 0 after its last failed
// attempt, the last failure is returned, never swallowed.
func (f *Flow) retry(ctx context.Context, what string, limit time.Duration, attempt func(context.Context) error) error {
	tries := int(f.cfg.InstallRetries)
	var err error
	for i := 1; i <= tries; i++ {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if limit > 0 {
			actx, cancel = context.WithTimeoutCause(ctx, limit, fmt.Errorf("%w after %s", errTimeout, limit))
		}
		err = attempt(actx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		fmt.Fprintf(f.out, "Command failed with exit code %d. Attempt %d/%d.\n", codeOf(err), i, tries)
		f.log.WithError(err).WithField("attempt", fmt.Sprintf("%d/%d", i, tries)).Warn("install command failed")
		if i < tries {
			fmt.Fprintf(f.out, "Retrying in %d seconds...\n", int(f.cfg.RetryDelay.Seconds()))
			select {
			case <-ctx.Done():
				return err
			case <-time.After(f.cfg.RetryDelay):
			}
		}
	}
	fmt.Fprintln(f.out, "Command failed after max attempts.")
	return err
}

// download fetches llmTarfile (http, https, file URL or a path) to dest
// through a temporary name, so a broken attempt never leaves a partial
// archive under the real name (and a retry never saves "name.1").
func (f *Flow) download(ctx context.Context, dest string) error {
	src, err := openSource(ctx, f.cfg.LLMTarfile)
	if err != nil {
		return stepFailed(1, "download %s: %w", f.cfg.LLMTarfile, err)
	}
	defer src.Close()
	err = atomicfile.Write(dest, 0o644, func(w io.Writer) error {
		_, err := io.Copy(w, src)
		return err
	})
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			err = cause
		}
		return stepFailed(1, "download %s: %w", f.cfg.LLMTarfile, err)
	}
	return nil
}

func openSource(ctx context.Context, location string) (io.ReadCloser, error) {
	u, err := url.Parse(location)
	if err != nil || u.Scheme == "" {
		return os.Open(location)
	}
	switch u.Scheme {
	case "file":
		return os.Open(u.Path)
	case "http", "https":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, location, nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, fmt.Errorf("HTTP %s", resp.Status)
		}
		return resp.Body, nil
	}
	return nil, fmt.Errorf("unsupported URL scheme %q", u.Scheme)
}

// ExtractTarball unpacks a tar or tar.gz archive into dir. No entry may land
// outside dir: absolute names, ".." and symbolic links that point out of dir
// are refused, and writes go through an os.Root, which will not follow a
// link out of it.
func ExtractTarball(archive, dir string) error {
	file, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer file.Close()
	br := bufio.NewReader(file)
	var r io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return err
		}
		defer gz.Close()
		r = gz
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name, err := entryName(hdr.Name)
		if err != nil {
			return err
		}
		if name == "." {
			continue
		}
		if parent := path.Dir(name); parent != "." {
			if err := root.MkdirAll(parent, 0o755); err != nil {
				return fmt.Errorf("%s: %w", hdr.Name, err)
			}
		}
		mode := fs.FileMode(hdr.Mode).Perm()
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, mode|0o700); err != nil {
				return fmt.Errorf("%s: %w", hdr.Name, err)
			}
		case tar.TypeReg:
			if err := writeEntry(root, name, mode, tr); err != nil {
				return fmt.Errorf("%s: %w", hdr.Name, err)
			}
		case tar.TypeSymlink:
			target := hdr.Linkname
			if path.IsAbs(target) || !staysInRoot(root, path.Dir(name), target) {
				return fmt.Errorf("%s: symbolic link to %s leaves %s", hdr.Name, target, dir)
			}
			root.Remove(name)
			if err := root.Symlink(target, name); err != nil {
				return fmt.Errorf("%s: %w", hdr.Name, err)
			}
		case tar.TypeLink:
			target, err := entryName(hdr.Linkname)
			if err != nil {
				return err
			}
			root.Remove(name)
			if err := root.Link(target, name); err != nil {
				return fmt.Errorf("%s: %w", hdr.Name, err)
			}
		default:
			// Devices, FIFOs and the like have no place in a source tarball.
		}
	}
}

// staysInRoot reports whether target, a link's text in directory dir,
// resolves inside root, following the links already extracted as the kernel
// would: `a -> .` then `b -> a/../outside` leaves the root although the
// text of b alone does not.
func staysInRoot(root *os.Root, dir, target string) bool {
	var at []string // the resolved path so far, relative to root
	pending := append(strings.Split(dir, "/"), strings.Split(target, "/")...)
	for hops := 0; len(pending) > 0; {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(at) == 0 {
				return false
			}
			at = at[:len(at)-1]
			continue
		}
		at = append(at, c)
		fi, err := root.Lstat(path.Join(at...))
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			continue // not there yet, or not a link: a name like any other
		}
		if hops++; hops > 40 { // the kernel's limit: a loop
			return false
		}
		link, err := root.Readlink(path.Join(at...))
		if err != nil || path.IsAbs(link) {
			return false
		}
		at = at[:len(at)-1]
		pending = append(strings.Split(link, "/"), pending...)
	}
	return true
}

func writeEntry(root *os.Root, name string, mode fs.FileMode, r io.Reader) error {
	root.Remove(name) // replace, never write through an existing link
	out, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, r)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// entryName cleans an archive member name, refusing ones that leave the root.
func entryName(name string) (string, error) {
	clean := path.Clean(strings.TrimPrefix(name, "./"))
	if path.IsAbs(name) || escapes(clean) {
		return "", fmt.Errorf("archive member %q leaves the target directory", name)
	}
	return clean, nil
}

func escapes(p string) bool {
	p = path.Clean(p)
	return p == ".." || strings.HasPrefix(p, "../")
}
