package container

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// SigExecCommand is the hidden subcommand through which a command starts
// when slurmrun inherited blocked or ignored signals: os/exec resets both
// (the Go runtime's handlers and mask are in place by then), so a
// trampoline re-creates them just before it execs the command, as tini does.
const SigExecCommand = "__sigexec"

// inherited is the signal state slurmrun was started with.
var inherited = readInheritedSignals()

type signalState struct {
	blocked uint64 // bit N-1 for signal N
	ignored uint64
}

// readInheritedSignals takes the runtime's own record when the build has it
// (`make build`: tag slurmrun_fwdsig). Otherwise it reads the mask of the
// main thread, which the runtime keeps as inherited apart from the signals
// it must receive itself (SIGTERM among them), and the ignored dispositions
// Go keeps (SIGHUP and SIGINT, as nohup sets them; the runtime replaces
// other inherited SIG_IGN dispositions before main runs).
func readInheritedSignals() signalState {
	if ignored, blocked, ok := runtimeSignalRecord(); ok {
		return signalState{blocked: blocked, ignored: ignored}
	}
	var st signalState
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return st
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "SigBlk:"); ok {
			st.blocked, _ = strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	for _, sig := range []syscall.Signal{unix.SIGHUP, unix.SIGINT} {
		if signal.Ignored(sig) {
			st.ignored |= 1 << (sig - 1)
		}
	}
	return st
}

// restoreSignals routes cmd through the trampoline when there is a signal
// state to restore; otherwise cmd starts directly.
func restoreSignals(cmd *exec.Cmd) {
	if inherited.blocked == 0 && inherited.ignored == 0 {
		return
	}
	args := []string{"slurmrun", SigExecCommand, strconv.FormatUint(inherited.blocked, 16),
		strconv.FormatUint(inherited.ignored, 16), "--", cmd.Path}
	cmd.Args = append(args, cmd.Args...)
	cmd.Path = "/proc/self/exe"
}

// SigExec is the trampoline: args are MASK IGNORED -- PATH ARGV...
// It never returns on success; on failure it returns the shell's exit code
// for a command that cannot be run (127 not found, 126 otherwise).
func SigExec(args []string) int {
	if len(args) < 5 || args[2] != "--" {
		fmt.Fprintln(os.Stderr, "slurmrun: bad trampoline arguments")
		return 126
	}
	blocked, err1 := strconv.ParseUint(args[0], 16, 64)
	ignored, err2 := strconv.ParseUint(args[1], 16, 64)
	if err1 != nil || err2 != nil {
		fmt.Fprintln(os.Stderr, "slurmrun: bad trampoline signal state")
		return 126
	}
	path, argv := args[3], args[4:]
	// The mask belongs to this thread; exec keeps it.
	runtime.LockOSThread()
	for sig := 1; sig < 65; sig++ {
		if ignored&(1<<(sig-1)) != 0 {
			signal.Ignore(syscall.Signal(sig))
		}
	}
	set := unix.Sigset_t{Val: [16]uint64{blocked}}
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, &set, nil); err != nil {
		fmt.Fprintf(os.Stderr, "slurmrun: restore signal mask: %v\n", err)
	}
	err := unix.Exec(path, argv, os.Environ())
	fmt.Fprintf(os.Stderr, "slurmrun: exec %s: %v\n", path, err)
	return StartFailureCode(err)
}
