package store

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/warrenmq/warren/internal/wire"
)

// lowCompactionThresholds makes a file of a few MiB worth compacting for
// the length of the test.
func lowCompactionThresholds(t *testing.T) {
	minFree, maxLive := compactMinFree, compactMaxLive
	compactMinFree, compactMaxLive = 2<<20, 1<<20
	t.Cleanup(func() { compactMinFree, compactMaxLive = minFree, maxLive })
}

// waitUntil polls cond, failing the test with failure() if it is still
// false after 30 s (a bound on a hang, not an expectation).
func waitUntil(t *testing.T, cond func() bool, failure func() string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(failure())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitCompactions polls until s has compacted n times.
func waitCompactions(t *testing.T, s *Store, n uint64) {
	t.Helper()
	waitUntil(t, func() bool { return s.Stats().Compactions >= n },
		func() string { return fmt.Sprintf("%d compactions, want %d", s.Stats().Compactions, n) })
}

// fillAndDrain logs n 4 KiB messages into queue id, waits until they are
// in bbolt, then deletes all but the last keep of them and waits again. It
// returns the file's size when full.
func fillAndDrain(t *testing.T, s *Store, id uint64, n, keep int) int64 {
	t.Helper()
	for seq := 1; seq <= n; seq++ {
		s.Put(id, uint64(seq), msg("m", 4096), 0, false)
	}
	flush(t, s)
	full := fileSize(t, s.dir)
	for seq := 1; seq <= n-keep; seq++ {
		s.Delete(id, uint64(seq))
	}
	flush(t, s)
	return full
}

// fileSize is the size of the store's file in dir.
func fileSize(t *testing.T, dir string) int64 {
	t.Helper()
	fi, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestCompaction drains most of a queue: the checkpointer then copies the
// store into a smaller file, and everything it held, and everything logged
// afterwards, is there after a clean restart and after a crash; the new
// file is locked against a second broker.
func TestCompaction(t *testing.T) {
	lowCompactionThresholds(t)
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	s.PutExchange(ExchangeRecord{Name: "x", Type: "direct"})
	q := QueueRecord{Name: "q", ID: s.NewQueueID(), Args: wire.Table{"x-max-length": int32(10000)}}
	s.PutQueue(q)
	bindings := []BindingRecord{
		{Source: "x", Destination: "q", RoutingKey: "a"},
		{Source: "x", Destination: "q", RoutingKey: "a", Args: wire.Table{"k": "v"}},
	}
	for _, b := range bindings {
		s.PutBinding(b)
	}
	full := fillAndDrain(t, s, q.ID, 6000, 10)
	waitCompactions(t, s, 1)

	// 24 MB of messages were written and drained; 40 KB are left. (bbolt
	// grows a file 16 MiB at a time.)
	if b := s.Stats().Bytes; b > 1<<20 {
		t.Errorf("store is %d bytes after compaction", b)
	}
	if size := fileSize(t, dir); size >= full {
		t.Errorf("file is %d bytes after compaction, %d before", size, full)
	}
	if _, err := os.Stat(filepath.Join(dir, FileName+compactSuffix)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("compaction's file still there: %v", err)
	}
	es := load(t, s, q.ID)
	sameSeqs(t, es, 5991, 5992, 5993, 5994, 5995, 5996, 5997, 5998, 5999, 6000)
	if want := msg("m", 4096).Body; !bytes.Equal(es[0].Msg.Body, want) {
		t.Errorf("body of 5991 is %d bytes, not the one stored", len(es[0].Msg.Body))
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}

	// A second broker still finds the store locked.
	if _, err := Open(dir, Options{LockTimeout: 50 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open after a compaction: %v, want ErrLocked", err)
	}

	// Changes after the compaction go to the new file: one checkpointed,
	// one only in the log when the files are copied as a crash leaves them.
	s.Put(q.ID, 6001, msg("after", 100), 0, false)
	flush(t, s)
	s.pauseCheckpoints.Store(true)
	putSynced(t, s, q.ID, 6002, msg("logged", 100))
	crashed := copyFiles(t, s)
	s.pauseCheckpoints.Store(false)

	want := []uint64{5991, 5992, 5993, 5994, 5995, 5996, 5997, 5998, 5999, 6000, 6001, 6002}
	for _, d := range []string{crashed, dir} {
		if d == dir {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
		s2 := openTest(t, d, Options{})
		rec, err := s2.Recover()
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.Exchanges) != 1 || len(rec.Queues) != 1 || rec.Queues[0].Name != "q" || len(rec.Bindings) != 2 {
			t.Fatalf("%s: recovered %d exchanges, queues %+v, %d bindings", d, len(rec.Exchanges), rec.Queues, len(rec.Bindings))
		}
		if rec.Queues[0].Args["x-max-length"] != int32(10000) {
			t.Errorf("%s: queue args %v", d, rec.Queues[0].Args)
		}
		sameSeqs(t, load(t, s2, q.ID), want...)
		// A binding that differs from an old one only in its args still
		// gets a key of its own: the bucket's sequence was copied.
		s2.PutBinding(BindingRecord{Source: "x", Destination: "q", RoutingKey: "a", Args: wire.Table{"k": "w"}})
		flush(t, s2)
		if err := s2.Close(); err != nil {
			t.Fatal(err)
		}
		s3 := openTest(t, d, Options{})
		if rec, err := s3.Recover(); err != nil || len(rec.Bindings) != 3 {
			t.Fatalf("%s: after one more binding: %v bindings, %v", d, rec, err)
		}
	}
}

// logBuffer is a slog handler's output that tests read while the store
// writes it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer // guarded by mu
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestCompactionFails leaves the store working in its file when the
// compaction cannot be written.
func TestCompactionFails(t *testing.T) {
	lowCompactionThresholds(t)
	dir := t.TempDir()
	var logged logBuffer
	s := openTest(t, dir, Options{Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	// A directory where the compaction's file would go, which it cannot
	// remove.
	if err := os.MkdirAll(filepath.Join(dir, FileName+compactSuffix, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	q := QueueRecord{Name: "q", ID: s.NewQueueID()}
	s.PutQueue(q)
	fillAndDrain(t, s, q.ID, 2000, 1)
	waitUntil(t, func() bool { return strings.Contains(logged.String(), "store compaction failed") },
		func() string { return "no failed compaction logged; log:\n" + logged.String() })
	s.Put(q.ID, 2001, msg("after", 100), 0, false)
	flush(t, s)
	if c := s.Stats().Compactions; c != 0 {
		t.Fatalf("%d compactions", c)
	}
	sameSeqs(t, load(t, s, q.ID), 2000, 2001)
	if s.Stats().Bytes < 8<<20 {
		t.Errorf("store is %d bytes: it should still be the file the drain left", s.Stats().Bytes)
	}
	if err := os.RemoveAll(filepath.Join(dir, FileName+compactSuffix)); err != nil {
		t.Fatal(err)
	}
}

// TestStrayCompactionRemoved: a compaction's file left by a crash before
// its rename is removed by the next Open, which uses the old file.
func TestStrayCompactionRemoved(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	q := QueueRecord{Name: "q", ID: s.NewQueueID()}
	s.PutQueue(q)
	s.Put(q.ID, 1, msg("a", 10), 0, false)
	flush(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(dir, FileName+compactSuffix)
	if err := os.WriteFile(stray, []byte("half a file"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, Options{})
	if _, err := os.Stat(stray); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stray compaction file after Open: %v", err)
	}
	recoverOne(t, s, q, 1)
}

// TestCompactionDirSyncFails: when the data dir cannot be synced after a
// compaction's rename, no checkpoint is written until it can, so a crash
// that brings the old file back loses nothing confirmed: the log still
// holds everything the old file lacks.
func TestCompactionDirSyncFails(t *testing.T) {
	lowCompactionThresholds(t)
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	var failing atomic.Bool
	failing.Store(true)
	s.dirSyncFault = func() error {
		if failing.Load() {
			return errInjected
		}
		return nil
	}
	q := QueueRecord{Name: "q", ID: s.NewQueueID()}
	s.PutQueue(q)
	flush(t, s)
	// A second name for the file in use now, which the compaction's
	// rename takes FileName from: the file a lost rename brings back.
	if err := os.Link(filepath.Join(dir, FileName), filepath.Join(dir, "old.db")); err != nil {
		t.Fatal(err)
	}
	fillAndDrain(t, s, q.ID, 6000, 10)
	waitCompactions(t, s, 1)

	putSynced(t, s, q.ID, 6001, msg("confirmed", 100))
	waitUntil(t, func() bool { return s.Stats().CheckpointsFailed > 0 },
		func() string { return "no checkpoint was held back while the data dir could not be synced" })
	want := []uint64{5991, 5992, 5993, 5994, 5995, 5996, 5997, 5998, 5999, 6000, 6001}
	for _, db := range []string{"old.db", FileName} {
		crashed := openTest(t, copyStore(t, dir, db), Options{})
		recoverOne(t, crashed, q, want...)
	}

	failing.Store(false)
	flush(t, s)
	sameSeqs(t, load(t, s, q.ID), want...)
}

// TestDirLockKeepsOut: the data dir's own lock is what keeps a second
// Warren out, whatever bbolt's file is (a compaction replaces it).
func TestDirLockKeepsOut(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{LockTimeout: 20 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Fatalf("Open of a locked data dir: %v, want ErrLocked", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	s := openTest(t, dir, Options{})
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err == nil {
		t.Fatal("data dir not locked by an open store")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB); err != nil {
		t.Fatalf("data dir still locked after Close: %v", err)
	}
}

// pageSizeOf is the page size of the file s has open.
func pageSizeOf(s *Store) int {
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	return s.db.Info().PageSize
}

// TestOlderPageSize opens a file made with 4 KiB pages, as data dirs from
// before filePageSize were: it keeps its page size and its messages, and
// the first compaction moves it to filePageSize.
func TestOlderPageSize(t *testing.T) {
	if filePageSize == 4096 {
		t.Fatal("filePageSize is 4 KiB: nothing to test")
	}
	fresh := openTest(t, "", Options{})
	if got := pageSizeOf(fresh); got != filePageSize {
		t.Fatalf("a new file has %d-byte pages, want %d", got, filePageSize)
	}
	// Closed now: the globals changed below are read by its checkpointer.
	if err := fresh.Close(); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	newSize := filePageSize
	filePageSize = 4096
	old, err := Open(dir, Options{})
	filePageSize = newSize
	if err != nil {
		t.Fatal(err)
	}
	q := QueueRecord{Name: "q", ID: old.NewQueueID()}
	old.PutQueue(q)
	const n = 6000
	for seq := 1; seq <= n; seq++ {
		old.Put(q.ID, uint64(seq), msg("m", 4096), 0, false)
	}
	flush(t, old)
	if pageSizeOf(old) != 4096 {
		t.Fatalf("file made with %d-byte pages, want 4096", pageSizeOf(old))
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	lowCompactionThresholds(t)
	s := openTest(t, dir, Options{})
	want := make([]uint64, n)
	for i := range want {
		want[i] = uint64(i + 1)
	}
	recoverOne(t, s, q, want...)
	if got := pageSizeOf(s); got != 4096 {
		t.Fatalf("reopened file has %d-byte pages, want its own 4096", got)
	}
	for seq := 1; seq <= n-10; seq++ {
		s.Delete(q.ID, uint64(seq))
	}
	flush(t, s)
	waitCompactions(t, s, 1)
	if got := pageSizeOf(s); got != filePageSize {
		t.Fatalf("compacted file has %d-byte pages, want %d", got, filePageSize)
	}
	es := load(t, s, q.ID)
	sameSeqs(t, es, want[n-10:]...)
	if body := msg("m", 4096).Body; !bytes.Equal(es[9].Msg.Body, body) {
		t.Errorf("body of %d is %d bytes, not the one stored", n, len(es[9].Msg.Body))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, dir, Options{})
	recoverOne(t, s2, q, want[n-10:]...)
	if got := pageSizeOf(s2); got != filePageSize {
		t.Fatalf("after a restart the file has %d-byte pages, want %d", got, filePageSize)
	}
}
