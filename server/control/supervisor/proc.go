package supervisor

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// groupPoll is how often a stop checks whether the process group it
// signalled is empty.
const groupPoll = 25 * time.Millisecond

// The gate: a child must not do anything before termd has made it
// findable (its pidfile, and the audit's "started" record, durable), or
// a crash in between would leave a process nobody knows of. Go cannot
// start a child stopped, so the child is first /bin/sh running gateScript:
// it waits for one line on descriptor 3 (a pipe termd holds the other end
// of), closes it and execs the configured command with its args in its
// place: same pid, same start time, no shell parsing of any argument
// ("$0" "$@" are passed as they are). If termd dies before releasing it,
// the pipe reaches EOF and the child exits without running anything.
const (
	gateShell  = "/bin/sh"
	gateScript = `read -r _ <&3 || exit 125; exec 3<&-; exec "$0" "$@"`
	// gateUnsetPWD goes before gateScript when the environment has no
	// PWD: the shell would export one, and the child must see exactly
	// its configured environment.
	gateUnsetPWD = "unset PWD; "
	// gateRefused is the exit code of a child termd never released.
	gateRefused = 125
)

// gate is the held end of a child's gate pipe.
type gate struct{ w *os.File }

// open releases the child: it execs the configured command.
func (g *gate) open() error {
	_, err := g.w.Write([]byte("go\n"))
	return errors.Join(err, g.w.Close())
}

// shut makes the child exit without running the command.
func (g *gate) shut() { g.w.Close() }

// command is the exec.Cmd of a run behind its gate: the configured
// command with its args and then the terminal's, no shell; the configured
// environment only; its own process group; stdin /dev/null (exec's
// default for a nil Stdin). The caller starts it, closes the returned
// read end, and opens or shuts the gate. A command that cannot be
// executed is reported here, as exec would, not by the gate's shell.
func (v *service) command(args []string) (*exec.Cmd, *gate, *os.File, error) {
	if err := unix.Access(v.cfg.Command, unix.X_OK); err != nil {
		return nil, nil, nil, execError{&os.PathError{Op: "fork/exec", Path: v.cfg.Command, Err: err}}
	}
	env := v.env()
	script := gateScript
	if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "PWD=") }) {
		script = gateUnsetPWD + gateScript
	}
	argv := append([]string{"-c", script, v.cfg.Command}, v.cfg.Args...)
	cmd := exec.Command(gateShell, append(argv, args...)...)
	cmd.Dir = v.cfg.Dir
	if cmd.Dir == "" {
		cmd.Dir = v.sup.dir
	}
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("gate pipe: %w", err)
	}
	cmd.ExtraFiles = []*os.File{r} // descriptor 3
	return cmd, &gate{w: w}, r, nil
}

// env is the child's whole environment: env_inherit values from termd's
// environment (those set and non-empty), then env, whose entries win over
// inherited ones of the same name. Never nil: nil would inherit all.
func (v *service) env() []string {
	env := make([]string, 0, len(v.cfg.EnvInherit)+len(v.cfg.Env))
	for _, name := range v.cfg.EnvInherit {
		if val := v.sup.environ(name); val != "" {
			env = append(env, name+"="+val)
		}
	}
	return append(env, v.cfg.Env...)
}

// exitOf is the exit code and signal name of a reaped process: code -1
// and the signal's name when a signal ended it.
func exitOf(ps *os.ProcessState) (int, string) {
	if ps == nil {
		return -1, ""
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -1, ws.Signal().String()
	}
	return ps.ExitCode(), ""
}

// terminate stops process group pgid whose leader ends when done is
// closed: SIGTERM (and SIGCONT, so a stopped group can act on it), then,
// unless the leader has ended and the group is empty by then, SIGKILL to
// the group once grace has passed. It returns once the leader has ended,
// reporting whether SIGKILL was sent.
func terminate(pgid int, done <-chan struct{}, grace time.Duration) bool {
	if pgid <= 1 {
		<-done // never signal "every process" or init's group
		return false
	}
	_ = unix.Kill(-pgid, unix.SIGTERM)
	_ = unix.Kill(-pgid, unix.SIGCONT)
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	tick := time.NewTicker(groupPoll)
	defer tick.Stop()
	leader := done
	for {
		select {
		case <-leader:
			leader = nil
		case <-tick.C:
		case <-deadline.C:
			_ = unix.Kill(-pgid, unix.SIGKILL)
			<-done
			return true
		}
		// The group is checked only after its leader is gone: while it
		// lives, its pid cannot be reused, so -pgid is still this group.
		if leader == nil && !groupAlive(pgid) {
			return false
		}
	}
}

// closedChan is a leader that has already ended, for terminate.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// cleanGroup stops what is left of process group pgid after its leader
// ended by itself: background children a script started must not outlive
// the service (STOP could not reach them any more, and a restarted daemon
// would run beside them). SIGTERM, then SIGKILL after grace. It reports
// whether anything was left. Its pid cannot be reused while the group
// has members, so -pgid is still this group when one is found.
func cleanGroup(pgid int, grace time.Duration) (left, killed bool) {
	if pgid <= 1 || !groupAlive(pgid) {
		return false, false
	}
	return true, terminate(pgid, closedChan, grace)
}

// inheritedFDs marks every descriptor above stderr close-on-exec, so that
// what termd inherited from whoever started it (a shell's redirections,
// a supervisor's sockets) never reaches a service. Descriptors Go opens
// are close-on-exec already; an inherited one is not. close_range
// (Linux 5.11) does it in one call; older kernels get a walk of
// /proc/self/fd.
func inheritedFDs() error {
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return nil
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("list descriptors: %w", err)
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		// The directory's own descriptor is closed by now: EBADF.
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && !errors.Is(err, unix.EBADF) {
			return fmt.Errorf("descriptor %d: %w", fd, err)
		}
	}
	return nil
}

// groupAlive reports whether process group pgid has a member that has
// not ended (zombies have).
func groupAlive(pgid int) bool {
	if err := unix.Kill(-pgid, 0); errors.Is(err, unix.ESRCH) {
		return false
	}
	// Some member exists; it may only be a zombie nobody reaped yet.
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err == nil && st.pgrp == pgid && !st.ended() {
			return true
		}
	}
	return false
}

// procStat is what termd reads from /proc/PID/stat.
type procStat struct {
	state byte   // field 3: R, S, D, Z (zombie), X (dead), ...
	pgrp  int    // field 5
	start uint64 // field 22: start time in clock ticks after boot
}

func (s procStat) ended() bool { return s.state == 'Z' || s.state == 'X' }

// readStat parses /proc/PID/stat. The command name (field 2) may hold
// spaces and parentheses, so fields are counted after the last ')'.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	pgrp, err1 := strconv.Atoi(string(f[2]))
	start, err2 := strconv.ParseUint(string(f[19]), 10, 64)
	if err := errors.Join(err1, err2); err != nil || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %v", pid, err)
	}
	return procStat{state: f[0][0], pgrp: pgrp, start: start}, nil
}

// alive reports whether pid is still the process that started at ticks
// and has not ended. A zombie has ended: after termd's own kill -9 its
// daemons belong to whatever reaps orphans, which may be slow or never.
func alive(pid int, ticks uint64) bool {
	if pid <= 0 {
		return false
	}
	st, err := readStat(pid)
	return err == nil && !st.ended() && st.start == ticks
}

// exitWatch tells when a process ends, without reaping it. It waits on a
// pidfd (readable once the process has ended, zombie or not, child or
// not) where the kernel has them, and else polls: waitid(WNOWAIT) for a
// child, /proc for an adopted process.
type exitWatch struct {
	pid   int
	ticks uint64
	child bool
	fd    int // pidfd, -1 when polling
}

func newExitWatch(pid int, ticks uint64, child, pidfd bool) *exitWatch {
	w := &exitWatch{pid: pid, ticks: ticks, child: child, fd: -1}
	if pidfd {
		if fd, err := unix.PidfdOpen(pid, 0); err == nil {
			w.fd = fd
		}
	}
	return w
}

// wait waits at most d and reports whether the process has ended.
func (w *exitWatch) wait(d time.Duration) bool {
	if w.fd >= 0 {
		fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(d/time.Millisecond))
		switch {
		case err == nil:
			// An adopted pid may have been reused between its check and
			// pidfd_open; the /proc check catches that.
			return n > 0 || (!w.child && !alive(w.pid, w.ticks))
		case errors.Is(err, unix.EINTR):
			return false
		}
		unix.Close(w.fd) // poll failing on a pidfd: fall back to polling
		w.fd = -1
	}
	time.Sleep(d)
	return w.ended()
}

// ended checks once, without waiting.
func (w *exitWatch) ended() bool {
	if !w.child {
		return !alive(w.pid, w.ticks)
	}
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PID, w.pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	if errors.Is(err, unix.EINTR) {
		return false
	}
	// Signo is SIGCHLD once the child can be reaped; an error (ECHILD)
	// means it is no longer waitable, which Wait will report.
	return err != nil || info.Signo != 0
}

func (w *exitWatch) close() {
	if w.fd >= 0 {
		unix.Close(w.fd)
		w.fd = -1
	}
}
