// Package servertest starts real termd nodes on loopback ports for the
// tests of packages built on the server (admin API, termctl, tools): a
// real gnet listener, real sessions, an in-memory Badger store, and short
// timers so tests run fast.
package servertest

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/termd/termd/server"
	"github.com/termd/termd/server/config"
	"github.com/termd/termd/storage"
)

// FleetSecret and Token are the test node's credentials.
const (
	FleetSecret = "servertest-fleet-secret"
	Token       = "servertest-token"
)

// FreePort returns a loopback address with a port that was free a moment
// ago (gnet needs a concrete port).
func FreePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Config returns the defaults with a free TGP port, two event loops, test
// credentials and fast ticks and flushes.
func Config(t testing.TB) config.Config {
	cfg := config.Defaults()
	cfg.Server.Listen = FreePort(t)
	cfg.Server.EventLoops = 2
	cfg.Server.TickInterval = config.D(20 * time.Millisecond)
	cfg.Auth.FleetSecret = FleetSecret
	cfg.Admin.Token = Token
	cfg.Storage.FlushInterval = config.D(50 * time.Millisecond)
	cfg.Storage.AliveInterval = config.D(100 * time.Millisecond)
	return cfg
}

// Node is a running test node.
type Node struct {
	*server.Server
	// Addr is the TGP address.
	Addr  string
	Store storage.Store
	stop  func()
}

// Stop stops the node's server now (it is otherwise stopped when the test
// ends); the store stays open.
func (n *Node) Stop() { n.stop() }

// Start opens and runs a node with cfg on an in-memory Badger store until
// the test ends. Setup, if given, runs between Open and Run (to install
// routes).
func Start(t testing.TB, cfg config.Config, setup func(*server.Server)) *Node {
	t.Helper()
	store, err := storage.OpenBadger("", storage.BadgerOptions{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() }) // runs last: after the server stopped
	return StartStore(t, cfg, store, setup)
}

// StartStore is Start on a store the caller opened (and closes), so a
// test can run a second node on the first one's store, as after a
// restart. Stop the first node with Node.Stop before.
func StartStore(t testing.TB, cfg config.Config, store *storage.Badger, setup func(*server.Server)) *Node {
	t.Helper()
	srv, err := server.Open(context.Background(), cfg, server.Options{Logger: slog.New(slog.DiscardHandler), Store: store})
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(srv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				t.Error("server did not stop")
			}
		})
	}
	t.Cleanup(stop)
	select {
	case <-srv.Started():
	case err := <-done:
		t.Fatalf("server did not start: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("server did not start")
	}
	return &Node{Server: srv, Addr: cfg.Server.Listen, Store: store, stop: stop}
}
