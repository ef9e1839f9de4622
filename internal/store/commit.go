package store

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"

	"github.com/warrenmq/warren/queue"
)

// Stats are counters of the store's commits since Open.
type Stats struct {
	// Commits is the number of transactions written.
	Commits uint64
	// Failed is the number of batches that failed.
	Failed uint64
	// RawCommits is how many of Commits were written and synced with raw
	// system calls (rawCommit).
	RawCommits uint64
	// Ops is the number of changes written by those transactions, after
	// coalescing.
	Ops uint64
	// CommitTime is the total time spent writing and syncing them.
	CommitTime time.Duration
	// Bytes is the size of the store's data as of the last commit (bbolt's
	// high-water mark; the file itself grows in larger steps).
	Bytes int64
	// FreeBytes is how much of that is free pages, as of the last
	// checkpoint: space of deleted messages that the store reuses before
	// it grows its file.
	FreeBytes int64
	// CommitLatency is the distribution of the time each written
	// transaction took, fsync included, in seconds; its Sum is CommitTime.
	CommitLatency Histogram
	// BatchSize is the distribution of the changes each written
	// transaction held, after coalescing; its Sum is Ops.
	BatchSize Histogram
	// Recent is the time each of the last (up to recentCommits) written
	// transactions took, fsync included, oldest first: for percentiles
	// finer than CommitLatency's buckets.
	Recent []time.Duration
	// Checkpoints is the number of bbolt transactions that applied logged
	// batches; CheckpointOps the changes they applied, after coalescing
	// across batches; CheckpointTime the time they took, fsyncs included;
	// CheckpointsFailed the number that failed (and were retried).
	Checkpoints, CheckpointOps, CheckpointsFailed uint64
	CheckpointTime                                time.Duration
	// Compactions is the number of times the file was copied into a
	// smaller one (compact.go).
	Compactions uint64
	// Syncs is the fsyncs and fdatasyncs the store has asked for since
	// Open returned: one per log record, failed or not (and per growth of a
	// log file, or wipe of a failed record), two per successful checkpoint
	// and for Recover (bbolt syncs its pages, then its meta page), and one
	// per sync of the data directory after a compaction. Not counted: the
	// syncs bbolt adds when it grows its file, those of a checkpoint that
	// failed, and those of a compaction's copy.
	Syncs uint64
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
	rawCommits           atomic.Uint64
	commitTime           atomic.Int64 // nanoseconds
	bytes                atomic.Int64
	freeBytes            atomic.Int64
	latency              [len(commitLatencyBounds) + 1]atomic.Uint64 // per bucket, then +Inf
	batchSize            [len(batchSizeBounds) + 1]atomic.Uint64     // per bucket, then +Inf

	ckpts, ckptOps, ckptFailed atomic.Uint64
	ckptTime                   atomic.Int64 // nanoseconds
	compactions                atomic.Uint64
	syncs                      atomic.Uint64 // besides the log's (wal.syncs)

	// recent[n%recentCommits] is the time of the n-th commit (from 0),
	// in ns: a ring of the last recentCommits.
	recent [recentCommits]atomic.Int64
}

// recentCommits is how many commit times Stats.Recent keeps.
const recentCommits = 1024

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
	n := c.commits.Load()
	c.recent[n%recentCommits].Store(int64(d))
	c.commits.Add(1)
}

// Stats returns the store's counters.
func (s *Store) Stats() Stats {
	st := Stats{
		Commits:    s.stats.commits.Load(),
		Failed:     s.stats.failed.Load(),
		RawCommits: s.stats.rawCommits.Load(),
		Ops:        s.stats.ops.Load(),
		CommitTime: time.Duration(s.stats.commitTime.Load()),
		Bytes:      s.stats.bytes.Load(),
		FreeBytes:  s.stats.freeBytes.Load(),

		Checkpoints:       s.stats.ckpts.Load(),
		CheckpointOps:     s.stats.ckptOps.Load(),
		CheckpointsFailed: s.stats.ckptFailed.Load(),
		CheckpointTime:    time.Duration(s.stats.ckptTime.Load()),
		Compactions:       s.stats.compactions.Load(),
		Syncs:             s.stats.syncs.Load() + s.wal.syncs.Load(),
	}
	st.CommitLatency = Histogram{Bounds: commitLatencyBounds[:], Counts: make([]uint64, len(s.stats.latency)), Sum: st.CommitTime.Seconds()}
	for i := range s.stats.latency {
		st.CommitLatency.Counts[i] = s.stats.latency[i].Load()
	}
	first := st.Commits - min(st.Commits, recentCommits)
	st.Recent = make([]time.Duration, 0, st.Commits-first)
	for n := first; n < st.Commits; n++ {
		st.Recent = append(st.Recent, time.Duration(s.stats.recent[n%recentCommits].Load()))
	}
	st.BatchSize = Histogram{Bounds: batchSizeBounds[:], Counts: make([]uint64, len(s.stats.batchSize)), Sum: float64(st.Ops)}
	for i := range s.stats.batchSize {
		st.BatchSize.Counts[i] = s.stats.batchSize[i].Load()
	}
	return st
}

// Checkpoint pacing: the checkpointer applies the logged batches to bbolt
// once checkpointEvery has passed since its last checkpoint began, or at
// once when checkpointBytes of messages are waiting (each message counted
// once: see batch.add), or checkpointWrites of writes to bbolt (a message
// once for each queue), a Wait wants a batch, or the store is closing.
// Between checkpoints, a message published and settled is cancelled out
// and never reaches bbolt.
const (
	checkpointEvery  = 100 * time.Millisecond
	checkpointBytes  = 8 << 20
	checkpointWrites = 64 << 20
)

// maxUnapplied bounds the message bytes logged and not yet checkpointed,
// and maxUnappliedWrites what they will write to bbolt (see loop).
const (
	maxUnapplied       = 2 * checkpointBytes
	maxUnappliedWrites = 2 * checkpointWrites
)

// unappliedOverLocked reports whether the logger is too far ahead of the
// checkpointer. s.logMu must be held.
func (s *Store) unappliedOverLocked() bool {
	return s.groupBytes+s.applyingBytes > maxUnapplied || s.groupWrites+s.applyingWrites > maxUnappliedWrites
}

// opBytes is what o holds in memory until it is checkpointed: a message's
// bytes (transient writes included: they too stay in memory until then),
// and the other ops' size roughly. A batch keeps the sum for its live ops.
func opBytes(o *op) int64 {
	switch {
	case o.kind == opPut && o.msg != nil:
		return int64(len(o.msg.Body) + len(o.msg.Props) + 32)
	case o.kind != opNone:
		return 32
	}
	return 0
}

// checkpointDueLocked reports whether the group holds enough for a
// checkpoint now (see checkpointBytes). s.logMu must be held.
func (s *Store) checkpointDueLocked() bool {
	return s.groupBytes >= checkpointBytes || s.groupWrites >= checkpointWrites
}

// lazyDelay is how long the logger lets a batch that no one waits for
// gather more changes before writing it.
const lazyDelay = time.Millisecond

// lazyFired is the lazy timer's function: the pending batch is due.
func (s *Store) lazyFired() {
	s.mu.Lock()
	s.lazyDue = true
	s.work.Signal()
	s.mu.Unlock()
}

// The checkpointer keeps up to maxFreeBatches batches, of up to
// maxFreeBatchOps ops each, for the logger to reuse.
const (
	maxFreeBatches  = 64
	maxFreeBatchOps = 4096
)

// loop is the logger (the commit loop): it takes the pending batch whenever
// it is ready, writes its ops to the log as one record, syncs it, tells its
// sync waiters, and hands it to the checkpointer. Whatever is logged
// meanwhile goes into the next batch.
func (s *Store) loop() {
	var lastFailed uint64
	var spareWaiters []queue.Waiter
	failures := 0 // failed commits in a row
	// lastCommit is how long the last written batch took (rawCommit), or
	// -1 after a failed one, which counts as slow.
	var lastCommit time.Duration
	for {
		spare := s.spareBatch()
		s.mu.Lock()
		// A hold keeps the batch pending even when closing: what a hold
		// logs lands in one record or, after closed, not at all. A batch
		// no one waits for is taken lazyDelay after it first had changes,
		// or with the first waiter: a consumer's acks then share the
		// sync of the next publish instead of taking one of their own.
		for {
			b := s.pending
			if s.holds == 0 && (s.closing || b.urgent() || (len(b.ops) > 0 && s.lazyDue)) {
				break
			}
			if s.holds == 0 && len(b.ops) > 0 && !s.lazyArmed {
				s.lazyArmed = true
				s.lazyTimer.Reset(lazyDelay)
			}
			s.work.Wait()
		}
		if s.lazyArmed {
			s.lazyTimer.Stop()
		}
		s.lazyDue, s.lazyArmed = false, false
		b := s.pending
		spare.id = b.id + 1
		s.pending = spare
		closing := s.closing
		s.closed = closing
		s.mu.Unlock()

		var err error
		start := time.Now()
		// b.bytes is read here: once b is in the group the checkpointer
		// may reset it.
		id, live, bytes, writes := b.id, b.live, b.bytes, b.writes
		if live > 0 && s.fault != nil {
			err = s.fault()
		}
		s.logMu.Lock()
		if err == nil && live > 0 {
			var n int
			raw := rawCommit(live, lastCommit, s.wal.rawMaxCommit)
			if n, err = s.wal.append(b.ops, raw); n > 0 {
				b.lsn = s.wal.lsn
				if s.wal.lastRaw {
					s.stats.rawCommits.Add(1)
				}
			}
			if err == nil {
				s.groupBytes += bytes
				s.groupWrites += writes
			}
		}
		if err != nil {
			lastFailed = id
			b.failed = true
		}
		b.lastFailed = lastFailed
		// Published before the checkpointer can see b: Wait must never
		// find b done without its failure.
		s.doneMu.Lock()
		if err != nil {
			s.lastFailed, s.lastErr = lastFailed, err
		}
		s.synced = id
		s.doneCond.Broadcast()
		s.doneMu.Unlock()
		// Once in the group, b is the checkpointer's: keep its sync
		// waiters, giving it an empty slice in their place.
		waiters := b.syncWaiters
		b.syncWaiters = spareWaiters
		s.group = append(s.group, b)
		s.urgent = s.urgent || b.wantApplied || closing
		if closing {
			s.loggerDone = true
		}
		// The checkpointer needs waking for a first batch (it then waits
		// out checkpointEvery on its own) or one it must not wait for.
		wake := len(s.group) == 1 || s.urgent || s.checkpointDueLocked()
		s.logMu.Unlock()

		if err != nil {
			s.backlog.Add(-bytes) // its ops are dropped
			s.resumeFlow()
			s.stats.failed.Add(1)
			failures++
			lastCommit = -1
			// One line per failure would flood the log while a disk is
			// full: log the first, then every 100th.
			if failures == 1 || failures%100 == 0 {
				s.log.Error("store commit failed; its changes are lost", "batch", id, "ops", live, "err", err, "failures_in_a_row", failures)
			}
		} else if live > 0 {
			failures = 0
			lastCommit = time.Since(start)
			s.stats.observe(lastCommit, live)
		}
		for _, w := range waiters {
			w.Committed(id, lastFailed)
		}
		clear(waiters)
		spareWaiters = waiters[:0]
		if wake {
			s.wakeCheckpointer()
		}
		// Back-pressure: what is logged and not yet in bbolt is held in
		// memory (by the group and by the queues' spills), so the logger
		// does not run more than maxUnapplied ahead of the checkpointer.
		// Confirms, and so publishers, wait meanwhile.
		s.logMu.Lock()
		for s.unappliedOverLocked() && !s.closingNow.Load() {
			s.ckptDone.Wait()
		}
		s.logMu.Unlock()
		if closing {
			return // b is the checkpointer's now: touch nothing
		}
		if failures > 0 {
			// A failing disk is retried with growing pauses, not in a
			// busy loop: queues log their failed writes again at once.
			time.Sleep(min(time.Millisecond<<min(failures-1, 10), time.Second))
		}
	}
}

// A batch of at most rawMaxOps changes, when the last commit succeeded in
// less than rawMaxCommit, is written and synced with raw system calls if
// the broker runs on more than one P (rawio.go): at low load, where a
// confirm waits for each commit, that keeps the runtime's monitor thread
// asleep. Under load batches are larger and the log's I/O gives its P
// up, as the runtime's system calls do, to the readers and writers; and
// once a commit is slow or fails (a busy or failing disk), the next one
// goes through the runtime, where a stop-the-world need not wait for it.
const (
	rawMaxOps    = 8
	rawMaxCommit = 2 * time.Millisecond
)

// rawCommit reports whether the logger writes a batch of live changes
// with raw system calls, the last commit having taken last (-1: failed)
// and max being the longest that counts as fast.
func rawCommit(live int, last, max time.Duration) bool {
	return live <= rawMaxOps && last >= 0 && last < max && runtime.GOMAXPROCS(0) > 1
}

// wakeCheckpointer wakes the checkpointer if it waits (or makes its next
// wait return at once).
func (s *Store) wakeCheckpointer() {
	select {
	case s.ckptWake <- struct{}{}:
	default:
	}
}

// spareBatch returns an empty batch to become the pending one.
func (s *Store) spareBatch() *batch {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if n := len(s.free); n > 0 {
		b := s.free[n-1]
		s.free[n-1] = nil
		s.free = s.free[:n-1]
		return b
	}
	return newBatch(0, &s.backlog)
}

// checkpointLoop is the checkpointer: it takes the group of batches the
// logger has written since it last did, switches the logger to the other
// log file, applies the group to bbolt in one transaction and tells the
// batches' waiters. It stops after the logger's last batch.
func (s *Store) checkpointLoop() {
	defer close(s.loopDone)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var last time.Time
	var group []*batch
	failures := 0
	for {
		s.logMu.Lock()
		n, done, urgent := len(s.group), s.loggerDone, s.urgent || s.checkpointDueLocked()
		s.logMu.Unlock()
		if (n == 0 || s.pauseCheckpoints.Load()) && !done {
			<-s.ckptWake
			continue
		}
		if wait := checkpointEvery - time.Since(last); !done && !urgent && wait > 0 {
			timer.Reset(wait)
			select {
			case <-s.ckptWake:
				timer.Stop()
				continue
			case <-timer.C:
			}
		}
		s.logMu.Lock()
		group, s.group = s.group, group[:0]
		applying := s.groupBytes
		s.applyingBytes, s.applyingWrites = applying, s.groupWrites
		s.groupBytes, s.groupWrites, s.urgent = 0, 0, false
		done = s.loggerDone
		s.wal.switchFile()
		s.logMu.Unlock()
		last = time.Now()

		// A failed checkpoint leaves the group in the log, not in bbolt:
		// retry it (the logger carries on in the other file meanwhile).
		// The last one, when closing, is tried once: the next Open
		// replays the log.
		for {
			err := s.syncCompaction()
			if err == nil {
				err = s.checkpoint(group, done)
			}
			if err == nil {
				failures = 0
				break
			}
			s.stats.ckptFailed.Add(1)
			failures++
			if failures == 1 || failures%100 == 0 {
				s.log.Error("store checkpoint failed; its changes are safe in the log and will be applied again", "err", err, "failures_in_a_row", failures)
			}
			// Closing: the log holds the group, and the next Open
			// applies it; stop retrying, so Close does not hang on a
			// failing disk.
			s.logMu.Lock()
			loggerDone := s.loggerDone
			s.logMu.Unlock()
			if done || loggerDone {
				break
			}
			time.Sleep(min(time.Millisecond<<min(failures-1, 10), time.Second))
		}
		// The group's bytes leave the backlog before its waiters hear:
		// whoever Waits for it then sees it gone.
		s.backlog.Add(-applying)
		s.resumeFlow()
		s.finish(group, done)
		s.logMu.Lock()
		s.applyingBytes, s.applyingWrites = 0, 0
		s.ckptDone.Broadcast()
		for _, b := range group {
			b.reset(0)
			if len(s.free) < maxFreeBatches && cap(b.ops) <= maxFreeBatchOps {
				s.free = append(s.free, b)
			}
		}
		s.logMu.Unlock()
		clear(group)
		if done {
			return
		}
		if failures == 0 && time.Now().After(s.compactAfter) && s.compactDue() {
			swapped, err := s.compact()
			switch {
			case err != nil && swapped:
				s.log.Error("store compacted, with an error once the new file had taken over", "err", err)
			case err != nil:
				s.compactAfter = time.Now().Add(compactRetry)
				s.log.Error("store compaction failed; the store carries on in its file", "err", err)
			}
		}
	}
}

// finish tells the waiters of a checkpointed group and marks its batches
// done.
func (s *Store) finish(group []*batch, stopping bool) {
	for _, b := range group {
		for _, w := range b.waiters {
			w.Committed(b.id, b.lastFailed)
		}
	}
	s.doneMu.Lock()
	if n := len(group); n > 0 {
		s.done = group[n-1].id
	}
	if stopping {
		s.stopped = true
	}
	s.doneCond.Broadcast()
	s.doneMu.Unlock()
}

// checkpoint applies the logged batches of group to bbolt in one
// transaction that also records the last LSN among them.
func (s *Store) checkpoint(group []*batch, last bool) error {
	lsn, live := s.coalesce(group)
	if live == 0 && lsn == 0 && !last {
		return nil
	}
	if last {
		// The last commit writes the free page list, which the others
		// skip (see Open): the next Open reads it instead of walking
		// every page of the file, so a clean restart is quick.
		s.db.NoFreelistSync = false
	}
	start := time.Now()
	var size int64
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if s.ckptFault != nil {
			if err := s.ckptFault(); err != nil {
				return err
			}
		}
		for _, b := range group {
			if b.failed || b.live == 0 {
				continue
			}
			if err := s.applyOps(tx, b.ops); err != nil {
				return err
			}
		}
		if err := s.writeCounters(); err != nil {
			return err
		}
		size = tx.Size()
		if lsn == 0 {
			return nil
		}
		return putCheckpoint(tx, lsn)
	})
	s.resetScratch()
	if err != nil {
		return err
	}
	s.stats.syncs.Add(2) // bbolt's commit: its pages, then its meta page
	s.stats.ckpts.Add(1)
	s.stats.ckptTime.Add(int64(time.Since(start)))
	s.stats.ckptOps.Add(uint64(live))
	s.noteSize(s.db, size)
	return nil
}

// FreeBytes is Stats().FreeBytes, without the rest.
func (s *Store) FreeBytes() int64 { return s.stats.freeBytes.Load() }

// noteSize records the size of db's data after a transaction, and its free
// pages.
func (s *Store) noteSize(db *bbolt.DB, size int64) {
	s.stats.bytes.Store(size)
	s.stats.freeBytes.Store(int64(db.Stats().FreeAlloc))
}

// coalescePut is where coalesce saw an entry's Put.
type coalescePut struct {
	b, i int    // the batch in the group, the op in the batch
	gen  uint64 // the generation of its queue when it was seen
	dup  bool   // written twice in the group: never cancelled
}

// coalesce cancels, across the batches of a group, the writes of entries
// deleted later in the group, as the pending batch does within itself,
// and returns the group's last LSN and how many ops are left to apply.
func (s *Store) coalesce(group []*batch) (lsn uint64, live int) {
	puts, gens := s.coalescePuts, s.coalesceGens
	for bi, b := range group {
		if b.failed {
			continue
		}
		lsn = max(lsn, b.lsn)
		for i := range b.ops {
			o := &b.ops[i]
			switch o.kind {
			case opPut:
				k := entryKey{o.id, o.seq}
				if p, ok := puts[k]; ok && p.gen == gens[o.id] {
					p.dup = true
					puts[k] = p
				} else {
					puts[k] = coalescePut{b: bi, i: i, gen: gens[o.id]}
				}
			case opDelete:
				k := entryKey{o.id, o.seq}
				p, ok := puts[k]
				if !ok || p.dup || p.gen != gens[o.id] {
					continue
				}
				delete(puts, k)
				pb := group[p.b]
				pb.ops[p.i] = op{}
				pb.live--
				b.ops[i] = op{}
				b.live--
			case opDeleteRange, opDeleteQueue:
				// Puts before it are applied and then deleted by it.
				gens[o.id]++
			}
		}
	}
	for _, b := range group {
		if !b.failed {
			live += b.live
		}
	}
	if len(puts) > maxKeptOps {
		s.coalescePuts = make(map[entryKey]coalescePut)
	} else {
		clear(puts)
	}
	clear(gens)
	return lsn, live
}

// Wait blocks until batch is done (on disk, and in bbolt where Load reads
// it), and returns an error if it may have been lost: if it, or any batch
// after it finished by then, failed. A batch beyond Pending is taken as
// Pending. Wait must not be called from a Waiter.
func (s *Store) Wait(batch uint64) error { return s.waitRange(batch, batch, false) }

// WaitRange blocks until batch hi is done, and returns an error if a
// change logged in any batch from lo on may have been lost. Use it for
// changes logged while the pending batch may have moved on: take lo =
// Pending() before logging them and hi = Pending() after.
func (s *Store) WaitRange(lo, batch uint64) error { return s.waitRange(lo, batch, false) }

// WaitSynced is Wait, but returns once the batch is on disk, in the log,
// which may be well before a checkpoint puts it in bbolt: what a durable
// declare waits for.
func (s *Store) WaitSynced(batch uint64) error { return s.waitRange(batch, batch, true) }

// WaitRangeSynced is WaitRange, returning once the batches are on disk.
func (s *Store) WaitRangeSynced(lo, batch uint64) error { return s.waitRange(lo, batch, true) }

func (s *Store) waitRange(lo, batch uint64, synced bool) error {
	if batch == 0 {
		return nil
	}
	lo = min(max(lo, 1), batch)
	s.mu.Lock()
	if s.closed && batch >= s.pending.id {
		s.mu.Unlock()
		return fmt.Errorf("batch %d: %w", batch, ErrClosed)
	}
	taken := batch < s.pending.id
	if !taken {
		batch = s.pending.id
		s.kickUrgentLocked()
		s.pending.wanted = true
		s.pending.wantApplied = s.pending.wantApplied || !synced
	}
	s.mu.Unlock()

	done := &s.done
	if synced {
		done = &s.synced
	} else if taken {
		// The logger has it: ask the checkpointer not to wait out its
		// interval for it (harmless if it is already applied).
		s.logMu.Lock()
		s.urgent = true
		s.logMu.Unlock()
		s.wakeCheckpointer()
	}
	s.doneMu.Lock()
	defer s.doneMu.Unlock()
	for *done < batch && !s.stopped {
		s.doneCond.Wait()
	}
	if *done < batch {
		return fmt.Errorf("batch %d: %w", batch, ErrClosed)
	}
	if s.lastFailed != 0 && s.lastFailed >= lo {
		return fmt.Errorf("store batch %d failed: %w", s.lastFailed, s.lastErr)
	}
	return nil
}
