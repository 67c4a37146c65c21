package entrypoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/slurmrun/slurmrun/config"
	"github.com/slurmrun/slurmrun/container"
	"github.com/slurmrun/slurmrun/internal/atomicfile"
	"github.com/slurmrun/slurmrun/internal/fetch"
	"github.com/slurmrun/slurmrun/internal/tarball"
	"github.com/slurmrun/slurmrun/proc"
)

func skipInstall(f *Flow) string {
	if !f.cfg.Installs() {
		return "disaggregated stage: a separate `slurmrun install` step installs"
	}
	return ""
}

// installInline is slurm_install.sh's slurm_install_setup, run by the flow
// on aggregated stages.
func installInline(ctx context.Context, f *Flow) error { return f.Install(ctx) }

// recipe is what one version's installer does where versions differ.
type recipe struct {
	// requirements are the files under TensorRT-LLM/src pip installs.
	requirements []string
	// ray is what --run-ray in the command adds.
	ray string
	// stagedDownload: the archive (and an earlier attempt's download) is
	// removed first, and the download goes to
	// <archive>.tmp.<job>.<node>, renamed when complete.
	stagedDownload bool
	// relativeWheel: the wheel is named relative to resourcePathNode, as
	// the installer's glob does (pip prints it so).
	relativeWheel bool
	// gaveUp is retry_command's line after the last failed attempt.
	gaveUp string
	// announceToken: local rank 0 says that GITHUB_CLONE_TOKEN
	// authenticates github.com (configureGit has configured it).
	announceToken bool
}

// recipes are the installers of the versions, by the step variant.
func recipes() map[config.Step]recipe {
	return map[config.Step]recipe{
		config.InstallSeed: {requirements: []string{"requirements-dev.txt"}, ray: "ray[default]", gaveUp: "Command failed after max attempts."},
		config.InstallMain: {requirements: []string{"requirements-dev.txt", "requirements-grpc-smg.txt"}, ray: "ray[default]==2.55.1",
			stagedDownload: true, relativeWheel: true, gaveUp: "Command failed after %d attempts.", announceToken: true},
	}
}

func (f *Flow) recipe() recipe {
	all := recipes()
	for _, s := range f.cfg.Version.Steps {
		if r, ok := all[s]; ok {
			return r
		}
	}
	return all[config.InstallSeed] // `slurmrun install` of a version without an install step
}

// InstallLock is the file local rank 0 writes when the install has ended:
// "ok", or "failed: <why>" so that the waiting ranks fail at once instead of
// waiting out their bound. The seed's name carries the restart count, which
// keeps a requeued job from finding the previous attempt's lock; main's is
// upstream's, and the run identity in it tells an earlier run's lock apart.
func (f *Flow) InstallLock() string {
	name := fmt.Sprintf("install_lock_job_%s_node_%d", f.cfg.JobID, f.cfg.NodeID)
	if f.cfg.Version.Lock == config.LockPerRestart {
		name += fmt.Sprintf("_restart_%d", f.cfg.RestartCount)
	}
	return filepath.Join(f.cfg.ResourcePathNode, name+".lock")
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
	r := f.recipe()
	if token, _ := f.env.Get("GITHUB_CLONE_TOKEN"); r.announceToken && token != "" {
		fmt.Fprintln(f.out, "Configured authenticated github.com access via git insteadOf.")
	}
	if err := os.Remove(lock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return stepFailed(1, "remove stale install lock: %w", err)
	}
	err := f.installSteps(ctx, r)
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

func (f *Flow) installSteps(ctx context.Context, r recipe) error {
	archive := filepath.Join(f.cfg.ResourcePathNode, f.cfg.TarName)
	download := func(ctx context.Context) error { return f.download(ctx, archive, "") }
	if r.stagedDownload {
		staged := fmt.Sprintf("%s.tmp.%s.%d", archive, f.cfg.JobID, f.cfg.NodeID)
		for _, p := range []string{archive, staged} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return stepFailed(1, "remove %s: %w", p, err)
			}
		}
		download = func(ctx context.Context) error { return f.download(ctx, archive, staged) }
	}
	if err := f.retry(ctx, r, "download "+f.cfg.LLMTarfile, f.cfg.DownloadTimeout, download); err != nil {
		return err
	}
	if err := tarball.Extract(archive, f.cfg.ResourcePathNode); err != nil {
		return stepFailed(1, "extract %s: %w", archive, err)
	}
	python, err := exec.LookPath(f.cfg.Python)
	if err != nil {
		return stepFailed(127, "%s: %w", f.cfg.Python, err)
	}
	fmt.Fprintln(f.out, python)
	if err := f.installCommand(ctx, r, 0, f.cfg.ResourcePathNode, python, "--version"); err != nil {
		return err
	}
	if len(f.cfg.AptPackages) > 0 {
		argv := append([]string{"apt-get", "install", "-y"}, f.cfg.AptPackages...)
		if err := f.installCommand(ctx, r, f.cfg.PipTimeout, f.cfg.ResourcePathNode, argv...); err != nil {
			return err
		}
	}
	uuids, err := f.gpuInfo(ctx)
	if err != nil {
		return err
	}
	pip := append([]string{python, "-m", "pip", "install", "--retries", "10"}, f.cfg.PipArgs...)
	if strings.Contains(f.cfg.PytestCommand, "--run-ray") {
		if err := f.installCommand(ctx, r, f.cfg.PipTimeout, f.cfg.ResourcePathNode, append(pip, r.ray)...); err != nil {
			return err
		}
	}
	for _, req := range r.requirements {
		if err := f.installCommand(ctx, r, f.cfg.PipTimeout, f.srcDir, append(pip, "-r", req)...); err != nil {
			return err
		}
	}
	wheels, _ := filepath.Glob(filepath.Join(f.cfg.ResourcePathNode, "TensorRT-LLM", "tensorrt_llm-*.whl"))
	if len(wheels) == 0 {
		return stepFailed(1, "no TensorRT-LLM/tensorrt_llm-*.whl in %s after extracting %s", f.cfg.ResourcePathNode, f.cfg.TarName)
	}
	if r.relativeWheel {
		for i, w := range wheels {
			wheels[i] = filepath.Join("TensorRT-LLM", filepath.Base(w))
		}
	}
	if err := f.installCommand(ctx, r, f.cfg.PipTimeout, f.cfg.ResourcePathNode,
		append(append(pip, "--force-reinstall", "--no-deps"), wheels...)...); err != nil {
		return err
	}
	host := f.cfg.HostNodeName
	if host == "" {
		host = fqdn(ctx)
	}
	fmt.Fprintf(f.out, "HOST_NODE_NAME = %s ; GPU_UUIDS = %s ; STAGE_NAME = %s\n", host, uuids, f.cfg.StageName)
	return nil
}

// gpuInfo runs the installer's `nvidia-smi && nvidia-smi -q && nvidia-smi
// topo -m` when configured (auto: when present) and returns the GPU UUIDs
// as the install line prints them ("u1,u2,"), read from the output of
// `nvidia-smi -q` it printed. As in the installer, the chain stops at the
// first failure and only the last command's failure fails the install
// (errexit spares the others of an && list); none is retried.
func (f *Flow) gpuInfo(ctx context.Context) (string, error) {
	if f.cfg.NvidiaSMI == "off" {
		return "", nil
	}
	if _, err := exec.LookPath("nvidia-smi"); err != nil && f.cfg.NvidiaSMI == "auto" {
		f.log.Info("nvidia-smi is not on PATH: GPU report skipped")
		return "", nil
	}
	var query bytes.Buffer
	chain := [][]string{{"nvidia-smi"}, {"nvidia-smi", "-q"}, {"nvidia-smi", "topo", "-m"}}
	for i, argv := range chain {
		var out io.Writer = f.stdout
		if i == 1 {
			out = io.MultiWriter(f.stdout, &query)
		}
		st, err := f.runWith(ctx, f.env, f.cfg.ResourcePathNode, out, argv...)
		if err = commandFailed(argv, st, err); err == nil {
			continue
		}
		if i == len(chain)-1 || proc.TerminatingSignal(ctx) != 0 {
			return "", err
		}
		f.log.WithError(err).Warn("nvidia-smi failed: the GPU report stops here")
		if i == 0 {
			// The UUIDs come from a `nvidia-smi -q` of their own then.
			query.Reset()
			_, _ = f.runWith(ctx, f.env, f.cfg.ResourcePathNode, &query, "nvidia-smi", "-q")
		}
		break
	}
	return gpuUUIDs(query.String()), nil
}

// gpuUUIDs is `grep "GPU UUID" | awk '{print $4}' | tr '\n' ','` of
// `nvidia-smi -q`'s output.
func gpuUUIDs(query string) string {
	var b strings.Builder
	for _, line := range strings.Split(query, "\n") {
		if !strings.Contains(line, "GPU UUID") {
			continue
		}
		if fields := strings.Fields(line); len(fields) >= 4 {
			b.WriteString(fields[3])
		}
		b.WriteByte(',')
	}
	return b.String()
}

// fqdn is `hostname -f || hostname`: the canonical name of this host as
// the resolver gives it, else the host name. Bounded: a node whose DNS does
// not answer must not hold the install up.
func fqdn(ctx context.Context) string {
	host, _ := os.Hostname()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if cname, err := net.DefaultResolver.LookupCNAME(ctx, host); err == nil && cname != "" {
		return strings.TrimSuffix(cname, ".")
	}
	return host
}

// installCommand runs argv with retries, each attempt bounded by limit
// (0: unbounded), with slurmrun's output.
func (f *Flow) installCommand(ctx context.Context, r recipe, limit time.Duration, dir string, argv ...string) error {
	name := strings.Join(argv, " ")
	return f.retry(ctx, r, name, limit, func(ctx context.Context) error {
		st, err := f.runWith(ctx, f.env, dir, f.stdout, argv...)
		return commandFailed(argv, st, err)
	})
}

// commandFailed turns how a command ended into the step's error, nil when
// it exited 0: why it did not run or was stopped, or its status.
func commandFailed(argv []string, st proc.ExitStatus, err error) error {
	name := strings.Join(argv, " ")
	switch {
	case err != nil:
		return stepFailed(st.Code, "%s: %w", name, err)
	case st.Code != 0:
		return stepFailed(st.Code, "%s: %s", name, st)
	}
	return nil
}

// retry runs attempt up to InstallRetries times, with retry_command's
// lines. Unlike upstream's retry_command (bash_utils.sh), which prints exit
// code 0 and returns 0 after its last failed attempt, each attempt's code
// is printed and the last failure is returned, never swallowed.
func (f *Flow) retry(ctx context.Context, r recipe, what string, limit time.Duration, attempt func(context.Context) error) error {
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
		if errors.Is(err, errTimeout) {
			fmt.Fprintf(f.out, "Command timed out after %ds. Attempt %d/%d.\n", int(limit.Seconds()), i, tries)
		} else {
			fmt.Fprintf(f.out, "Command failed with exit code %d. Attempt %d/%d.\n", codeOf(err), i, tries)
		}
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
	if strings.Contains(r.gaveUp, "%d") {
		fmt.Fprintf(f.out, r.gaveUp+"\n", tries)
	} else {
		fmt.Fprintln(f.out, r.gaveUp)
	}
	return err
}

// download fetches llmTarfile to dest through a temporary name (staged,
// or a fresh one when "").
func (f *Flow) download(ctx context.Context, dest, staged string) error {
	if err := fetch.To(ctx, f.cfg.LLMTarfile, dest, staged); err != nil {
		if ctx.Err() != nil {
			err = context.Cause(ctx) // a cancel or the attempt's bound, not what it broke
		}
		return stepFailed(1, "download %s: %w", f.cfg.LLMTarfile, err)
	}
	return nil
}
