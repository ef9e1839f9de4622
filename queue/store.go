package queue

import "fmt"

// Store keeps queues' entries on disk: persistent messages of durable queues,
// so they survive a restart, and any message a queue pages out of memory.
//
// A Store logs changes rather than writing them: each change method appends
// to the store's pending batch and returns at once with that batch's id, so
// it may be called with a queue's lock held. One commit loop writes each
// batch in one transaction and syncs it to disk, in id order; whatever is
// logged while a batch is being written goes into the next one. A batch that
// fails is dropped whole. Batch ids start at 1 and only grow.
//
// Entries are keyed by queue id and seq; seqs start at 1 and only grow
// within a queue.
type Store interface {
	// Put logs the write of entry seq of queue id, holding m, which the
	// store keeps (and never changes) until it is written. A transient
	// entry is one paged out of memory: it is dropped when the store is
	// next opened.
	Put(id, seq uint64, m *Message, expiresAt int64, transient bool) (batch uint64)
	// Delivered logs that the entry has been delivered and not yet settled,
	// so it comes back redelivered after a restart.
	Delivered(id, seq uint64) (batch uint64)
	// Delete logs the removal of the entry and its delivered mark. If its
	// Put is still pending, neither is written.
	Delete(id, seq uint64) (batch uint64)
	// DeleteRange logs the removal of every entry of queue id with
	// lo <= seq <= hi.
	DeleteRange(id, lo, hi uint64) (batch uint64)
	// Watch asks for w.Committed to be called once the pending batch, and so
	// every batch before it, is done, and returns the pending batch's id.
	// Changes logged before Watch are in that batch or an earlier one.
	// A closed store returns 0 and never calls w.
	Watch(w Waiter) (batch uint64)
	// Pending returns the id of the batch changes are logged into now.
	Pending() uint64
	// Load appends to buf the committed entries of queue id with
	// after < seq <= hi, in seq order, stopping once the sum of their
	// EntryCost reaches maxBytes (but returning at least one if there is
	// one). Loaded entries have Stored set, and Redelivered if they were
	// marked Delivered. An entry whose bytes on disk do not make a
	// message stops the load with a *CorruptEntryError, returned with the
	// entries before it; any other error returns buf as it came.
	Load(id, after, hi uint64, maxBytes int64, buf []Entry) ([]Entry, error)
}

// CorruptEntryError is Load's error for an entry whose bytes on disk do
// not make a message. The queue drops the entry (it can never be
// delivered) and goes on with the entries after it.
type CorruptEntryError struct {
	Seq   uint64
	Bytes int64 // its body size, if that much could be read; else 0
	Err   error // what is wrong with its bytes
}

func (e *CorruptEntryError) Error() string {
	return fmt.Sprintf("entry %d: %v", e.Seq, e.Err)
}

func (e *CorruptEntryError) Unwrap() error { return e.Err }

// Waiter is told when the store's batches are done.
type Waiter interface {
	// Committed is called from the commit loop, with no store lock held,
	// once batch and every batch before it have been written or have
	// failed. lastFailed is the id of the latest failed batch so far, 0 if
	// none. A change logged in batch b <= batch is on disk if
	// b > lastFailed; otherwise it may have been lost.
	Committed(batch, lastFailed uint64)
}
