package main

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/console"

	"github.com/slurmrun/slurmrun/container"
	"golang.org/x/sys/unix"
)

// ptySession runs argv as a session leader on a new pty, as a terminal
// emulator or `docker run -it` does, and collects what it prints.
type ptySession struct {
	t      *testing.T
	master console.Console
	slave  *os.File
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    []byte
	done   chan struct{}
}

func newPtySession(t *testing.T, env []string, argv ...string) *ptySession {
	t.Helper()
	master, slavePath, err := console.NewPty()
	if err != nil {
		t.Fatal("no pty:", err)
	}
	master.Resize(console.WinSize{Height: 40, Width: 100})
	slave, err := os.OpenFile(slavePath, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	p := &ptySession{t: t, master: master, slave: slave, done: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = env
	p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = slave, slave, slave
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(60*time.Second, func() { killTree(p.cmd.Process.Pid) })
	t.Cleanup(func() {
		timer.Stop()
		killTree(p.cmd.Process.Pid)
		master.Close()
		slave.Close()
	})
	go func() {
		defer close(p.done)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			p.mu.Lock()
			p.out = append(p.out, buf[:n]...)
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return p
}

func (p *ptySession) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return string(p.out)
}

// expect waits until the output holds want, count times.
func (p *ptySession) expect(want string, count int) {
	p.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for strings.Count(p.output(), want) < count {
		if time.Now().After(deadline) {
			p.t.Fatalf("the terminal never showed %q (%d times): %q", want, count, p.output())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *ptySession) send(s string) { p.master.Write([]byte(s)) }

func (p *ptySession) wait() int {
	p.t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- p.cmd.Wait() }()
	select {
	case err := <-errc:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		return 0
	case <-time.After(20 * time.Second):
		p.t.Fatalf("the session did not end: %q", p.output())
		return -1
	}
}

// As tini: the child gets slurmrun's terminal itself (no pty in between) as
// its foreground group; its bytes pass unaltered, ^D reaches it, and the
// terminal's mode is restored afterwards.
func TestExecHandsTheTerminalToTheChild(t *testing.T) {
	env := []string{"PATH=" + os.Getenv("PATH")}
	p := newPtySession(t, env, binary, "exec", "--", "sh", "-c",
		`tty; echo "fg=$(ps -o tpgid= -p $$) pgrp=$(ps -o pgid= -p $$)"; stty -opost; printf 'raw\n'; stty opost; stty raw -echo; exit 4`)
	p.expect("pgrp=", 1)
	code := p.wait()
	out := p.output()
	if code != 4 {
		t.Fatalf("exit code %d: %q", code, out)
	}
	if !strings.Contains(out, p.slave.Name()+"\r\n") {
		t.Errorf("the child is not on slurmrun's terminal %s: %q", p.slave.Name(), out)
	}
	var fg, pgrp string
	for _, l := range strings.Split(out, "\r\n") {
		if strings.HasPrefix(l, "fg=") {
			f := strings.Fields(strings.NewReplacer("fg=", "", "pgrp=", "").Replace(l))
			fg, pgrp = f[0], f[1]
		}
	}
	if fg == "" || fg != pgrp {
		t.Errorf("the child's group is not the terminal's foreground: %q", out)
	}
	if !strings.Contains(out, "raw\n") || strings.Contains(out, "\r\r\n") {
		t.Errorf("bytes altered between the child and the terminal: %q", out)
	}
	attr, _ := unix.IoctlGetTermios(int(p.slave.Fd()), unix.TCGETS)
	if attr.Lflag&unix.ECHO == 0 || attr.Lflag&unix.ICANON == 0 {
		t.Errorf("the terminal was left raw after the child exited: lflag %#x", attr.Lflag)
	}
}

// ^D typed at the terminal ends tac's input, as without slurmrun.
func TestExecTacEndsOnCtrlD(t *testing.T) {
	p := newPtySession(t, []string{"PATH=" + os.Getenv("PATH")}, binary, "exec", "--", "tac")
	waitForeground(t, p.cmd.Process.Pid, "tac")
	p.send("one\ntwo\n\x04")
	if code := p.wait(); code != 0 {
		t.Fatalf("exit code %d: %q", code, p.output())
	}
	if !strings.Contains(p.output(), "two\r\none\r\n") {
		t.Errorf("tac's output: %q", p.output())
	}
}

// An interactive shell with job control: Ctrl-Z stops both slurmrun and its
// child and gives the prompt back; fg resumes both; Ctrl-C ends the child.
// And `bash -m` under slurmrun has job control of its own.
func TestJobControlInAPtySession(t *testing.T) {
	env := []string{"PATH=" + os.Getenv("PATH"), "PS1=PROMPT> ", "TERM=dumb", "HOME=" + t.TempDir()}
	p := newPtySession(t, env, "bash", "--norc", "--noprofile", "-i")
	p.expect("PROMPT> ", 1)
	p.send(binary + " exec -- sh -c 'echo child=$$; exec sleep 300'\n")
	p.expect("child=", 1)
	// The child has exec'd sleep and holds the terminal: ^Z is for it.
	waitForeground(t, p.cmd.Process.Pid, "sleep")
	var init, child int
	for _, pid := range descendantsNamed(p.cmd.Process.Pid, "slurmrun") {
		init = pid
	}
	if init == 0 {
		t.Fatalf("slurmrun not found: %q", p.output())
	}
	child = childOf(t, init)
	p.send("\x1a")
	p.expect("PROMPT> ", 2)
	waitState(t, child, 'T')
	waitState(t, init, 'T')
	p.send("fg\n")
	deadline := time.Now().Add(10 * time.Second)
	for procState(child) == 'T' || procState(init) == 'T' {
		if time.Now().After(deadline) {
			t.Fatalf("fg did not resume both: slurmrun %c, child %c: %q", procState(init), procState(child), p.output())
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.send("\x03")
	p.expect("PROMPT> ", 3)
	p.send("echo status=$?\n")
	p.expect("status=130", 1)

	// bash -m under slurmrun: its own job control works on the terminal.
	p.send(binary + " exec -- bash --norc --noprofile -m -c 'sleep 0.2 & fg %1 && echo bgfg=ok'\n")
	p.expect("bgfg=ok", 1)
	p.expect("PROMPT> ", 4)
	p.send("exit\n")
	p.wait()
}

// waitForeground waits until a process named name below pid is in the
// terminal's foreground process group (its tpgid is its pgrp): input typed
// now goes to it.
func waitForeground(t *testing.T, pid int, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, p := range descendantsNamed(pid, name) {
			stat, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/stat")
			if err != nil {
				continue
			}
			// After the command's closing parenthesis: state ppid pgrp session tty_nr tpgid.
			f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
			if len(f) > 5 && f[2] == f[5] {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s in the terminal's foreground below %d", name, pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// descendantsNamed lists the processes below pid whose command is name.
func descendantsNamed(pid int, name string) []int {
	var out []int
	for _, p := range container.Descendants(pid) {
		if comm, _ := os.ReadFile("/proc/" + strconv.Itoa(p) + "/comm"); strings.TrimSpace(string(comm)) == name {
			out = append(out, p)
		}
	}
	return out
}
