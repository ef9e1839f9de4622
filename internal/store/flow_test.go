package store

import (
	"testing"
	"time"
)

// TestStoreFlow: with bbolt behind (checkpoints paused), the store is Over
// once more than maxBacklog bytes wait in memory, and Throttle's channel
// stays open until a checkpoint brings the backlog down; then it is
// closed and the store is no longer Over. Deletes of messages still in
// the pending batch take their bytes back out of the backlog.
func TestStoreFlow(t *testing.T) {
	s, q, m, per := pausedStore(t)
	n := uint64(maxBacklog / per)
	for seq := uint64(1); seq <= n; seq++ {
		s.Put(q.ID, seq, another(m), 0, false)
		if s.Over() {
			t.Fatalf("Over after %d bytes, bound %d", seq*uint64(per), maxBacklog)
		}
	}
	if ch := s.Throttle(); ch != nil {
		t.Fatal("Throttle gave a channel with the store not Over")
	}
	s.Put(q.ID, n+1, another(m), 0, false)
	if !s.Over() {
		t.Fatalf("not Over with %d bytes waiting, bound %d", s.backlog.Load(), maxBacklog)
	}
	ch := s.Throttle()
	if ch == nil {
		t.Fatal("Throttle gave no channel with the store Over")
	}
	// A put and its delete in the pending batch (held, so that the logger
	// does not take it between them) cancel out, bytes too.
	s.Hold()
	before := s.backlog.Load()
	s.Put(q.ID, n+2, another(m), 0, false)
	s.Delete(q.ID, n+2)
	after := s.backlog.Load()
	s.Release()
	if after != before {
		t.Errorf("backlog %d after a put and its delete, %d before", after, before)
	}
	select {
	case <-ch:
		t.Fatal("Throttle's channel closed with checkpoints paused")
	default:
	}
	s.pauseCheckpoints.Store(false)
	s.wakeCheckpointer()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("Throttle's channel still open after checkpoints resumed, backlog %d", s.backlog.Load())
	}
	if s.Over() {
		t.Errorf("Over after the backlog went down to %d", s.backlog.Load())
	}
	flush(t, s)
	if es := load(t, s, q.ID); uint64(len(es)) != n+1 {
		t.Fatalf("%d entries, want %d", len(es), n+1)
	}
	if b := s.backlog.Load(); b != 0 {
		t.Errorf("backlog %d with everything checkpointed", b)
	}
}

// TestStoreFlowClose: Close lets publishers held back by Throttle go, even
// with bbolt failing.
func TestStoreFlowClose(t *testing.T) {
	s := openTest(t, "", Options{})
	q := QueueRecord{Name: "q", ID: s.NewQueueID()}
	s.PutQueue(q)
	flush(t, s)
	s.ckptFault = func() error { return errInjected }
	m := msg("m", 1<<20)
	for seq := uint64(1); !s.Over(); seq++ {
		s.Put(q.ID, seq, another(m), 0, true)
		if seq > maxBacklog/(1<<20)+1 {
			t.Fatalf("not Over after %d messages of 1 MiB, bound %d", seq, maxBacklog)
		}
	}
	ch := s.Throttle()
	if ch == nil {
		t.Fatal("Throttle gave no channel with the store Over")
	}
	s.Close()
	select {
	case <-ch:
	default:
		t.Fatal("Throttle's channel still open after Close")
	}
	if s.Over() || s.Throttle() != nil {
		t.Error("a closed store is Over")
	}
}

// TestSharedPutsCountedOnce: a message put to three queues in one batch is
// held in memory once, and the backlog counts it once while any of its
// puts is live, whichever is settled first, and not at all after.
func TestSharedPutsCountedOnce(t *testing.T) {
	s, q1, m, per := pausedStore(t)
	q2 := QueueRecord{Name: "q2", ID: s.NewQueueID()}
	q3 := QueueRecord{Name: "q3", ID: s.NewQueueID()}
	s.PutQueue(q2)
	s.PutQueue(q3)
	s.Hold()
	defer s.Release()
	base := s.backlog.Load()
	for _, q := range []QueueRecord{q1, q2, q3} {
		s.Put(q.ID, 1, m, 0, false)
	}
	if got, want := s.backlog.Load()-base, per+2*sharedBytes; got != want {
		t.Fatalf("backlog grew by %d for one %d-byte message in three queues, want %d", got, len(m.Body), want)
	}
	// The first put, which counted the message, is settled first.
	for i, q := range []QueueRecord{q1, q2, q3} {
		s.Delete(q.ID, 1)
		want := per + int64(1-i)*sharedBytes // the message, and the other puts
		if i == 2 {
			want = 0
		}
		if got := s.backlog.Load() - base; got != want {
			t.Fatalf("after %d of 3 puts settled: backlog %d above the start, want %d", i+1, got, want)
		}
	}
}
