package store

import (
	"sync/atomic"

	"github.com/warrenmq/warren/queue"
)

// opKind says what an op does.
type opKind uint8

const (
	opNone opKind = iota // cancelled by coalescing
	opPut
	opDelivered
	opDelete
	opDeleteRange
	opPutExchange
	opDeleteExchange
	opPutQueue
	opDeleteQueue
	opPutBinding
	opDeleteBinding
)

// op is one logged change. Messages are kept by pointer and encoded by the
// commit loop.
type op struct {
	kind      opKind
	transient bool // opPut
	delivered bool // opPut: the entry was delivered before it was written
	id        uint64
	seq       uint64 // lo for opDeleteRange
	hi        uint64 // opDeleteRange
	expiresAt int64  // opPut
	msg       *queue.Message
	// topo is the record of a topology op: *ExchangeRecord, *QueueRecord,
	// *BindingRecord, or the name (string) of an exchange or queue to
	// delete.
	topo any
	// bytes is what the op adds to its batch's bytes: opBytes, or
	// sharedBytes for a put whose message an earlier put of the batch
	// holds already (add, cancel).
	bytes int64
}

// entryKey names one entry.
type entryKey struct{ id, seq uint64 }

// pendingEntry locates an entry's ops in a batch: indexes into ops plus
// one, 0 for none.
type pendingEntry struct{ put, delivered int }

// maxKeptOps bounds the ops slice and index map a batch keeps for reuse.
const maxKeptOps = 1 << 16

// batch is the changes logged in one log record. The pending batch is
// guarded by Store.mu; the logger owns the batch it is writing, and the
// checkpointer the batches of the group it is applying.
type batch struct {
	id   uint64
	ops  []op
	live int // ops not cancelled
	// bytes is what the live ops hold in memory until they are
	// checkpointed (the sum of their op.bytes: opBytes, or sharedBytes
	// for a message another put holds); add and cancel add the change to
	// backlog, the store's count of those bytes over every batch
	// (flow.go).
	bytes   int64
	backlog *atomic.Int64
	// writes is what the live ops will write to bbolt: opBytes of each,
	// a message once for each put of it.
	writes int64
	// waiters are told once the batch is in bbolt (Watch): Load sees it.
	waiters []queue.Waiter
	// syncWaiters are told once the batch is on disk (WatchSynced).
	syncWaiters []queue.Waiter
	// wanted is set by Wait and WaitSynced: the batch must be logged at
	// once, even without ops or waiters; wantApplied, by Wait only, asks
	// for a checkpoint at once too.
	wanted, wantApplied bool
	// Set by the logger: failed says the batch's ops were not logged (and
	// are dropped); lastFailed is the latest failed batch as of this one.
	failed     bool
	lastFailed uint64
	// lsn is the batch's log record, 0 if it logged nothing.
	lsn uint64
	// entries indexes the pending Put and Delivered of each entry, for
	// coalescing.
	entries map[entryKey]pendingEntry
}

func newBatch(id uint64, backlog *atomic.Int64) *batch {
	return &batch{id: id, backlog: backlog, entries: make(map[entryKey]pendingEntry)}
}

// urgent reports whether someone waits for b: the logger takes it at once.
// A batch with changes and no one waiting (a consumer's acks, persistent
// publishes without confirms) waits up to lazyDelay for company.
func (b *batch) urgent() bool {
	return len(b.waiters) > 0 || len(b.syncWaiters) > 0 || b.wanted
}

// ready reports whether the commit loop has anything to do for b.
func (b *batch) ready() bool {
	return len(b.ops) > 0 || len(b.waiters) > 0 || len(b.syncWaiters) > 0 || b.wanted
}

// reset empties b for reuse as batch id, dropping its references.
func (b *batch) reset(id uint64) {
	b.id = id
	if cap(b.ops) > maxKeptOps {
		b.ops = nil
	} else {
		clear(b.ops)
		b.ops = b.ops[:0]
	}
	clear(b.waiters)
	b.waiters = b.waiters[:0]
	clear(b.syncWaiters)
	b.syncWaiters = b.syncWaiters[:0]
	b.live, b.bytes, b.writes, b.wanted, b.wantApplied = 0, 0, 0, false, false
	b.failed, b.lastFailed, b.lsn = false, 0, 0
	if len(b.entries) > maxKeptOps {
		b.entries = make(map[entryKey]pendingEntry)
	} else {
		clear(b.entries)
	}
}

// A message put to several queues (a fanout) is held in memory once:
// the batch counts its bytes for the first put of it and sharedBytes for
// each other put it finds among the last sharedRecent ops. When that first
// put is cancelled (settled before it was checkpointed), its count moves
// to a later put of the message among the next shareWindow ops; if none
// is live there, the message is no longer counted, though later puts
// further on may still hold it.
const (
	sharedBytes = 32
	shareWindow = 16
)

// add appends o and returns its index plus one.
func (b *batch) add(o op) int {
	o.bytes = opBytes(&o)
	if o.kind == opPut && o.msg != nil {
		for j := len(b.ops) - 1; j >= max(0, len(b.ops)-sharedRecent); j-- {
			if b.ops[j].kind == opPut && b.ops[j].msg == o.msg {
				o.bytes = sharedBytes
				break
			}
		}
	}
	b.ops = append(b.ops, o)
	b.live++
	b.writes += opBytes(&o)
	b.bytes += o.bytes
	b.backlog.Add(o.bytes)
	return len(b.ops)
}

// cancel drops the op at index i-1.
func (b *batch) cancel(i int) {
	o := &b.ops[i-1]
	n := o.bytes
	if o.kind == opPut && o.msg != nil && n > sharedBytes {
		for j := i; j < min(len(b.ops), i+shareWindow); j++ {
			if s := &b.ops[j]; s.kind == opPut && s.msg == o.msg && s.bytes == sharedBytes {
				s.bytes, n = n, sharedBytes
				break
			}
		}
	}
	b.bytes -= n
	b.backlog.Add(-n)
	b.writes -= opBytes(o)
	*o = op{}
	b.live--
}

// logLocked appends o to the pending batch, or drops it if the store is
// closed, and returns the pending batch's id. s.mu must be held.
func (s *Store) logLocked(o op) uint64 {
	b := s.pending
	if !s.closed {
		s.kickLocked()
		b.add(o)
	}
	return b.id
}

// kickLocked wakes the commit loop if the pending batch is about to become
// ready. Call it before changing the batch. s.mu must be held.
func (s *Store) kickLocked() {
	if !s.pending.ready() {
		s.work.Signal()
	}
}

// kickUrgentLocked wakes the commit loop if the pending batch is about to
// become urgent: call it before adding a waiter. s.mu must be held.
func (s *Store) kickUrgentLocked() {
	if !s.pending.urgent() {
		s.work.Signal()
	}
}

// Hold keeps the pending batch from being committed until Release, and
// returns its id: every change logged until then is written in that one
// transaction, all or nothing (a transaction's publishes and acks). The
// commit loop waits for the holder, so hold briefly, and never wait for a
// batch while holding. Each Hold needs one Release.
func (s *Store) Hold() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holds++
	return s.pending.id
}

// HeldClean reports, under a Hold, whether the pending batch holds nothing
// to write: every change logged in it so far was cancelled (a message
// published and settled at once) or there were none. Then what the holder
// logged needs no wait for the disk. A closed store is never clean.
func (s *Store) HeldClean() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending.live == 0 && !s.closed
}

// Release ends a Hold.
func (s *Store) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holds--; s.holds < 0 {
		panic("store: Release without Hold")
	}
	if s.holds == 0 {
		s.work.Signal()
	}
}

// Put logs the write of entry seq of queue id, holding m, which the store
// keeps (and never changes) until it is written. A transient entry is
// dropped by the next Recover. It implements queue.Store.
func (s *Store) Put(id, seq uint64, m *queue.Message, expiresAt int64, transient bool) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.pending
	if s.closed {
		return b.id
	}
	s.kickLocked()
	k := entryKey{id, seq}
	pe := b.entries[k]
	delivered := false
	if pe.put != 0 {
		// Written twice: the last write wins, keeping the mark.
		delivered = b.ops[pe.put-1].delivered
		b.cancel(pe.put)
	}
	if pe.delivered != 0 {
		delivered = true // the mark goes in the record instead
		b.cancel(pe.delivered)
		pe.delivered = 0
	}
	pe.put = b.add(op{kind: opPut, transient: transient, delivered: delivered, id: id, seq: seq, expiresAt: expiresAt, msg: m})
	b.entries[k] = pe
	return b.id
}

// Delivered logs that the entry has been delivered and not yet settled, so
// it comes back redelivered after a restart. A mark for an entry that does
// not exist when the batch is written is not written. It implements
// queue.Store.
func (s *Store) Delivered(id, seq uint64) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.pending
	if s.closed {
		return b.id
	}
	k := entryKey{id, seq}
	pe := b.entries[k]
	if pe.delivered != 0 {
		return b.id
	}
	if pe.put != 0 {
		// Its record is not written yet: the mark goes in it.
		b.ops[pe.put-1].delivered = true
		return b.id
	}
	s.kickLocked()
	pe.delivered = b.add(op{kind: opDelivered, id: id, seq: seq})
	b.entries[k] = pe
	return b.id
}

// Delete logs the removal of the entry and its delivered mark. If its Put
// is in the pending batch, neither is written; a pending Delivered alone is
// replaced by the Delete. It implements queue.Store.
func (s *Store) Delete(id, seq uint64) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.pending
	if s.closed {
		return b.id
	}
	k := entryKey{id, seq}
	if pe, ok := b.entries[k]; ok {
		if pe.delivered != 0 {
			b.cancel(pe.delivered)
		}
		if pe.put != 0 {
			b.cancel(pe.put)
			delete(b.entries, k)
			return b.id
		}
		delete(b.entries, k)
	}
	return s.logLocked(op{kind: opDelete, id: id, seq: seq})
}

// DeleteRange logs the removal of every entry of queue id with
// lo <= seq <= hi, and of their delivered marks. It implements
// queue.Store.
func (s *Store) DeleteRange(id, lo, hi uint64) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logLocked(op{kind: opDeleteRange, id: id, seq: lo, hi: hi})
}

// Pending returns the id of the batch changes are logged into now. It
// implements queue.Store.
func (s *Store) Pending() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending.id
}

// Watch asks for w.Committed to be called once the pending batch, and so
// every batch before it, is done: on disk and in bbolt, where Load reads.
// It returns the pending batch's id. After Close it returns 0 and w is
// never called: nothing more is committed. It implements queue.Store.
func (s *Store) Watch(w queue.Waiter) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.pending
	if s.closed {
		return 0 // nothing more will be committed: w is not called
	}
	s.kickUrgentLocked()
	b.waiters = append(b.waiters, w)
	return b.id
}

// WatchSynced is Watch, but w is called as soon as the batch is on disk
// (in the log, synced), which is usually well before Load can read it:
// what a publisher confirm or a tx.commit-ok waits for.
func (s *Store) WatchSynced(w queue.Waiter) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.pending
	if s.closed {
		return 0
	}
	s.kickUrgentLocked()
	b.syncWaiters = append(b.syncWaiters, w)
	return b.id
}

// PutExchange logs the write of a durable exchange and returns its batch.
func (s *Store) PutExchange(r ExchangeRecord) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logLocked(op{kind: opPutExchange, topo: &r})
}

// DeleteExchange logs the removal of an exchange and of every binding whose
// source is it, or whose destination is it (exchange-to-exchange), and
// returns its batch.
func (s *Store) DeleteExchange(name string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logLocked(op{kind: opDeleteExchange, topo: name})
}

// PutQueue logs the write of a durable queue and returns its batch.
func (s *Store) PutQueue(r QueueRecord) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logLocked(op{kind: opPutQueue, topo: &r})
}

// DeleteQueue logs the removal of queue id: its entries, delivered marks
// and counters, and, if the queue record named name has this id (or there
// is none), that record and the bindings to it. It returns its batch.
func (s *Store) DeleteQueue(name string, id uint64) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logLocked(op{kind: opDeleteQueue, id: id, topo: name})
}

// PutBinding logs the write of a binding and returns its batch. Writing a
// binding equal to one already stored changes nothing.
func (s *Store) PutBinding(r BindingRecord) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logLocked(op{kind: opPutBinding, topo: &r})
}

// DeleteBinding logs the removal of the bindings equal to r (same source,
// destination, kind and routing key, and arguments equal by
// wire.TablesEqual) and returns its batch.
func (s *Store) DeleteBinding(r BindingRecord) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logLocked(op{kind: opDeleteBinding, topo: &r})
}
