package store

import (
	"bytes"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"
)

// RecoveredQueue is a durable queue read back by Recover, with what its
// store holds: Count persistent entries of Bytes body bytes, with seqs
// from Lo to Hi (both 0 when there are none).
type RecoveredQueue struct {
	QueueRecord
	Run
	// Lanes splits Run by the top byte of the seqs (laneShift) when they
	// span more than one: a priority queue's entries, one Run per
	// priority that has some, lowest first. Nil otherwise.
	Lanes []Run
}

// Run is Count entries of a queue, of Bytes body bytes, with seqs from Lo
// to Hi.
type Run struct {
	Count  int
	Bytes  int64
	Lo, Hi uint64
}

// laneShift is where a priority queue's lane starts in its seqs (as in
// package queue): each lane's entries are one range of keys.
const laneShift = 56

// Recovered is the durable state Recover reads back.
type Recovered struct {
	Exchanges []ExchangeRecord // by name
	Queues    []RecoveredQueue // by name
	Bindings  []BindingRecord
}

// Recover drops what does not survive a restart, then returns the durable
// topology and each durable queue's entries' counts and bounds. It drops
// every transient entry, every queue's entries and marks whose queue has no
// record, and delivered marks whose entry is gone. Call it once after
// Open, before anything is logged. It reads counters, not entries, so it
// takes about the same time however many messages the store holds; but a
// priority queue holding messages of more than one priority has every
// entry read, for the size of each priority's run (laneRuns).
func (s *Store) Recover() (*Recovered, error) {
	var rec *Recovered
	err := s.update(func(tx *bbolt.Tx) error {
		var err error
		rec, err = s.recover(tx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("recover store: %w", err)
	}
	s.stats.syncs.Add(2) // bbolt's commit, as a checkpoint's
	return rec, nil
}

func (s *Store) recover(tx *bbolt.Tx) (*Recovered, error) {
	rec := &Recovered{}
	err := tx.Bucket(bucketExchanges).ForEach(func(k, v []byte) error {
		r, err := decodeExchange(k, v)
		rec.Exchanges = append(rec.Exchanges, r)
		return err
	})
	if err != nil {
		return nil, err
	}
	byID := make(map[uint64]int)
	err = tx.Bucket(bucketQueues).ForEach(func(k, v []byte) error {
		r, err := decodeQueue(k, v)
		if err != nil {
			return err
		}
		if i, dup := byID[r.ID]; dup {
			return fmt.Errorf("%w: queues %q and %q have the same id %d", errCorrupt, rec.Queues[i].Name, r.Name, r.ID)
		}
		byID[r.ID] = len(rec.Queues)
		rec.Queues = append(rec.Queues, RecoveredQueue{QueueRecord: r})
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = tx.Bucket(bucketBindings).ForEach(func(k, v []byte) error {
		r, err := decodeBinding(k, v)
		rec.Bindings = append(rec.Bindings, r)
		return err
	})
	if err != nil {
		return nil, err
	}

	msgs := tx.Bucket(bucketMessages)
	var keys [][]byte
	err = msgs.ForEach(func(k, _ []byte) error {
		keys = append(keys, bytes.Clone(k))
		return nil
	})
	if err != nil {
		return nil, err
	}
	orphans := 0
	for _, k := range keys {
		id, ok := parseKey64(k)
		i, known := byID[id]
		q := msgs.Bucket(k)
		if !ok || !known || q == nil {
			if err := deleteKey(msgs, k); err != nil {
				return nil, err
			}
			orphans++
			continue
		}
		if err := s.recoverQueue(q, &rec.Queues[i]); err != nil {
			return nil, fmt.Errorf("queue %q: %w", rec.Queues[i].Name, err)
		}
	}
	if orphans > 0 {
		s.log.Info("store: dropped the entries of queues that were not durable", "queues", orphans)
	}
	return rec, nil
}

// deleteKey deletes key k of b, a bucket or a plain value.
func deleteKey(b *bbolt.Bucket, k []byte) error {
	err := b.DeleteBucket(k)
	if errors.Is(err, bbolt.ErrIncompatibleValue) {
		err = b.Delete(k)
	}
	return err
}

// recoverQueue drops q's transient entries and dangling delivered marks,
// and reads its counters and bounds into r.
func (s *Store) recoverQueue(q *bbolt.Bucket, r *RecoveredQueue) error {
	if q.Bucket(subTransient) != nil {
		if err := q.DeleteBucket(subTransient); err != nil {
			return err
		}
	}
	p := q.Bucket(subPersistent)
	if d := q.Bucket(subDelivered); d != nil {
		var dangling [][]byte
		err := d.ForEach(func(k, _ []byte) error {
			if p == nil || p.Get(k) == nil {
				dangling = append(dangling, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range dangling {
			if err := d.Delete(k); err != nil {
				return err
			}
		}
	}

	var first, last []byte
	if p != nil {
		c := p.Cursor()
		first, _ = c.First()
		last, _ = c.Last()
	}
	var c counters
	var err error
	if v := q.Get(keyCounters); v != nil {
		c, err = decodeCounters(v)
	}
	if err != nil || (c.count == 0) != (first == nil) {
		// Counters that cannot be right: count again.
		s.log.Warn("store: recounting a queue's entries", "queue", r.Name, "err", err)
		if c, err = countEntries(p); err != nil {
			return err
		}
		if err := q.Put(keyCounters, appendCounters(nil, c)); err != nil {
			return err
		}
	}
	r.Count, r.Bytes = int(c.count), c.bytes
	if first != nil {
		var ok1, ok2 bool
		r.Lo, ok1 = parseKey64(first)
		r.Hi, ok2 = parseKey64(last)
		if !ok1 || !ok2 {
			return fmt.Errorf("%w: entry key is not 8 bytes", errCorrupt)
		}
	}
	if r.Lo>>laneShift != r.Hi>>laneShift {
		r.Lanes = laneRuns(p)
	}
	return nil
}

// laneRuns splits the entries of p by the top byte of their seqs, reading
// every one of them for its body size (a record that does not decode
// counts 0 bytes; its queue drops it when it reads it).
func laneRuns(p *bbolt.Bucket) []Run {
	var runs []Run
	c := p.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		seq, ok := parseKey64(k)
		if !ok {
			continue
		}
		if len(runs) == 0 || seq>>laneShift != runs[len(runs)-1].Lo>>laneShift {
			runs = append(runs, Run{Lo: seq})
		}
		r := &runs[len(runs)-1]
		n, _ := bodyLen(v)
		r.Count++
		r.Bytes += n
		r.Hi = seq
	}
	return runs
}

// countEntries counts the entries of bucket p (which may be nil) and their
// body bytes.
func countEntries(p *bbolt.Bucket) (counters, error) {
	var c counters
	if p == nil {
		return c, nil
	}
	err := p.ForEach(func(k, v []byte) error {
		// A record that does not decode counts 0 bytes: its queue drops
		// it when it reads it, and the counters heal when it empties.
		n, _ := bodyLen(v)
		c.count++
		c.bytes += n
		return nil
	})
	return c, err
}
