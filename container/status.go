package container

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// ExitStatus is how a command ended.
type ExitStatus struct {
	// Code is the exit status, or 128+N when the command was killed by signal N.
	Code int
	// Signal is the signal that killed the command, or 0.
	Signal syscall.Signal
}

func (e ExitStatus) String() string {
	if e.Signal != 0 {
		return fmt.Sprintf("exit code %d (killed by %s)", e.Code, unix.SignalName(e.Signal))
	}
	return fmt.Sprintf("exit code %d", e.Code)
}

// StatusOf turns a wait status into the shell's exit code.
func StatusOf(ws syscall.WaitStatus) ExitStatus {
	if ws.Signaled() {
		return ExitStatus{Code: 128 + int(ws.Signal()), Signal: ws.Signal()}
	}
	return ExitStatus{Code: ws.ExitStatus()}
}

// StartFailureCode is the shell's exit code for a command that could not be
// started: 127 when it does not exist, 126 when it cannot be executed.
func StartFailureCode(err error) int {
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
		return 127
	}
	return 126
}
