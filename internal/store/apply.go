package store

import (
	"bytes"
	"fmt"

	"go.etcd.io/bbolt"
)

// maxKeptArena bounds the record buffers kept for reuse: the log's
// (wal.buf) and the checkpoint arena's spare chunks.
const maxKeptArena = 16 << 20

// queueBuckets caches one queue's buckets within a write transaction, and
// its counters, written back once at the end.
type queueBuckets struct {
	q, p, t, d *bbolt.Bucket // nil until found or created
	c          counters
	dirty      bool // c changed
}

// arenaChunk is the size of the arena's chunks: a checkpoint's records
// are cut from chunks of this size, and up to maxKeptArena of them are
// kept for the next transaction.
const arenaChunk = 1 << 20

// alloc returns n bytes of the arena that stay valid until the
// transaction ends: bbolt keeps references to values until it commits.
func (s *Store) alloc(n int) []byte {
	if n > arenaChunk {
		return make([]byte, n)
	}
	if cap(s.arena)-len(s.arena) < n {
		// Earlier values keep the old chunk alive.
		if k := len(s.spareChunks); k > 0 {
			s.arena, s.spareChunks = s.spareChunks[k-1], s.spareChunks[:k-1]
		} else {
			s.arena = make([]byte, 0, arenaChunk)
		}
		s.usedChunks = append(s.usedChunks, s.arena)
	}
	l := len(s.arena)
	s.arena = s.arena[:l+n]
	return s.arena[l : l+n : l+n]
}

// resetScratch forgets the arena's contents and the bucket cache once a
// transaction is over.
func (s *Store) resetScratch() {
	for _, c := range s.usedChunks {
		if len(s.spareChunks) < maxKeptArena/arenaChunk {
			s.spareChunks = append(s.spareChunks, c[:0])
		}
	}
	clear(s.usedChunks)
	s.usedChunks, s.arena = s.usedChunks[:0], nil
	clear(s.cache)
}

// applyOps makes ops' changes in tx, but for the queues' counters, which
// it keeps in the bucket cache for writeCounters.
func (s *Store) applyOps(tx *bbolt.Tx, ops []op) error {
	msgs := tx.Bucket(bucketMessages)
	if msgs == nil {
		return fmt.Errorf("%s bucket is missing", bucketMessages)
	}
	for i := range ops {
		o := &ops[i]
		var err error
		switch o.kind {
		case opNone:
		case opPut:
			err = s.applyPut(msgs, o)
		case opDelivered:
			err = s.applyDelivered(msgs, o)
		case opDelete:
			err = s.applyDelete(msgs, o)
		case opDeleteRange:
			err = s.applyDeleteRange(msgs, o)
		case opDeleteQueue:
			err = s.applyDeleteQueue(tx, msgs, o)
		default:
			err = s.applyTopology(tx, o)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// writeCounters writes the counters of the queues applyOps changed, in the
// transaction it applied them in.
func (s *Store) writeCounters() error {
	for id, qb := range s.cache {
		if qb.q == nil || !qb.dirty {
			continue
		}
		v := appendCounters(s.alloc(countersSize)[:0], qb.c)
		if err := qb.q.Put(keyCounters, v); err != nil {
			return fmt.Errorf("queue %d counters: %w", id, err)
		}
	}
	return nil
}

// queue returns the cached buckets of queue id, with q set if the queue's
// bucket exists or create is set.
func (s *Store) queue(msgs *bbolt.Bucket, id uint64, create bool) (*queueBuckets, error) {
	qb := s.cache[id]
	if qb == nil {
		qb = &queueBuckets{}
		s.cache[id] = qb
		k := key64(id)
		if qb.q = msgs.Bucket(k[:]); qb.q != nil {
			if v := qb.q.Get(keyCounters); v != nil {
				c, err := decodeCounters(v)
				if err != nil {
					s.log.Warn("store: resetting bad counters", "queue", id, "err", err)
				}
				qb.c = c
			}
		}
	}
	if qb.q == nil && create {
		k := key64(id)
		q, err := msgs.CreateBucket(k[:])
		if err != nil {
			return nil, fmt.Errorf("queue %d: %w", id, err)
		}
		qb.q = q
	}
	return qb, nil
}

// sub returns the sub-bucket name of a queue's bucket, creating it if
// create is set, or nil.
func sub(q *bbolt.Bucket, name []byte, create bool) (*bbolt.Bucket, error) {
	if q == nil {
		return nil, nil
	}
	b := q.Bucket(name)
	if b == nil && create {
		var err error
		if b, err = q.CreateBucket(name); err != nil {
			return nil, err
		}
	}
	if b != nil && !bytes.Equal(name, subDelivered) {
		b.FillPercent = messageFillPercent
	}
	return b, nil
}

func (qb *queueBuckets) persistent(create bool) (*bbolt.Bucket, error) {
	if qb.p == nil {
		var err error
		qb.p, err = sub(qb.q, subPersistent, create)
		return qb.p, err
	}
	return qb.p, nil
}

func (qb *queueBuckets) transient(create bool) (*bbolt.Bucket, error) {
	if qb.t == nil {
		var err error
		qb.t, err = sub(qb.q, subTransient, create)
		return qb.t, err
	}
	return qb.t, nil
}

func (qb *queueBuckets) delivered(create bool) (*bbolt.Bucket, error) {
	if qb.d == nil {
		var err error
		qb.d, err = sub(qb.q, subDelivered, create)
		return qb.d, err
	}
	return qb.d, nil
}

func (s *Store) applyPut(msgs *bbolt.Bucket, o *op) error {
	qb, err := s.queue(msgs, o.id, true)
	if err != nil {
		return err
	}
	var b *bbolt.Bucket
	if o.transient {
		b, err = qb.transient(true)
	} else {
		b, err = qb.persistent(true)
	}
	if err != nil {
		return fmt.Errorf("queue %d: %w", o.id, err)
	}
	k := key64(o.seq)
	key := s.alloc(8)
	copy(key, k[:])
	if !o.transient {
		if old := b.Get(key); old != nil {
			qb.uncount(s, o.id, o.seq, old)
		}
		qb.c.count++
		if o.msg != nil {
			qb.c.bytes += int64(len(o.msg.Body))
		}
		qb.dirty = true
	}
	val := appendRecordFlags(s.alloc(recordSize(o.msg))[:0], o.msg, o.expiresAt, o.delivered)
	if err := b.Put(key, val); err != nil {
		return fmt.Errorf("queue %d entry %d: %w", o.id, o.seq, err)
	}
	return nil
}

// uncount takes the persistent record v out of qb's counters.
func (qb *queueBuckets) uncount(s *Store, id, seq uint64, v []byte) {
	n, err := bodyLen(v)
	if err != nil {
		s.log.Warn("store: deleting a corrupt entry", "queue", id, "seq", seq, "err", err)
	}
	qb.c.count--
	qb.c.bytes -= n
	qb.c.count, qb.c.bytes = max(qb.c.count, 0), max(qb.c.bytes, 0)
	if qb.c.count == 0 {
		qb.c.bytes = 0 // what a corrupt entry's unknown body left over
	}
	qb.dirty = true
}

func (s *Store) applyDelivered(msgs *bbolt.Bucket, o *op) error {
	qb, err := s.queue(msgs, o.id, false)
	if err != nil || qb.q == nil {
		return err
	}
	k := key64(o.seq)
	p, err := qb.persistent(false)
	if err != nil {
		return err
	}
	t, err := qb.transient(false)
	if err != nil {
		return err
	}
	if (p == nil || p.Get(k[:]) == nil) && (t == nil || t.Get(k[:]) == nil) {
		return nil
	}
	d, err := qb.delivered(true)
	if err != nil {
		return fmt.Errorf("queue %d: %w", o.id, err)
	}
	key := s.alloc(8)
	copy(key, k[:])
	return d.Put(key, markValue)
}

func (s *Store) applyDelete(msgs *bbolt.Bucket, o *op) error {
	qb, err := s.queue(msgs, o.id, false)
	if err != nil || qb.q == nil {
		return err
	}
	k := key64(o.seq)
	p, _ := qb.persistent(false)
	if p != nil {
		if v := p.Get(k[:]); v != nil {
			qb.uncount(s, o.id, o.seq, v)
			if err := p.Delete(k[:]); err != nil {
				return err
			}
		}
	}
	if t, _ := qb.transient(false); t != nil {
		if err := t.Delete(k[:]); err != nil {
			return err
		}
	}
	if d, _ := qb.delivered(false); d != nil {
		if err := d.Delete(k[:]); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) applyDeleteRange(msgs *bbolt.Bucket, o *op) error {
	if o.seq > o.hi {
		return nil
	}
	qb, err := s.queue(msgs, o.id, false)
	if err != nil || qb.q == nil {
		return err
	}
	p, _ := qb.persistent(false)
	t, _ := qb.transient(false)
	d, _ := qb.delivered(false)
	for _, b := range []*bbolt.Bucket{p, t, d} {
		if b == nil {
			continue
		}
		err := deleteRange(b, o.seq, o.hi, func(seq uint64, v []byte) {
			if b == p {
				qb.uncount(s, o.id, seq, v)
			}
		})
		if err != nil {
			return fmt.Errorf("queue %d: %w", o.id, err)
		}
	}
	return nil
}

// deleteRange deletes the keys of b from lo to hi, calling each (if not
// nil) before deleting one.
func deleteRange(b *bbolt.Bucket, lo, hi uint64, each func(seq uint64, v []byte)) error {
	from := key64(lo)
	c := b.Cursor()
	// Seek again after every delete: a cursor's Next after Delete may skip
	// a key.
	for k, v := c.Seek(from[:]); k != nil; k, v = c.Seek(from[:]) {
		seq, ok := parseKey64(k)
		if !ok || seq > hi {
			return nil
		}
		if each != nil {
			each(seq, v)
		}
		if err := c.Delete(); err != nil {
			return err
		}
		if seq == hi {
			return nil
		}
		// Seek on from the next key, not from lo: the leaves emptied so
		// far are only rebalanced at commit, and seeking across them
		// again each time would make a long range quadratic.
		from = key64(seq + 1)
	}
	return nil
}
