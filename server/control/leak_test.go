package control_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/termd/termd/protocol"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/server/servertest"
)

// TestNoServerPathInAnswers reproduces issue 10 defect 9: a NUL in an
// argument that its pattern lets through made the exec fail, and the
// terminal got the error text, with the program's path on the server.
func TestNoServerPathInAnswers(t *testing.T) {
	n := startNode(t, func(c *config.Config) {
		script := servertest.Script(t, c.Storage.Dir, "anyarg.sh", "echo ok\n")
		c.Services = append(c.Services, config.Service{ID: "anyarg", Kind: config.KindOneshot, Command: script,
			ArgPatterns: []string{`(?s).{1,32}`}, ACL: []config.ACLRule{{Devices: []string{"pos-*"}}}})
	})
	pos := n.dial(t, "pos-1", "till-a")
	ack, err := do(t, pos, protocol.Control{ServiceID: "anyarg", Op: protocol.OpStart, Args: []string{"a\x00b"}})
	text := ack.Output + ack.State
	if err != nil {
		text += err.Error()
	}
	if strings.Contains(text, n.dir) || strings.Contains(text, "/") {
		t.Fatalf("the terminal was told a server path: ack %+v, err %v", ack, err)
	}
	wantCode(t, err, protocol.BadRequest)

	// A program that cannot be executed any more: the answer says so
	// without the exec error's path.
	if err := os.Chmod(filepath.Join(n.dir, "anyarg.sh"), 0o644); err != nil {
		t.Fatal(err)
	}
	ack, err = do(t, pos, protocol.Control{ServiceID: "anyarg", Op: protocol.OpStart})
	if err != nil {
		t.Fatal(err)
	}
	if ack.State != protocol.StateFailed || strings.Contains(ack.Output, "/") {
		t.Fatalf("failed start answered %+v", ack)
	}
}

// TestForbiddenSaysWhat (issue 10 item 13): FORBIDDEN says whether the
// operation or the device was refused.
func TestForbiddenSaysWhat(t *testing.T) {
	n := startNode(t, nil)
	pos := n.dial(t, "pos-3", "till-c")
	kiosk := n.dial(t, "kiosk-1", "till-c")
	_, err := do(t, kiosk, protocol.Control{ServiceID: "spooler", Op: protocol.OpStart})
	wantCode(t, err, protocol.Forbidden)
	if !strings.Contains(err.Error(), "device") {
		t.Errorf("device refusal says %q", err)
	}
	_, err = do(t, pos, protocol.Control{ServiceID: "price-sync", Op: protocol.OpStop})
	wantCode(t, err, protocol.Forbidden)
	if !strings.Contains(err.Error(), "stop") || !strings.Contains(err.Error(), "not offered") {
		t.Errorf("op refusal says %q", err)
	}
}
