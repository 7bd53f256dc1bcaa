package storage

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Kill -9 test plumbing.
const (
	// helperDirEnv tells the re-executed test binary to act as the child
	// of TestBadgerSurvivesKill9, storing into the directory it names.
	helperDirEnv = "TERMD_STORAGE_HELPER_DIR"
	// helperReady is the line the child prints once every write is acknowledged.
	helperReady = "ready"
	// helperLinger bounds how long an orphaned child waits to be killed.
	helperLinger = 2 * time.Minute
	// helperStartTimeout bounds how long the parent waits for helperReady.
	helperStartTimeout = 60 * time.Second
	// helperDevices is how many devices the child writes presence for.
	helperDevices = 300
)

// helperKey is the key the child stores for device i.
func helperKey(i int) []byte { return bytes.Repeat([]byte{byte(i + 1)}, KeySize) }

func TestBadgerPersistence(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, err := OpenBadger(dir, BadgerOptions{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	key := bytes.Repeat([]byte{9}, KeySize)
	apply(t, b, online("p1", 10, 1), seen("p1", 20, []byte{0, 1, 2}), online("p2", 10, 2), offline("p2", 30, 2, "bye"))
	// Enough records to spill past one memtable into SSTables and the vlog.
	big := bytes.Repeat([]byte{0xaa}, 4<<10)
	var batch []PresenceUpdate
	for i := range 3000 {
		batch = append(batch, seen(fmt.Sprintf("bulk-%04d", i), int64(i), big))
	}
	apply(t, b, batch...)
	if err := b.SetKey(ctx, "p1", key); err != nil {
		t.Fatal(err)
	}
	if err := b.SetBlocked(ctx, "p3", true); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := b.NextBootEpoch(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.SetAliveMark(ctx, 777); err != nil {
		t.Fatal(err)
	}
	want, _, err := b.List(ctx, ListOptions{Limit: MaxListLimit})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b, err = OpenBadger(dir, BadgerOptions{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got, _, err := b.List(ctx, ListOptions{Limit: MaxListLimit})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen: %d devices, want %d (or contents differ)", len(got), len(want))
	}
	if d := mustGet(t, b, "bulk-2999"); !bytes.Equal(d.Status, big) || d.LastSeen != 2999 {
		t.Fatalf("bulk-2999 after reopen: LastSeen %d, %d status bytes", d.LastSeen, len(d.Status))
	}
	if d := mustGet(t, b, "p1"); !bytes.Equal(d.Key, key) || d.FirstSeen != 10 {
		t.Fatalf("p1 after reopen: %+v", d)
	}
	if e, err := b.NextBootEpoch(ctx); err != nil || e != 3 {
		t.Fatalf("boot epoch after reopen = %d, %v; want 3", e, err)
	}
	if at, err := b.AliveMark(ctx); err != nil || at != 777 {
		t.Fatalf("alive mark after reopen = %d, %v", at, err)
	}
	if lsm, vlog := b.Sizes(); lsm < 0 || vlog < 0 {
		t.Fatalf("Sizes = %d, %d", lsm, vlog)
	}
	if b.DB() == nil {
		t.Fatal("DB() is nil")
	}
}

func TestBadgerGCRunsAndStops(t *testing.T) {
	b, err := OpenBadger(t.TempDir(), BadgerOptions{Logger: testLogger(t), GCInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// Overwrite values above the vlog threshold so GC has stale data to find.
	big := bytes.Repeat([]byte{1}, 8<<10)
	for r := range 20 {
		var batch []PresenceUpdate
		for i := range 50 {
			batch = append(batch, seen(fmt.Sprintf("gc-%d", i), int64(r), big))
		}
		apply(t, b, batch...)
	}
	time.Sleep(20 * time.Millisecond) // let a few GC rounds run concurrently
	done := make(chan error)
	go func() { done <- b.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not stop value-log GC")
	}
}

func TestBadgerCorruptRecord(t *testing.T) {
	b := openBadgerInMemory(t).(*Badger)
	err := b.DB().Update(func(txn *badger.Txn) error {
		return txn.Set(devKey("bad"), []byte{recordV1, 0, 0x80})
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(context.Background(), "bad"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get of corrupt record: %v", err)
	}
	if err := b.ApplyPresence(context.Background(), []PresenceUpdate{seen("bad", 1, nil)}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("ApplyPresence over corrupt record: %v", err)
	}
}

// TestHelperProcess is the child of TestBadgerSurvivesKill9; it does
// nothing unless helperDirEnv is set.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(helperDirEnv)
	if dir == "" {
		t.Skip("helper process for TestBadgerSurvivesKill9")
	}
	if err := helperWrite(dir); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	fmt.Println(helperReady)
	// Wait to be killed; the store is deliberately never closed.
	time.Sleep(helperLinger)
	os.Exit(3)
}

// helperWrite performs the child's acknowledged writes. SyncWrites stays
// off: kill -9 must not lose what the OS page cache already holds.
func helperWrite(dir string) error {
	ctx := context.Background()
	b, err := OpenBadger(dir, BadgerOptions{})
	if err != nil {
		return err
	}
	for i := range helperDevices {
		id := fmt.Sprintf("k9-%03d", i)
		if i%3 == 0 {
			if err := b.SetKey(ctx, id, helperKey(i)); err != nil {
				return err
			}
		}
		if i%5 == 0 {
			if err := b.SetBlocked(ctx, id, true); err != nil {
				return err
			}
		}
	}
	for range 3 {
		if _, err := b.NextBootEpoch(ctx); err != nil {
			return err
		}
	}
	w := NewPresenceWriter(b, time.Hour, nil)
	for i := range helperDevices {
		id := fmt.Sprintf("k9-%03d", i)
		w.Put(online(id, int64(1000+i), uint64(i+1)))
		w.Put(seen(id, int64(2000+i), []byte(id)))
		if i%2 == 0 {
			w.Put(offline(id, int64(3000+i), uint64(i+1), "bye"))
		}
	}
	if err := w.Flush(ctx); err != nil {
		return err
	}
	for at := int64(1); at <= 5; at++ {
		if err := b.SetAliveMark(ctx, at*1000); err != nil {
			return err
		}
	}
	if err := helperUpgrades(b); err != nil {
		return err
	}
	return helperAppendAudit(b) // last, so the kill follows the last append
}

func TestBadgerSurvivesKill9(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("needs SIGKILL")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperDirEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == helperReady {
				ready <- true
				return
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			_ = cmd.Wait()
			t.Fatalf("helper exited before ready: %s", stderr.String())
		}
	case <-time.After(helperStartTimeout):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper not ready in %v: %s", helperStartTimeout, stderr.String())
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no chance to close Badger
		t.Fatal(err)
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != -1 {
		t.Fatalf("helper was not killed by a signal: %v (%s)", err, stderr.String())
	}

	ctx := context.Background()
	b, err := OpenBadger(dir, BadgerOptions{Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("reopen after kill -9: %v", err)
	}
	defer b.Close()
	for i := range helperDevices {
		id := fmt.Sprintf("k9-%03d", i)
		want := Device{
			ID: id, FirstSeen: int64(1000 + i), LastSeen: int64(2000 + i), Online: true,
			SessionID: uint64(i + 1), LastOnline: int64(1000 + i), RemoteAddr: online("", 0, uint64(i+1)).RemoteAddr,
			FW: "1.2.3", Model: "pos-x", Status: []byte(id), Blocked: i%5 == 0,
		}
		if i%2 == 0 {
			want.Online, want.LastOffline, want.OfflineReason = false, int64(3000+i), "bye"
		}
		if i%3 == 0 {
			want.Key = helperKey(i)
		}
		wantDevice(t, mustGet(t, b, id), want)
	}
	if e, err := b.NextBootEpoch(ctx); err != nil || e != 4 {
		t.Fatalf("boot epoch after kill -9 = %d, %v; want 4", e, err)
	}
	if at, err := b.AliveMark(ctx); err != nil || at != 5000 {
		t.Fatalf("alive mark after kill -9 = %d, %v; want 5000", at, err)
	}
	checkHelperAudit(t, b)
	checkHelperUpgrades(t, b)
}
