package store

import (
	"fmt"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
)

// Stats are counters of the store's commits since Open.
type Stats struct {
	// Commits is the number of transactions written.
	Commits uint64
	// Failed is the number of batches that failed.
	Failed uint64
	// Ops is the number of changes written by those transactions, after
	// coalescing.
	Ops uint64
	// CommitTime is the total time spent writing and syncing them.
	CommitTime time.Duration
	// Bytes is the size of the store's data as of the last commit (bbolt's
	// high-water mark; the file itself grows in larger steps).
	Bytes int64
	// CommitLatency is the distribution of the time each written
	// transaction took, fsync included, in seconds; its Sum is CommitTime.
	CommitLatency Histogram
	// BatchSize is the distribution of the changes each written
	// transaction held, after coalescing; its Sum is Ops.
	BatchSize Histogram
}

// Histogram is a snapshot of a distribution, shaped like a Prometheus
// histogram: Counts[i] observations were at most Bounds[i] (and above
// Bounds[i-1]), and the last of Counts, one longer than Bounds, counts
// those above every bound.
type Histogram struct {
	Bounds []float64 // upper bounds, ascending; shared, do not modify
	Counts []uint64  // per bucket, not cumulative
	Sum    float64
}

// Count is the number of observations.
func (h Histogram) Count() uint64 {
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

var (
	// commitLatencyBounds are the upper bounds of CommitLatency's buckets
	// in seconds, from a commit on tmpfs to a struggling disk.
	commitLatencyBounds = [...]float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}
	// batchSizeBounds are the upper bounds of BatchSize's buckets.
	batchSizeBounds = [...]float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096}
)

// statCounters hold Stats; the commit loop writes them.
type statCounters struct {
	commits, failed, ops atomic.Uint64
	commitTime           atomic.Int64 // nanoseconds
	bytes                atomic.Int64
	latency              [len(commitLatencyBounds) + 1]atomic.Uint64 // per bucket, then +Inf
	batchSize            [len(batchSizeBounds) + 1]atomic.Uint64     // per bucket, then +Inf
}

// observe records one written transaction of ops changes that took d.
// It does not allocate: the commit loop calls it.
func (c *statCounters) observe(d time.Duration, ops int) {
	i, secs := 0, d.Seconds()
	for i < len(commitLatencyBounds) && secs > commitLatencyBounds[i] {
		i++
	}
	c.latency[i].Add(1)
	j := 0
	for j < len(batchSizeBounds) && float64(ops) > batchSizeBounds[j] {
		j++
	}
	c.batchSize[j].Add(1)
	c.commitTime.Add(int64(d))
	c.ops.Add(uint64(ops))
	c.commits.Add(1)
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	st := Stats{
		Commits:    s.stats.commits.Load(),
		Failed:     s.stats.failed.Load(),
		Ops:        s.stats.ops.Load(),
		CommitTime: time.Duration(s.stats.commitTime.Load()),
		Bytes:      s.stats.bytes.Load(),
	}
	st.CommitLatency = Histogram{Bounds: commitLatencyBounds[:], Counts: make([]uint64, len(s.stats.latency)), Sum: st.CommitTime.Seconds()}
	for i := range s.stats.latency {
		st.CommitLatency.Counts[i] = s.stats.latency[i].Load()
	}
	st.BatchSize = Histogram{Bounds: batchSizeBounds[:], Counts: make([]uint64, len(s.stats.batchSize)), Sum: float64(st.Ops)}
	for i := range s.stats.batchSize {
		st.BatchSize.Counts[i] = s.stats.batchSize[i].Load()
	}
	return st
}

// loop is the commit loop: it takes the pending batch whenever it is ready,
// writes it in one transaction and tells its waiters. Whatever is logged
// meanwhile goes into the next batch.
func (s *Store) loop() {
	defer close(s.loopDone)
	spare := newBatch(0)
	var lastFailed uint64
	failures := 0 // failed commits in a row
	for {
		s.mu.Lock()
		// A hold keeps the batch pending even when closing: what a hold
		// logs lands in one transaction or, after closed, not at all.
		for s.holds > 0 || (!s.pending.ready() && !s.closing) {
			s.work.Wait()
		}
		b := s.pending
		spare.id = b.id + 1
		s.pending, spare = spare, nil
		closing := s.closing
		s.closed = closing
		s.mu.Unlock()

		var err error
		if closing {
			// The last commit writes the free page list, which the others
			// skip (see Open): the next Open reads it instead of walking
			// every page of the file, so a clean restart is quick.
			s.db.NoFreelistSync = false
			err = s.commit(b)
		} else if b.live > 0 {
			err = s.commit(b)
		}
		if err != nil {
			lastFailed = b.id
			s.stats.failed.Add(1)
			failures++
			// One line per failure would flood the log while a disk is
			// full: log the first, then every 100th.
			if failures == 1 || failures%100 == 0 {
				s.log.Error("store commit failed; its changes are lost", "batch", b.id, "ops", b.live, "err", err, "failures_in_a_row", failures)
			}
		} else if b.live > 0 {
			failures = 0
		}
		for _, w := range b.waiters {
			w.Committed(b.id, lastFailed)
		}
		s.doneMu.Lock()
		s.done = b.id
		if err != nil {
			s.lastFailed, s.lastErr = lastFailed, err
		}
		if closing {
			s.stopped = true
		}
		s.doneCond.Broadcast()
		s.doneMu.Unlock()
		if closing {
			return
		}
		b.reset(0) // drop its messages now, not when the next batch comes
		spare = b
		if failures > 0 {
			// A failing disk is retried with growing pauses, not in a
			// busy loop: queues log their failed writes again at once.
			time.Sleep(min(time.Millisecond<<min(failures-1, 10), time.Second))
		}
	}
}

// commit writes b's live ops in one transaction.
func (s *Store) commit(b *batch) error {
	start := time.Now()
	var size int64
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if s.fault != nil {
			if err := s.fault(); err != nil {
				return err
			}
		}
		if err := s.apply(tx, b.ops); err != nil {
			return err
		}
		size = tx.Size()
		return nil
	})
	s.resetScratch()
	if err != nil {
		return err
	}
	s.stats.observe(time.Since(start), b.live)
	s.stats.bytes.Store(size)
	return nil
}

// Wait blocks until batch is done, and returns an error if it may have
// been lost: if it, or any batch after it finished by then, failed. A
// batch beyond Pending is taken as Pending. Wait must not be called from a
// Waiter.
func (s *Store) Wait(batch uint64) error { return s.WaitRange(batch, batch) }

// WaitRange blocks until batch hi is done, and returns an error if a
// change logged in any batch from lo on may have been lost. Use it for
// changes logged while the pending batch may have moved on: take lo =
// Pending() before logging them and hi = Pending() after.
func (s *Store) WaitRange(lo, batch uint64) error {
	if batch == 0 {
		return nil
	}
	lo = min(max(lo, 1), batch)
	s.mu.Lock()
	if s.closed && batch >= s.pending.id {
		s.mu.Unlock()
		return fmt.Errorf("batch %d: %w", batch, ErrClosed)
	}
	if batch >= s.pending.id {
		batch = s.pending.id
		s.kickLocked()
		s.pending.wanted = true
	}
	s.mu.Unlock()

	s.doneMu.Lock()
	defer s.doneMu.Unlock()
	for s.done < batch && !s.stopped {
		s.doneCond.Wait()
	}
	if s.done < batch {
		return fmt.Errorf("batch %d: %w", batch, ErrClosed)
	}
	if s.lastFailed != 0 && s.lastFailed >= lo {
		return fmt.Errorf("store batch %d failed: %w", s.lastFailed, s.lastErr)
	}
	return nil
}
