package container

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SignalState is a signal mask and a set of ignored signals, bit N-1 for
// signal N, as /proc/PID/status shows them (SigBlk, SigIgn).
type SignalState struct {
	Blocked uint64
	Ignored uint64
}

// inherited is the state slurmrun was started with. It is read while the
// package initialises: before main, so before any signal.Notify of ours
// changes a disposition.
var inherited = readInherited()

// Inherited returns the signal state slurmrun was started with. Builds
// with the runtime's record (`make build`, tag slurmrun_fwdsig) have it
// exactly; others miss what the Go runtime changed before any Go code ran:
// the mask bits of the signals it must receive (SIGTERM, SIGINT, SIGHUP,
// SIGQUIT, the synchronous ones) and an inherited SIG_IGN of the signals it
// installs handlers for at start-up (all but SIGHUP, SIGINT and the stop
// signals).
func Inherited() SignalState { return inherited }

// Exact reports whether Inherited is read from the runtime's own record.
func Exact() bool { return runtimeRecordAvailable }

func readInherited() SignalState {
	var st SignalState
	// What the runtime did not touch is still the kernel's current
	// disposition: SIGHUP and SIGINT when ignored, and every signal it only
	// handles once os/signal asks (SIGTSTP, SIGTTIN, SIGTTOU, SIGCONT).
	for sig := 1; sig <= 64; sig++ {
		if kernelIgnores(sig) {
			st.Ignored |= 1 << (sig - 1)
		}
	}
	if ignored, blocked, ok := runtimeSignalRecord(); ok {
		st.Ignored |= ignored
		st.Blocked = blocked
		return st
	}
	var mask unix.Sigset_t
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, nil, &mask); err == nil {
		st.Blocked = mask.Val[0]
	}
	return st
}

// kernelIgnores reports whether sig's disposition is SIG_IGN now.
func kernelIgnores(sig int) bool {
	if sig == int(unix.SIGKILL) || sig == int(unix.SIGSTOP) {
		return false
	}
	// struct kernel_sigaction: the handler comes first; the rest (flags,
	// restorer, mask) fits in the words after it.
	var act [4]uint64
	_, _, errno := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), 0, uintptr(unsafe.Pointer(&act[0])), 8, 0, 0)
	return errno == 0 && act[0] == sigIgn
}

const (
	sigDfl = 0 // SIG_DFL
	sigIgn = 1 // SIG_IGN
)

// setDisposition sets sig's disposition to SIG_DFL or SIG_IGN.
func setDisposition(sig int, disposition uint64) error {
	if sig == int(unix.SIGKILL) || sig == int(unix.SIGSTOP) {
		return nil
	}
	act := [4]uint64{disposition}
	if _, _, errno := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&act[0])), 0, 8, 0, 0); errno != 0 {
		return errno
	}
	return nil
}

// Ignores reports whether sig is in the ignored set.
func (s SignalState) Ignores(sig syscall.Signal) bool { return s.Ignored&(1<<(sig-1)) != 0 }

func (s SignalState) String() string {
	return strconv.FormatUint(s.Blocked, 16) + ":" + strconv.FormatUint(s.Ignored, 16)
}

// ParseSignalState reads String's form.
func ParseSignalState(v string) (SignalState, error) {
	blk, ign, ok := strings.Cut(v, ":")
	b, err1 := strconv.ParseUint(blk, 16, 64)
	i, err2 := strconv.ParseUint(ign, 16, 64)
	if !ok || err1 != nil || err2 != nil {
		return SignalState{}, fmt.Errorf("signal state %q: want BLOCKED:IGNORED in hex", v)
	}
	return SignalState{Blocked: b, Ignored: i}, nil
}

// SigExecCommand is the hidden subcommand through which a command starts
// when there is a signal state to give it. os/exec cannot: the Go runtime
// resets its handlers to SIG_DFL in the child and leaves its own mask, so a
// trampoline (this binary again) sets the state just before it execs the
// command, as tini does between its fork and exec.
const SigExecCommand = "__sigexec"

// Apply makes cmd start with state s: directly when s is empty, else through
// the trampoline. The trampoline is /proc/self/exe, so every binary that
// starts commands this way must dispatch SigExecCommand first thing (main,
// and TestMain in tests: DispatchSigExec).
func (s SignalState) Apply(cmd *exec.Cmd) error {
	if s.Blocked == 0 && s.Ignored == 0 {
		return nil
	}
	if len(os.Args) > 1 && os.Args[1] == SigExecCommand {
		// This binary was started as the trampoline and did not dispatch
		// it: starting another one would recurse.
		return errors.New("this binary does not dispatch " + SigExecCommand + ": refusing to start a command through it")
	}
	path := cmd.Path
	if cmd.Err != nil {
		return cmd.Err
	}
	cmd.Args = append([]string{os.Args[0], SigExecCommand, s.String(), "--", path}, cmd.Args...)
	cmd.Path = "/proc/self/exe"
	return nil
}

// DispatchSigExec runs the trampoline and never returns when this process
// was started as one; otherwise it returns at once.
func DispatchSigExec() {
	if len(os.Args) > 1 && os.Args[1] == SigExecCommand {
		os.Exit(sigExec(os.Args[2:]))
	}
}

// sigExec is the trampoline: args are STATE -- PATH ARGV...
// It returns only on failure, with the shell's code for a command that
// cannot be run (127 not found, 126 otherwise).
func sigExec(args []string) int {
	if len(args) < 4 || args[1] != "--" {
		fmt.Fprintln(os.Stderr, "slurmrun: bad trampoline arguments")
		return 126
	}
	st, err := ParseSignalState(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "slurmrun: trampoline: %v\n", err)
		return 126
	}
	path, argv := args[2], args[3:]
	// The mask belongs to this thread, and exec keeps it.
	runtime.LockOSThread()
	for sig := 1; sig <= 64; sig++ {
		if !st.Ignores(syscall.Signal(sig)) && kernelIgnores(sig) {
			// Ignored here but not in the state (signals 32 and 33, which
			// the runtime leaves alone, can come in ignored).
			if err := setDisposition(sig, sigDfl); err != nil {
				fmt.Fprintf(os.Stderr, "slurmrun: reset %s: %v\n", unix.SignalName(syscall.Signal(sig)), err)
				return 126
			}
		}
		if st.Ignores(syscall.Signal(sig)) {
			// os/signal cannot ignore the synchronous signals (SIGSEGV,
			// SIGILL, ...): set the disposition the command inherits
			// directly. Go's handlers are gone with the exec below.
			if err := setDisposition(sig, sigIgn); err != nil {
				fmt.Fprintf(os.Stderr, "slurmrun: ignore %s: %v\n", unix.SignalName(syscall.Signal(sig)), err)
				return 126
			}
		}
	}
	set := unix.Sigset_t{Val: [16]uint64{st.Blocked}}
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, &set, nil); err != nil {
		fmt.Fprintf(os.Stderr, "slurmrun: restore signal mask: %v\n", err)
		return 126
	}
	err = unix.Exec(path, argv, os.Environ())
	fmt.Fprintf(os.Stderr, "slurmrun: exec %s: %v\n", path, err)
	return StartFailureCode(err)
}
