package store

import (
	"errors"
	"fmt"
	"math"

	"go.etcd.io/bbolt"

	"github.com/warrenmq/warren/queue"
)

// Load appends to buf the committed entries of queue id with
// after < seq <= hi, persistent and transient merged in seq order, stopping
// once the sum of their queue.EntryCost reaches maxBytes (but returning at least one if there is
// one). Each gets a Message of its own, with its bytes copied out of the
// file. Loaded entries have Stored set, and Redelivered if they were marked
// Delivered. A record that does not make a message (decodeMessage) stops
// the load: it is logged and returned as a *queue.CorruptEntryError with
// the entries before it. On any other error buf is returned as it came. It
// implements queue.Store.
func (s *Store) Load(id, after, hi uint64, maxBytes int64, buf []queue.Entry) ([]queue.Entry, error) {
	if after >= hi || after == math.MaxUint64 {
		return buf, nil
	}
	n0 := len(buf)
	err := s.view(func(tx *bbolt.Tx) error {
		msgs := tx.Bucket(bucketMessages)
		if msgs == nil {
			return nil
		}
		k := key64(id)
		q := msgs.Bucket(k[:])
		if q == nil {
			return nil
		}
		var err error
		buf, err = loadEntries(q, id, after, hi, maxBytes, buf)
		s.unmapAfterReads(tx, len(buf)-n0)
		return err
	})
	var bad *queue.CorruptEntryError
	if errors.As(err, &bad) {
		s.log.Error("store: a message record does not decode; its queue drops it", "queue", id, "seq", bad.Seq, "err", bad.Err)
		return buf, err
	}
	if err != nil {
		return buf[:n0], err
	}
	return buf, nil
}

// view runs fn in a read-only transaction of the store's file, holding
// dbMu shared.
func (s *Store) view(fn func(*bbolt.Tx) error) error {
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	return s.db.View(fn)
}

// update runs fn in a writable transaction of the store's file, holding
// dbMu shared (the checkpointer, which writes without it, is serialized
// with fn by bbolt).
func (s *Store) update(fn func(*bbolt.Tx) error) error {
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	return s.db.Update(fn)
}

// unmapEvery is how many entries are read between unmapping the file.
const unmapEvery = 1 << 14

// unmapAfterReads counts entries read and, every unmapEvery of them,
// drops the file's pages from the process's page tables. Reading a long
// queue back through bbolt's mmap would otherwise map the whole file into
// the broker's resident memory, the page cache counted as RSS, though
// every page read is read once. tx keeps the mapping in place meanwhile.
func (s *Store) unmapAfterReads(tx *bbolt.Tx, n int) {
	if s.readSinceUnmap.Add(int64(n)) < unmapEvery {
		return
	}
	s.readSinceUnmap.Store(0)
	dropMapped(s.db.Info().Data, int(tx.Size()))
}

// seqCursor is a cursor over one bucket of a queue, from a start seq on.
type seqCursor struct {
	c   *bbolt.Cursor // nil when the bucket does not exist
	seq uint64        // of the current key, valid if ok
	k   []byte
	v   []byte
	ok  bool // positioned on a key
}

func (sc *seqCursor) start(b *bbolt.Bucket, from uint64) error {
	if b == nil {
		return nil
	}
	sc.c = b.Cursor()
	k := key64(from)
	sc.k, sc.v = sc.c.Seek(k[:])
	return sc.parse()
}

func (sc *seqCursor) next() error {
	sc.k, sc.v = sc.c.Next()
	return sc.parse()
}

func (sc *seqCursor) parse() error {
	sc.ok = sc.k != nil
	if !sc.ok {
		return nil
	}
	seq, ok := parseKey64(sc.k)
	if !ok {
		return fmt.Errorf("%w: key %x is not 8 bytes", errCorrupt, sc.k)
	}
	sc.seq = seq
	return nil
}

// loadEntries is Load within a read transaction, on queue bucket q.
func loadEntries(q *bbolt.Bucket, id, after, hi uint64, maxBytes int64, buf []queue.Entry) ([]queue.Entry, error) {
	var p, t, d seqCursor
	for _, x := range []struct {
		c    *seqCursor
		name []byte
	}{{&p, subPersistent}, {&t, subTransient}, {&d, subDelivered}} {
		if err := x.c.start(q.Bucket(x.name), after+1); err != nil {
			return buf, fmt.Errorf("queue %d: %w", id, err)
		}
	}
	var total int64
	var prev *queue.Message
	for {
		cur, transient := &p, false
		if !p.ok || (t.ok && t.seq < p.seq) {
			cur, transient = &t, true
		}
		if !cur.ok || cur.seq > hi {
			return buf, nil
		}
		r, err := decodeMessage(cur.v)
		if err != nil {
			return buf, &queue.CorruptEntryError{Seq: cur.seq, Bytes: int64(len(r.body)), Err: err}
		}
		for d.ok && d.seq < cur.seq {
			if err := d.next(); err != nil {
				return buf, fmt.Errorf("queue %d: %w", id, err)
			}
		}
		m := r.message(!transient, prev)
		prev = m
		buf = append(buf, queue.Entry{
			Msg:         m,
			Seq:         cur.seq,
			Redelivered: r.delivered || d.ok && d.seq == cur.seq,
			Stored:      true,
			ExpiresAt:   r.expiresAt,
		})
		total += queue.EntryCost(m)
		if total >= maxBytes {
			return buf, nil
		}
		if err := cur.next(); err != nil {
			return buf, fmt.Errorf("queue %d: %w", id, err)
		}
	}
}
