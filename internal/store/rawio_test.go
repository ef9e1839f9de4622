package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRawWriteAndSync: what rawWriteAt writes is in the file where it was
// put, the raw fdatasync syncs it, and both report a bad descriptor.
func TestRawWriteAndSync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a, b := bytes.Repeat([]byte("a"), 3000), bytes.Repeat([]byte("b"), 100)
	if err := rawWriteAt(f, a, 0); err != nil {
		t.Fatal(err)
	}
	if err := rawWriteAt(f, b, 1000); err != nil {
		t.Fatal(err)
	}
	if err := fdatasync(f, true); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := append(append(append([]byte{}, a[:1000]...), b...), a[1100:]...)
	if !bytes.Equal(got, want) {
		t.Fatalf("file holds %d bytes, not what was written", len(got))
	}
	r, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := rawWriteAt(r, b, 0); !errors.Is(err, unix.EBADF) {
		t.Errorf("write to a read-only file: %v, want EBADF", err)
	}
	closed, err := os.Create(filepath.Join(t.TempDir(), "closed"))
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	if err := fdatasync(closed, true); !errors.Is(err, unix.EBADF) {
		t.Errorf("sync of no file: %v, want EBADF", err)
	}
}

// TestSmallCommitsRaw: with another P free, a small batch is logged with
// raw system calls, a large one or one on a single P is not, and after a
// failed commit the next goes through the runtime; whatever way they were
// written, the messages come back after a crash.
func TestSmallCommitsRaw(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	s, q := openPaused(t)
	s.logMu.Lock()
	s.wal.rawOK = true           // also under the race detector, for this test
	s.wal.rawMaxCommit = 1 << 62 // a busy machine's commit is not a slow disk
	s.logMu.Unlock()
	syncAll(t, s)
	seq := uint64(0)
	put := func(n int) {
		t.Helper()
		s.Hold() // one batch
		for range n {
			seq++
			s.Put(q.ID, seq, msg("m", 100), 0, false)
		}
		s.Release()
		syncAll(t, s)
	}
	raw := func() uint64 { return s.Stats().RawCommits }

	r0 := raw()
	put(1)
	if raw() != r0+1 {
		t.Fatalf("a commit of 1 change: %d raw commits, want 1", raw()-r0)
	}
	put(rawMaxOps + 1)
	put(1)
	if raw() != r0+2 {
		t.Fatalf("commits of %d and 1 changes: %d raw in all, want 2", rawMaxOps+1, raw()-r0)
	}
	runtime.GOMAXPROCS(1)
	put(1)
	runtime.GOMAXPROCS(2)
	if raw() != r0+2 {
		t.Fatalf("a commit on one P was raw")
	}

	// A failed commit: the one after it is written through the runtime,
	// the next raw again.
	s.logMu.Lock()
	s.wal.syncFault = func() error { return errInjected }
	s.logMu.Unlock()
	seq++
	lost := seq // its batch fails: not logged
	if b, c := putWatched(t, s, q.ID, lost, msg("lost", 10)); c.lastFailed != b {
		t.Fatal("the injected fault did not fail the batch")
	}
	s.logMu.Lock()
	s.wal.syncFault = nil
	s.logMu.Unlock()
	before := raw()
	put(1)
	put(1)
	if got := raw() - before; got != 1 {
		t.Fatalf("two commits after a failure: %d raw, want 1 (the second)", got)
	}

	c := reopen(t, s, true)
	var want []uint64
	for i := uint64(1); i <= seq; i++ {
		if i != lost {
			want = append(want, i)
		}
	}
	recoverOne(t, c, q, want...)
	for _, e := range load(t, c, q.ID) {
		if !bytes.Equal(e.Msg.Body, msg("m", 100).Body) {
			t.Fatalf("entry %d came back with body %q", e.Seq, e.Msg.Body)
		}
	}
}
