package store

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/warrenmq/warren/queue"
)

// openTest opens a store in dir (t.TempDir() if empty). Its cleanup checks
// the open store, closes it, and checks the file again read-only.
func openTest(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.mu.Lock()
		closing := s.closing
		s.mu.Unlock()
		if !closing {
			if err := s.Check(); err != nil {
				t.Error(err)
			}
		}
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		if err := CheckDir(s.dir); err != nil {
			t.Error(err)
		}
	})
	return s
}

// mustWait waits for batch and fails the test if it failed.
func mustWait(t testing.TB, s *Store, batch uint64) {
	t.Helper()
	if err := s.Wait(batch); err != nil {
		t.Fatal(err)
	}
}

// flush waits for everything logged so far.
func flush(t testing.TB, s *Store) { mustWait(t, s, s.Pending()) }

// msg makes a message with a body of n bytes derived from tag.
func msg(tag string, n int) *queue.Message {
	body := bytes.Repeat([]byte(tag), n/max(len(tag), 1)+1)[:n]
	return &queue.Message{
		Exchange:   "ex-" + tag,
		RoutingKey: "rk-" + tag,
		Props:      append([]byte{0x80, 0x00, byte(len(tag))}, tag...), // content-type tag
		Body:       body,
	}
}

// load loads every entry of queue id.
func load(t testing.TB, s *Store, id uint64) []queue.Entry {
	t.Helper()
	es, err := s.Load(id, 0, ^uint64(0), 1<<62, nil)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// recoverOne recovers s, which must hold just the queue q, and checks
// that q's entries are want.
func recoverOne(t testing.TB, s *Store, q QueueRecord, want ...uint64) {
	t.Helper()
	rec, err := s.Recover()
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Queues) != 1 || rec.Queues[0].Name != q.Name {
		t.Fatalf("queues %+v, want just %q", rec.Queues, q.Name)
	}
	sameSeqs(t, load(t, s, q.ID), want...)
}

// seqs returns the seqs of es.
func seqs(es []queue.Entry) []uint64 {
	var out []uint64
	for _, e := range es {
		out = append(out, e.Seq)
	}
	return out
}

func sameSeqs(t testing.TB, got []queue.Entry, want ...uint64) {
	t.Helper()
	if g := seqs(got); fmt.Sprint(g) != fmt.Sprint(want) {
		t.Fatalf("seqs = %v, want %v", g, want)
	}
}

// storedCounters reads queue id's counters from the file.
func storedCounters(t testing.TB, s *Store, id uint64) counters {
	t.Helper()
	var c counters
	err := s.db.View(func(tx *bbolt.Tx) error {
		k := key64(id)
		q := tx.Bucket(bucketMessages).Bucket(k[:])
		if q == nil {
			return nil
		}
		if v := q.Get(keyCounters); v != nil {
			var err error
			c, err = decodeCounters(v)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// hasQueueBucket reports whether the file holds a bucket for queue id.
func hasQueueBucket(t testing.TB, s *Store, id uint64) bool {
	t.Helper()
	var ok bool
	_ = s.db.View(func(tx *bbolt.Tx) error {
		k := key64(id)
		ok = tx.Bucket(bucketMessages).Bucket(k[:]) != nil
		return nil
	})
	return ok
}

// gate is a Fault that fails the next commit when fail is set, and, when
// armed, blocks the next commit (that it does not fail) until released.
type gate struct {
	armed   atomic.Bool
	fail    atomic.Bool // fail the next commit
	entered chan struct{}
	release chan struct{}
}

func newGate() *gate {
	return &gate{entered: make(chan struct{}), release: make(chan struct{})}
}

var errInjected = fmt.Errorf("injected fault")

func (g *gate) fault() error {
	if g.fail.CompareAndSwap(true, false) {
		return errInjected
	}
	if g.armed.CompareAndSwap(true, false) {
		g.entered <- struct{}{}
		<-g.release
	}
	return nil
}

// call is one Committed call.
type call struct{ batch, lastFailed uint64 }

// recorder is a Waiter that records its calls.
type recorder struct {
	mu    sync.Mutex
	calls []call // guarded by mu
	ch    chan call
}

func newRecorder() *recorder { return &recorder{ch: make(chan call, 1000)} }

func (r *recorder) Committed(batch, lastFailed uint64) {
	r.mu.Lock()
	r.calls = append(r.calls, call{batch, lastFailed})
	r.mu.Unlock()
	r.ch <- call{batch, lastFailed}
}

// another returns a copy of m, as another publish of the same bytes
// would be: a batch counts a message's bytes once however many puts hold
// it.
func another(m *queue.Message) *queue.Message {
	c := *m
	return &c
}

// pausedStore opens a store with one queue declared and its checkpoints
// paused, and returns a message of 1 MiB and the bytes it counts while it
// waits for bbolt (opBytes).
func pausedStore(t testing.TB) (*Store, QueueRecord, *queue.Message, int64) {
	s := openTest(t, "", Options{})
	q := QueueRecord{Name: "q", ID: s.NewQueueID()}
	s.PutQueue(q)
	flush(t, s)
	s.pauseCheckpoints.Store(true)
	m := msg("m", 1<<20)
	return s, q, m, opBytes(&op{kind: opPut, msg: m})
}
