package store

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// directDir returns a data dir on a file system with direct I/O: the
// test's temp dir, or one beside the package's sources when that is on
// tmpfs. It skips the test where neither has it.
func directDir(t *testing.T) string {
	t.Helper()
	tmp := t.TempDir()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, parent := range []string{tmp, wd} {
		dir, err := os.MkdirTemp(parent, "direct-")
		if err != nil {
			continue
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		probe := filepath.Join(dir, "probe")
		if err := os.WriteFile(probe, nil, 0o600); err != nil {
			continue
		}
		if f := openDirect(probe); f != nil {
			f.Close()
			os.Remove(probe)
			return dir
		}
	}
	t.Skip("no file system with O_DIRECT here")
	return ""
}

// directInUse says whether s's log is written with O_DIRECT.
func directInUse(s *Store) bool {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.wal.direct[0] != nil && s.wal.direct[1] != nil
}

// directBody is the body of message seq: its size makes records end all
// over the log's blocks, some of them on a block's last byte or past it.
func directBody(seq uint64) []byte {
	n := int(seq*397%5000) + 1
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(seq) ^ byte(i*7)
	}
	return b
}

// putDirect puts messages from..to, each in a record of its own, and
// deletes every fifth in a later record.
func putDirect(t *testing.T, s *Store, qid, from, to uint64) []uint64 {
	t.Helper()
	var kept []uint64
	for seq := from; seq <= to; seq++ {
		m := msg("d", 0)
		m.Body = directBody(seq)
		putSynced(t, s, qid, seq, m)
		if seq%5 == 0 {
			s.Delete(qid, seq)
		} else {
			kept = append(kept, seq)
		}
	}
	syncAll(t, s)
	return kept
}

// checkDirect recovers a crash copy of s and checks that exactly the
// entries want are back, each with its own body.
func checkDirect(t *testing.T, s *Store, want []uint64) {
	t.Helper()
	c := openTest(t, crashCopy(t, s), Options{})
	c.pauseCheckpoints.Store(true)
	if _, err := c.Recover(); err != nil {
		t.Fatal(err)
	}
	es := load(t, c, 1)
	sameSeqs(t, es, want...)
	for _, e := range es {
		if !bytes.Equal(e.Msg.Body, directBody(e.Seq)) {
			t.Fatalf("entry %d: body of %d bytes is not the one put", e.Seq, len(e.Msg.Body))
		}
	}
}

// TestDirectLog: where the file system has direct I/O, the log is written
// with it, each record in whole blocks that rewrite the records before it
// in the same block; after a crash every synced record reads back.
func TestDirectLog(t *testing.T) {
	s := openTest(t, directDir(t), Options{})
	if !directInUse(s) {
		t.Fatal("the log is not written with O_DIRECT on a file system that has it")
	}
	s.pauseCheckpoints.Store(true)
	q := QueueRecord{Name: "q", ID: s.NewQueueID()}
	if q.ID != 1 {
		t.Fatalf("queue id %d, want 1", q.ID)
	}
	s.PutQueue(q)
	want := putDirect(t, s, q.ID, 1, 300)
	checkDirect(t, s, want)
	if !directInUse(s) {
		t.Fatal("direct writes were given up")
	}
}

// TestDirectLogFallback: a direct write the kernel refuses (here, from
// memory that is not block-aligned, as a device with larger blocks than
// directBlock would refuse one) is written through the page cache, and so
// is every record after it.
func TestDirectLogFallback(t *testing.T) {
	s := openTest(t, directDir(t), Options{})
	s.pauseCheckpoints.Store(true)
	q := QueueRecord{Name: "q", ID: s.NewQueueID()}
	s.PutQueue(q)
	want := putDirect(t, s, q.ID, 1, 40)

	s.logMu.Lock()
	b := alignedBlocks(1 << 20)
	s.wal.dbuf = b[1:]
	s.logMu.Unlock()
	want = append(want, putDirect(t, s, q.ID, 41, 80)...)
	if directInUse(s) {
		t.Fatal("still writing with O_DIRECT after the kernel refused a write")
	}
	checkDirect(t, s, want)
}
