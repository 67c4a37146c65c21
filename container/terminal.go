package container

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/console"
	"golang.org/x/sys/unix"
)

// Terminal is the terminal slurmrun's standard input is attached to
// (`docker run -it`, `srun --pty`). Commands reading from it run on a
// pseudo-terminal of their own, in raw mode pass-through, so that they have
// a controlling terminal and job control while slurmrun stays their init.
type Terminal struct {
	in        *os.File
	out       *os.File
	con       console.Console
	stdinOnce sync.Once
	current   atomic.Pointer[console.Console] // the running command's pty master
}

// DetectTerminal returns the terminal on stdin, or nil when there is none
// (the usual srun and CI case: then commands get slurmrun's own file
// descriptors, with nothing copied in between).
func DetectTerminal(stdin, stdout *os.File) *Terminal {
	con, err := console.ConsoleFromFile(stdin)
	if err != nil {
		return nil
	}
	return &Terminal{in: stdin, out: stdout, con: con}
}

// owns reports whether cmd reads from the terminal.
func (t *Terminal) owns(cmd *exec.Cmd) bool {
	f, ok := cmd.Stdin.(*os.File)
	return ok && f == t.in
}

// Resize copies the terminal's size to the running command's pty.
func (t *Terminal) Resize() {
	if m := t.current.Load(); m != nil {
		_ = (*m).ResizeFrom(t.con)
	}
}

type ptySession struct {
	t      *Terminal
	master console.Console
	slave  *os.File
	output chan struct{}
}

// attach gives cmd a new pty as its terminal streams and controlling
// terminal, and makes it the leader of a new session.
func (t *Terminal) attach(cmd *exec.Cmd) (*ptySession, error) {
	master, slavePath, err := console.NewPty()
	if err != nil {
		return nil, err
	}
	slave, err := os.OpenFile(slavePath, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, err
	}
	_ = master.ResizeFrom(t.con)
	cmd.Stdin = slave
	if isTerminal(cmd.Stdout) {
		cmd.Stdout = slave
	}
	if isTerminal(cmd.Stderr) {
		cmd.Stderr = slave
	}
	cmd.SysProcAttr.Setsid = true
	cmd.SysProcAttr.Setctty = true
	cmd.SysProcAttr.Ctty = 0 // the child's stdin, the slave
	return &ptySession{t: t, master: master, slave: slave, output: make(chan struct{})}, nil
}

// started switches the host terminal to raw mode and starts copying.
func (p *ptySession) started(err error) {
	p.slave.Close()
	if err != nil {
		p.master.Close()
		return
	}
	_ = p.t.con.SetRaw()
	p.t.current.Store(&p.master)
	// One reader of the host terminal for slurmrun's whole life: a copier
	// per command would leave one blocked in read after each command.
	p.t.stdinOnce.Do(func() {
		go func() {
			buf := make([]byte, 4096)
			for {
				n, err := p.t.in.Read(buf)
				if m := p.t.current.Load(); m != nil && n > 0 {
					(*m).Write(buf[:n])
				}
				if err != nil {
					return
				}
			}
		}()
	})
	go func() {
		defer close(p.output)
		_, _ = io.Copy(p.t.out, p.master)
	}()
}

// finish drains the command's output, then restores the host terminal.
// Output stops with EIO once every holder of the slave is gone; a
// descendant that keeps it open gets a second to let go.
func (p *ptySession) finish() {
	select {
	case <-p.output:
	case <-time.After(time.Second):
	}
	p.t.current.CompareAndSwap(&p.master, nil)
	p.master.Close()
	<-p.output
	if err := p.t.con.Reset(); err != nil && !errors.Is(err, os.ErrClosed) {
		return
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
