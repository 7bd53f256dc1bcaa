package supervisor

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/config"
)

// A oneshot whose script leaves background children behind (one of them
// ignoring SIGTERM) does not leave them running: when the run's leader
// exits, the rest of its process group gets SIGTERM, and SIGKILL after
// stop_grace.
func TestOneshotLeftoversStopped(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	plain, stubborn := filepath.Join(dir, "plain.pid"), filepath.Join(dir, "stubborn.pid")
	s := open(t, "", nil,
		shService(t, "plain", config.KindOneshot, "leaves-child.sh", plain, "plain", "0", "0"),
		shService(t, "stubborn", config.KindOneshot, "leaves-child.sh", stubborn, "stubborn", "0", "0"))
	for id, file := range map[string]string{"plain": plain, "stubborn": stubborn} {
		r := s.do(t, id, config.OpStart).State
		wantState(t, id, r, protocol.StateExited)
		child := readPid(t, file)
		killGroup(t, r.PID)
		waitEnded(t, child)
	}
}

// A daemon whose leader exits (here failing) takes its background
// children with it, so a restart never runs beside leftovers.
func TestDaemonLeftoversStopped(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "child.pid")
	s := open(t, "", nil, shService(t, "d", config.KindDaemon, "leaves-child.sh", file, "stubborn", "0.3", "1"))
	r := s.do(t, "d", config.OpStart).State
	wantState(t, "start", r, protocol.StateRunning)
	child := readPid(t, file)
	killGroup(t, r.PID)
	waitFor(t, "daemon failed", func() bool { return s.status(t, "d").State == protocol.StateFailed })
	waitEnded(t, child)
}

// A service never sees descriptors termd inherited: one opened here
// without close-on-exec (as a shell's "3>file" or a service manager's
// socket would be) is not among the child's descriptors.
func TestNoInheritedDescriptors(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "inherited-marker")
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(marker, unix.O_RDONLY, 0) // no O_CLOEXEC, like an inherited descriptor
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	s := open(t, "", nil, shService(t, "fds", config.KindOneshot, "fds.sh"))
	out := s.do(t, "fds", config.OpStart).State.Output
	if !strings.Contains(out, "0 ") || strings.Contains(out, "inherited-marker") {
		t.Fatalf("the child's descriptors:\n%s", out)
	}
}

// A daemon whose leader ended while no termd watched it (termd was
// killed) left a background child in its group: the next supervisor,
// finding the stale pidfile, stops that child too.
func TestLeftoversOfStalePidfileStopped(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "services")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	childFile := filepath.Join(t.TempDir(), "child.pid")
	leader := exec.Command("/bin/sh", "-c", `sleep 600 & echo $! > "$1"; read _`, "sh", childFile)
	leader.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := leader.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := leader.Start(); err != nil {
		t.Fatal(err)
	}
	pid := leader.Process.Pid
	killGroup(t, pid)
	st, err := readStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	child := readPid(t, childFile)
	stdin.Close() // the leader ends; its child stays in the group
	_ = leader.Wait()
	if err := writePidfile(filepath.Join(dir, "d.pid"), pidfile{PID: pid, PGID: pid, StartTicks: st.start, Command: "sh"}); err != nil {
		t.Fatal(err)
	}
	if !exists(child) || zombie(child) {
		t.Fatal("the child did not outlive its leader")
	}
	open(t, dir, nil, shService(t, "d", config.KindDaemon, "daemon.sh"))
	waitEnded(t, child)
}
