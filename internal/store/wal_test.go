package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/warrenmq/warren/queue"
)

// syncAll waits until everything logged so far is on disk, in the log.
func syncAll(t testing.TB, s *Store) uint64 {
	t.Helper()
	r := newRecorder()
	b := s.WatchSynced(r)
	if c := <-r.ch; c.lastFailed >= b && b != 0 {
		t.Fatalf("batch %d failed", c.lastFailed)
	}
	return b
}

// putWatched puts a message, waits until the batch holding it is done,
// and returns that batch and the report. The hold makes the wait join the
// message's own batch: without it the lazy timer may take that batch
// first, and the wait would join the next one.
func putWatched(t testing.TB, s *Store, qid, seq uint64, m *queue.Message) (uint64, call) {
	t.Helper()
	s.Hold()
	s.Put(qid, seq, m, 0, false)
	r := newRecorder()
	b := s.WatchSynced(r)
	s.Release()
	return b, <-r.ch
}

// putSynced is putWatched for a batch that must be synced. Unlike syncAll
// it works with checkpoints paused and the logger past maxUnapplied after
// that batch: the logger then waits for a checkpoint, and a wait on a
// later batch would never end.
func putSynced(t testing.TB, s *Store, qid, seq uint64, m *queue.Message) {
	t.Helper()
	if b, c := putWatched(t, s, qid, seq, m); c.batch != b || c.lastFailed != 0 {
		t.Fatalf("Committed(%d, %d), want (%d, 0)", c.batch, c.lastFailed, b)
	}
}

// crashCopy copies s's files, as a crash would leave them once everything
// logged so far is synced, to a new directory and returns it. s must have
// checkpoints paused, so that bbolt's file does not change meanwhile.
func crashCopy(t testing.TB, s *Store) string {
	t.Helper()
	syncAll(t, s)
	return copyFiles(t, s)
}

// copyFiles is crashCopy for a caller that has waited for the sync itself.
func copyFiles(t testing.TB, s *Store) string {
	t.Helper()
	return copyStore(t, s.dir, FileName)
}

// copyStore copies the log files of dir, and its file db as the store's
// bbolt file, to a new directory and returns it.
func copyStore(t testing.TB, from, db string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{FileName, walNames[0], walNames[1]} {
		srcName := name
		if name == FileName {
			srcName = db
		}
		src, err := os.Open(filepath.Join(from, srcName))
		if err != nil {
			t.Fatal(err)
		}
		dst, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(dst, src); err != nil {
			t.Fatal(err)
		}
		src.Close()
		if err := dst.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// openPaused opens a store with checkpoints paused and logs a durable
// queue q in it.
func openPaused(t testing.TB) (*Store, QueueRecord) {
	t.Helper()
	s := openTest(t, "", Options{})
	s.pauseCheckpoints.Store(true)
	q := QueueRecord{Name: "q", ID: s.NewQueueID()}
	s.PutQueue(q)
	return s, q
}

// reopen ends s and opens its data again: after Close, or with crash from
// a crash copy (then the new store's checkpoints are paused too, and s is
// closed only by the test's cleanup).
func reopen(t testing.TB, s *Store, crash bool) *Store {
	t.Helper()
	if !crash {
		flush(t, s)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return openTest(t, s.dir, Options{})
	}
	s = openTest(t, crashCopy(t, s), Options{})
	s.pauseCheckpoints.Store(true)
	return s
}

// TestLogFilesReused runs many checkpoints, so the log files are switched
// and written over again and again, then crashes with the last changes in
// the log only: the entries are exactly those put and not deleted.
func TestLogFilesReused(t *testing.T) {
	s := openTest(t, "", Options{})
	q := QueueRecord{Name: "q", ID: s.NewQueueID()}
	s.PutQueue(q)
	var want []uint64
	seq := uint64(0)
	for round := range 40 {
		if round == 30 {
			syncAll(t, s)
			s.pauseCheckpoints.Store(true)
		}
		for range 50 {
			seq++
			s.Put(q.ID, seq, msg("r", 100+round), 0, false)
			if seq%3 != 0 {
				want = append(want, seq)
			}
		}
		syncAll(t, s) // a batch per round: deletes in a later one
		for i := seq - 49; i <= seq; i++ {
			if i%3 == 0 {
				s.Delete(q.ID, i)
			}
		}
		if round < 30 {
			flush(t, s) // a checkpoint
		}
	}
	st := s.Stats()
	if st.Checkpoints < 30 {
		t.Fatalf("%d checkpoints, want at least 30", st.Checkpoints)
	}
	c := reopen(t, s, true)
	if _, err := c.Recover(); err != nil {
		t.Fatal(err)
	}
	sameSeqs(t, load(t, c, q.ID), want...)
}

// TestCheckpointCoalesces: a message put in one batch and deleted in a
// later one of the same checkpoint is never written to bbolt.
func TestCheckpointCoalesces(t *testing.T) {
	s := openTest(t, "", Options{})
	q := QueueRecord{Name: "q", ID: s.NewQueueID()}
	s.PutQueue(q)
	flush(t, s)
	s.pauseCheckpoints.Store(true)
	s.Put(q.ID, 1, msg("a", 10), 0, false)
	s.Put(q.ID, 2, msg("b", 10), 0, false)
	s.Put(q.ID, 3, msg("c", 10), 0, true)
	syncAll(t, s)
	s.Delivered(q.ID, 1)
	s.Delete(q.ID, 3)
	syncAll(t, s)
	s.Delete(q.ID, 1)
	// 4 is put twice, then deleted: both writes are applied, then the
	// delete, never a write left behind.
	s.Put(q.ID, 4, msg("d", 10), 0, false)
	syncAll(t, s)
	s.Put(q.ID, 4, msg("e", 10), 0, false)
	syncAll(t, s)
	s.Delete(q.ID, 4)
	// 5 is put, its queue's range purged (2 with it), then put again:
	// the second write stays, and a delete in a later batch cancels it.
	s.Put(q.ID, 5, msg("f", 10), 0, false)
	syncAll(t, s)
	s.DeleteRange(q.ID, 2, 10)
	syncAll(t, s)
	s.Put(q.ID, 5, msg("g", 10), 0, false)
	s.Put(q.ID, 6, msg("h", 10), 0, false)
	syncAll(t, s)
	s.Delete(q.ID, 6)
	before := s.Stats()
	s.pauseCheckpoints.Store(false)
	flush(t, s)
	st := s.Stats()
	if n := st.Checkpoints - before.Checkpoints; n != 1 {
		t.Fatalf("%d checkpoints, want 1", n)
	}
	// Applied: 2's write, 1's delivered mark (which finds no entry), 4's
	// two writes and its delete, 5's first write, the range, 5's second
	// write. 1, 3 and 6 are cancelled with their deletes.
	if n := st.CheckpointOps - before.CheckpointOps; n != 8 {
		t.Errorf("%d ops applied, want 8", n)
	}
	es := load(t, s, q.ID)
	sameSeqs(t, es, 5)
	if len(es) == 1 && string(es[0].Msg.Body[:1]) != "g" {
		t.Errorf("entry 5 holds %q, want the second write", es[0].Msg.Body)
	}
	if c := storedCounters(t, s, q.ID); c.count != 1 || c.bytes != 10 {
		t.Errorf("counters %+v, want 1 entry of 10 bytes", c)
	}
}

// TestTornLogTail: a record cut short by a crash is not applied, nor is
// anything after it; everything before it is.
func TestTornLogTail(t *testing.T) {
	s, q := openPaused(t)
	s.Put(q.ID, 1, msg("a", 100), 0, false)
	syncAll(t, s)
	s.Put(q.ID, 2, msg("b", 100), 0, false)
	syncAll(t, s)
	s.logMu.Lock()
	end, cur := s.wal.off, s.wal.cur
	s.logMu.Unlock()
	dir := crashCopy(t, s)

	// Flip a byte in the last record's body.
	f, err := os.OpenFile(filepath.Join(dir, walNames[cur]), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := []byte{0}
	if _, err := f.ReadAt(b, end-5); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, end-5); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := CheckDir(dir); err != nil {
		t.Fatalf("CheckDir of a torn log: %v", err)
	}

	c := openTest(t, dir, Options{})
	recoverOne(t, c, q, 1)

	// Written on: the new records follow the good ones, and a second
	// crash brings back both the old and the new.
	c.pauseCheckpoints.Store(true)
	c.Put(q.ID, 3, msg("c", 100), 0, false)
	c2 := reopen(t, c, true)
	if _, err := c2.Recover(); err != nil {
		t.Fatal(err)
	}
	sameSeqs(t, load(t, c2, q.ID), 1, 3)
}

// TestLogGapRefused: if a record the checkpoint needs is missing while
// later ones are there, Open refuses the store rather than skip it.
func TestLogGapRefused(t *testing.T) {
	s, q := openPaused(t)
	syncAll(t, s)
	s.Put(q.ID, 1, msg("a", 100), 0, false)
	syncAll(t, s)
	dir := crashCopy(t, s)
	// Move the records to the other file, dropping the first: record 2
	// then follows nothing.
	data, err := os.ReadFile(filepath.Join(dir, walNames[0]))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := readRun(bytes.NewReader(data), int64(len(data)))
	if err != nil || len(recs) != 2 {
		t.Fatalf("read %d records: %v", len(recs), err)
	}
	first := walHeader + len(recs[0].payload)
	if err := os.WriteFile(filepath.Join(dir, walNames[1]), data[first:], 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, walNames[0]), make([]byte, len(data)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := CheckDir(dir); !errors.Is(err, errCorrupt) {
		t.Fatalf("CheckDir = %v, want a missing log record", err)
	}
	_, err = Open(dir, Options{})
	if !errors.Is(err, errCorrupt) {
		t.Fatalf("Open = %v, want a missing log record", err)
	}
	// bbolt was not touched.
	db, err := bbolt.Open(filepath.Join(dir, FileName), 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bbolt.Tx) error {
		if n := checkpointOf(tx); n != 0 {
			t.Errorf("checkpoint %d, want 0", n)
		}
		return nil
	})
}

// TestLargeRecord: a record larger than the buffer the logger keeps, and
// than the log file, grows the file and is checkpointed like any other.
func TestLargeRecord(t *testing.T) {
	s := openTest(t, "", Options{})
	q := QueueRecord{Name: "q", ID: s.NewQueueID()}
	s.PutQueue(q)
	s.Put(q.ID, 1, msg("big", maxKeptArena+walMinSize), 0, false)
	flush(t, s)
	s.logMu.Lock()
	lsn := s.wal.lsn
	s.logMu.Unlock()
	s.db.View(func(tx *bbolt.Tx) error {
		if got := checkpointOf(tx); got != lsn {
			t.Errorf("checkpoint at %d, the log at %d", got, lsn)
		}
		return nil
	})
	s.pauseCheckpoints.Store(true)
	// big2 alone is over maxUnapplied: see putSynced.
	putSynced(t, s, q.ID, 2, msg("big2", maxKeptArena+walMinSize))
	c := openTest(t, copyFiles(t, s), Options{})
	c.pauseCheckpoints.Store(true)
	if _, err := c.Recover(); err != nil {
		t.Fatal(err)
	}
	es := load(t, c, q.ID)
	sameSeqs(t, es, 1, 2)
	for _, e := range es {
		if len(e.Msg.Body) != maxKeptArena+walMinSize {
			t.Errorf("entry %d has %d bytes", e.Seq, len(e.Msg.Body))
		}
	}
}

// TestCloseWithFailingCheckpoints: while bbolt fails, changes stay safe in
// the log; Close does not wait for bbolt to recover, and the next Open
// applies them.
func TestCloseWithFailingCheckpoints(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.ckptFault = func() error { return errInjected }
	q := QueueRecord{Name: "q", ID: s.NewQueueID()}
	s.PutQueue(q)
	s.Put(q.ID, 1, msg("a", 10), 0, false)
	syncAll(t, s)
	for s.Stats().CheckpointsFailed == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	c := openTest(t, dir, Options{})
	recoverOne(t, c, q, 1)
}

// slowErrors is a log handler that takes its time over errors, as a
// logger writing to a slow disk might.
type slowErrors struct{ slog.Handler }

func (h slowErrors) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		time.Sleep(50 * time.Millisecond)
	}
	return h.Handler.Handle(ctx, r)
}

// TestWaitSeesFailureAtOnce: a failed batch is never reported done
// without its failure, however long the logger takes over it.
func TestWaitSeesFailureAtOnce(t *testing.T) {
	g := newGate()
	log := slog.New(slowErrors{slog.DiscardHandler})
	s := openTest(t, "", Options{Fault: g.fault, Logger: log})
	g.fail.Store(true)
	b := s.PutExchange(ExchangeRecord{Name: "x", Type: "direct"})
	if err := s.Wait(b); !errors.Is(err, errInjected) {
		t.Fatalf("Wait = %v, want the injected fault", err)
	}
	g.fail.Store(true)
	b = s.PutExchange(ExchangeRecord{Name: "y", Type: "direct"})
	if err := s.WaitSynced(b); !errors.Is(err, errInjected) {
		t.Fatalf("WaitSynced = %v, want the injected fault", err)
	}
}

// TestFailedSyncWiped: a record whose fdatasync failed may be on disk
// whole; it is wiped, so a crash does not bring back a batch reported
// failed, and records after it, in either file, replay.
func TestFailedSyncWiped(t *testing.T) {
	s, q := openPaused(t)
	syncAll(t, s)
	s.logMu.Lock()
	s.wal.syncFault = func() error { return errInjected }
	s.logMu.Unlock()
	if b, c := putWatched(t, s, q.ID, 1, msg("a", 10)); c.lastFailed != b {
		t.Fatalf("Committed(%d, %d), want batch %d failed", c.batch, c.lastFailed, b)
	}
	s.logMu.Lock()
	s.wal.syncFault = nil
	s.wal.switchFile() // as a checkpoint of the failed batch would
	s.logMu.Unlock()
	s.Put(q.ID, 2, msg("b", 10), 0, false)
	c := reopen(t, s, true)
	recoverOne(t, c, q, 2)
}

// TestRefusedAtLog: a change bbolt would refuse fails its batch when it is
// logged, not every checkpoint after it.
func TestRefusedAtLog(t *testing.T) {
	s := openTest(t, "", Options{})
	b := s.PutExchange(ExchangeRecord{Name: strings.Repeat("x", bbolt.MaxKeySize+1), Type: "direct"})
	if err := s.Wait(b); err == nil {
		t.Fatal("an exchange name bbolt refuses was accepted")
	}
	mustWait(t, s, s.PutExchange(ExchangeRecord{Name: "x", Type: "direct"}))
	if st := s.Stats(); st.CheckpointsFailed != 0 {
		t.Fatalf("%d checkpoints failed", st.CheckpointsFailed)
	}
}

// TestStaleLogIgnored: log files beside a new bbolt file (the old one
// deleted by hand) are not applied to it.
func TestStaleLogIgnored(t *testing.T) {
	s, q := openPaused(t)
	s.Put(q.ID, 1, msg("a", 10), 0, false)
	dir := crashCopy(t, s)
	if err := os.Remove(filepath.Join(dir, FileName)); err != nil {
		t.Fatal(err)
	}
	c := openTest(t, dir, Options{})
	rec, err := c.Recover()
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Queues) != 0 || hasQueueBucket(t, c, q.ID) {
		t.Fatalf("a new store got the old log's queue: %+v", rec.Queues)
	}
}

// TestLoggerWaitsForCheckpoints: the logger runs at most maxUnapplied
// (and the batch that crossed it) ahead of bbolt, so what waits in memory
// for a checkpoint is bounded; what comes after waits for a checkpoint.
func TestLoggerWaitsForCheckpoints(t *testing.T) {
	s, q, m, per := pausedStore(t)
	n := uint64(maxUnapplied/per + 1)
	for seq := uint64(1); seq <= n; seq++ { // a batch each, the last over the bound
		putSynced(t, s, q.ID, seq, m)
	}
	s.Put(q.ID, n+1, m, 0, false)
	r := newRecorder()
	last := s.WatchSynced(r)
	syncedOnlyAfterCheckpoint(t, s, last, r, fmt.Sprintf("%d bytes", maxUnapplied))
	flush(t, s)
	if es := load(t, s, q.ID); uint64(len(es)) != n+1 {
		t.Fatalf("%d entries, want %d", len(es), n+1)
	}
}

// syncedOnlyAfterCheckpoint checks that batch last, whose waiter is r, is
// not synced while checkpoints are paused (polling a while: more than
// bound is unapplied), then resumes them and checks that it is.
func syncedOnlyAfterCheckpoint(t *testing.T, s *Store, last uint64, r *recorder, bound string) {
	t.Helper()
	for range 100 {
		select {
		case c := <-r.ch:
			t.Fatalf("batch %d synced with more than %s unapplied", c.batch, bound)
		default:
		}
		time.Sleep(time.Millisecond)
	}
	s.pauseCheckpoints.Store(false)
	s.wakeCheckpointer()
	if c := <-r.ch; c.batch != last || c.lastFailed != 0 {
		t.Fatalf("Committed(%d, %d), want (%d, 0)", c.batch, c.lastFailed, last)
	}
}

// TestSharedPutsLoggedOnce: a message put to three durable queues in one
// batch (a fanout) is written to the log once, and after a crash each
// queue has it, with its own expiry and delivered mark.
func TestSharedPutsLoggedOnce(t *testing.T) {
	s, q1 := openPaused(t)
	q2 := QueueRecord{Name: "q2", ID: s.NewQueueID()}
	q3 := QueueRecord{Name: "q3", ID: s.NewQueueID()}
	s.PutQueue(q2)
	s.PutQueue(q3)
	syncAll(t, s)
	s.logMu.Lock()
	before := s.wal.off
	s.logMu.Unlock()

	const size = 64 << 10
	m, other := msg("fan", size), msg("other", 100)
	expires := time.Now().Add(time.Hour).UnixNano()
	s.Hold()
	s.Put(q1.ID, 1, m, 0, false)
	s.Put(q2.ID, 1, other, 0, false) // another message between them
	s.Put(q2.ID, 2, m, expires, false)
	s.Put(q3.ID, 1, m, 0, false)
	s.Delivered(q3.ID, 1)
	s.Release()
	c := openTest(t, crashCopy(t, s), Options{})
	c.pauseCheckpoints.Store(true)
	s.logMu.Lock()
	logged := s.wal.off - before
	s.logMu.Unlock()
	if logged >= 2*size {
		t.Errorf("logged %d bytes for one %d-byte message in three queues", logged, size)
	}

	if _, err := c.Recover(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		q         uint64
		seq       uint64
		m         *queue.Message
		expires   int64
		delivered bool
	}{
		{q1.ID, 1, m, 0, false},
		{q2.ID, 1, other, 0, false},
		{q2.ID, 2, m, expires, false},
		{q3.ID, 1, m, 0, true},
	} {
		var e *queue.Entry
		es := load(t, c, want.q)
		for i := range es {
			if es[i].Seq == want.seq {
				e = &es[i]
			}
		}
		switch {
		case e == nil:
			t.Errorf("queue %d entry %d: missing", want.q, want.seq)
		case !bytes.Equal(e.Msg.Body, want.m.Body) || e.Msg.Exchange != want.m.Exchange ||
			e.Msg.RoutingKey != want.m.RoutingKey || !bytes.Equal(e.Msg.Props, want.m.Props):
			t.Errorf("queue %d entry %d: another message (%d bytes, exchange %q)", want.q, want.seq, len(e.Msg.Body), e.Msg.Exchange)
		case e.ExpiresAt != want.expires || e.Redelivered != want.delivered:
			t.Errorf("queue %d entry %d: expires %d, delivered %v; want %d, %v", want.q, want.seq, e.ExpiresAt, e.Redelivered, want.expires, want.delivered)
		}
	}
}

// TestSharedPutCorrupt: a shared put that names no earlier put of its
// record is refused as corrupt, not followed.
func TestSharedPutCorrupt(t *testing.T) {
	m := msg("m", 10)
	full, _, err := appendOps(nil, []op{{kind: opPut, id: 1, seq: 1, msg: m}, {kind: opPut, id: 2, seq: 1, msg: m}})
	if err != nil {
		t.Fatal(err)
	}
	ops, err := decodeOps(full, nil)
	if err != nil || len(ops) != 2 || ops[1].msg == nil || !bytes.Equal(ops[1].msg.Body, m.Body) {
		t.Fatalf("decoded %d ops (%v)", len(ops), err)
	}
	first, _, _ := appendOps(nil, []op{{kind: opPut, id: 1, seq: 1, msg: m}})
	shared := full[len(first):] // the second op alone
	if shared[0] != logPutShared {
		t.Fatalf("second op is kind %d, want a shared put", shared[0])
	}
	del, _, _ := appendOps(nil, []op{{kind: opDelete, id: 1, seq: 1}})
	for name, p := range map[string][]byte{
		"first op":       shared,
		"after a delete": append(slices.Clip(del), shared...),
		"names itself":   append(slices.Clip(first), append([]byte{logPutShared, 2, 1, 1}, shared[4:]...)...),
		"record cut":     full[:len(full)-3],
		"huge op number": append([]byte{logPutShared, 2, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, shared[4:]...),
	} {
		if _, err := decodeOps(p, nil); !errors.Is(err, errCorrupt) {
			t.Errorf("%s: %v, want errCorrupt", name, err)
		}
	}
}

// TestLoggerBoundsWrites: a message put to many queues is held once but
// written to bbolt once for each, so the logger also runs at most
// maxUnappliedWrites of those writes ahead of bbolt.
func TestLoggerBoundsWrites(t *testing.T) {
	s, q := openPaused(t)
	ids := []uint64{q.ID}
	for i := range 9 {
		r := QueueRecord{Name: fmt.Sprintf("q%d", i), ID: s.NewQueueID()}
		s.PutQueue(r)
		ids = append(ids, r.ID)
	}
	syncAll(t, s)
	m := msg("m", 1<<20)
	per := int64(len(ids)) * opBytes(&op{kind: opPut, msg: m})
	n := uint64(maxUnappliedWrites/per + 1)
	if int64(n)*(opBytes(&op{kind: opPut, msg: m})+int64(len(ids)-1)*sharedBytes) > maxUnapplied {
		t.Fatalf("%d batches would pass maxUnapplied too", n)
	}
	// fanout logs one batch with a new message in every queue and
	// returns it and its waiter.
	fanout := func(seq uint64) (uint64, *recorder) {
		s.Hold()
		m := another(m)
		for _, id := range ids {
			s.Put(id, seq, m, 0, false)
		}
		r := newRecorder()
		b := s.WatchSynced(r)
		s.Release()
		return b, r
	}
	for seq := uint64(1); seq <= n; seq++ { // the last over the bound
		if b, r := fanout(seq); (<-r.ch).batch != b {
			t.Fatalf("batch %d not synced", b)
		}
	}
	last, r := fanout(n + 1)
	syncedOnlyAfterCheckpoint(t, s, last, r, fmt.Sprintf("%d bytes of writes", maxUnappliedWrites))
	flush(t, s)
	for _, id := range ids {
		if es := load(t, s, id); uint64(len(es)) != n+1 {
			t.Fatalf("queue %d: %d entries, want %d", id, len(es), n+1)
		}
	}
}
