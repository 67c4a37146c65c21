package container

import (
	"io"
	"os"
	"runtime"

	"github.com/containerd/console"
	"golang.org/x/sys/unix"
)

// terminal is the controlling terminal on slurmrun's standard input when
// slurmrun is in its foreground (`docker run -it`, `srun --pty`, a shell).
// As tini does, the child's process group becomes the foreground group: the
// child has the terminal itself, with nothing in between, so its job
// control, its bytes and ^D are its own.
type terminal struct {
	f *os.File
	// saved holds the terminal's state as slurmrun found it (console saves
	// it when it wraps the file), restored when the child has exited so a
	// crashed full-screen program leaves a usable terminal.
	saved console.Console
}

// foregroundTerminal returns the terminal on stdin, or nil when stdin is no
// terminal or slurmrun is not in its foreground (started with `&`: then
// the terminal stays with whoever has it).
func foregroundTerminal(stdin io.Reader) *terminal {
	f, ok := stdin.(*os.File)
	if !ok {
		return nil
	}
	con, err := console.ConsoleFromFile(f)
	if err != nil {
		return nil
	}
	fg, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCGPGRP)
	if err != nil || fg != unix.Getpgrp() {
		return nil
	}
	return &terminal{f: f, saved: con}
}

// foreground returns the terminal's foreground process group.
func (t *terminal) foreground() int {
	pgrp, err := unix.IoctlGetInt(int(t.f.Fd()), unix.TIOCGPGRP)
	if err != nil {
		return -1
	}
	return pgrp
}

// give makes pgrp the terminal's foreground group. SIGTTOU is blocked on
// this thread meanwhile: from the background, the kernel would answer the
// call with SIGTTOU to slurmrun's group instead of doing it.
func (t *terminal) give(pgrp int) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var ttou, old unix.Sigset_t
	ttou.Val[0] = 1 << (unix.SIGTTOU - 1)
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &ttou, &old); err != nil {
		return err
	}
	defer unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	return unix.IoctlSetPointerInt(int(t.f.Fd()), unix.TIOCSPGRP, pgrp)
}

// reclaim takes the terminal back from the child's group and restores the
// state slurmrun found it in. A terminal the child no longer has (a shell
// took it back while slurmrun was stopped) is left alone.
func (t *terminal) reclaim(child int) {
	if t.foreground() != child {
		return
	}
	if t.give(unix.Getpgrp()) != nil {
		return
	}
	_ = t.saved.Reset()
}
