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
		s.Put(q.ID, seq, m, 0, false)
		if s.Over() {
			t.Fatalf("Over after %d bytes, bound %d", seq*uint64(per), maxBacklog)
		}
	}
	if ch := s.Throttle(); ch != nil {
		t.Fatal("Throttle gave a channel with the store not Over")
	}
	s.Put(q.ID, n+1, m, 0, false)
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
	s.Put(q.ID, n+2, m, 0, false)
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
		s.Put(q.ID, seq, m, 0, true)
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
