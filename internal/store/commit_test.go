package store

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warrenmq/warren/internal/wire"
	"github.com/warrenmq/warren/queue"
)

func TestWatchOrderAndFaults(t *testing.T) {
	g := newGate()
	s := openTest(t, "", Options{Fault: g.fault})
	id := s.NewQueueID()
	w := newRecorder()

	s.Put(id, 1, msg("a", 10), 0, false)
	b1 := s.Watch(w)
	mustWait(t, s, b1)

	// Hold the loop on a commit, so the next changes share one batch.
	g.armed.Store(true)
	b0 := s.PutQueue(QueueRecord{Name: "q", ID: id})
	<-g.entered
	g.fail.Store(true) // the next commit fails
	p2 := s.Put(id, 2, msg("b", 10), 0, false)
	d2 := s.Delivered(id, 1)
	b2 := s.Watch(w)
	if p2 != b0+1 || d2 != p2 || b2 != p2 {
		t.Fatalf("batches %d %d %d %d", b0, p2, d2, b2)
	}
	g.release <- struct{}{}
	if err := s.Wait(b2); !errors.Is(err, errInjected) {
		t.Fatalf("Wait on the failed batch: %v", err)
	}
	if err := s.Wait(b0); err == nil {
		t.Fatal("Wait on a batch before a failed one it saw should fail, to be safe")
	}

	s.Put(id, 3, msg("c", 10), 0, false)
	b3 := s.Watch(w)
	mustWait(t, s, b3)
	b4 := s.Watch(w) // no ops: done without a transaction
	b5 := s.Watch(w)
	mustWait(t, s, b5)
	if b3 <= b2 || b4 != b3+1 || b5 < b4 {
		t.Fatalf("batches %d %d %d %d", b2, b3, b4, b5)
	}

	w.mu.Lock()
	got := fmt.Sprint(w.calls)
	w.mu.Unlock()
	want := fmt.Sprint([]call{{b1, 0}, {b2, b2}, {b3, b2}, {b4, b2}, {b5, b2}})
	if got != want {
		t.Fatalf("Committed calls %s, want %s", got, want)
	}
	if st := s.Stats(); st.Commits != 3 || st.Failed != 1 || st.Ops != 3 {
		t.Fatalf("stats %+v", st)
	}
	es := load(t, s, id)
	sameSeqs(t, es, 1, 3)
	if es[0].Redelivered {
		t.Error("the failed batch's mark was written")
	}
}

func TestBadArgsFailBatch(t *testing.T) {
	g := newGate()
	s := openTest(t, "", Options{Fault: g.fault})
	id := s.NewQueueID()
	g.armed.Store(true)
	s.PutQueue(QueueRecord{Name: "q", ID: id})
	<-g.entered // hold the loop so the next two share a batch
	s.Put(id, 1, msg("a", 10), 0, false)
	b := s.PutExchange(ExchangeRecord{Name: "x", Type: "direct", Args: wire.Table{"bad": struct{}{}}})
	g.release <- struct{}{}
	if err := s.Wait(b); err == nil {
		t.Fatal("a batch with unencodable arguments did not fail")
	}
	if es := load(t, s, id); len(es) != 0 {
		t.Fatal("a failed batch wrote an entry")
	}
	mustWait(t, s, s.PutExchange(ExchangeRecord{Name: "x", Type: "direct"}))
}

func TestClose(t *testing.T) {
	s := openTest(t, "", Options{})
	id := s.NewQueueID()
	w := newRecorder()
	s.Put(id, 1, msg("a", 10), 0, false)
	b1 := s.Watch(w)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if c := <-w.ch; c != (call{b1, 0}) {
		t.Fatalf("pending batch at Close: %+v", c)
	}
	if err := s.Wait(b1); err != nil {
		t.Fatalf("Wait on a batch written by Close: %v", err)
	}

	// After Close, changes are dropped and waiters are never called (a
	// queue told "failed" would only log its writes again, forever).
	b := s.Put(id, 2, msg("b", 10), 0, false)
	s.Delivered(id, 1)
	s.Delete(id, 1)
	s.DeleteRange(id, 1, 2)
	s.PutQueue(QueueRecord{Name: "q", ID: id})
	if b <= b1 {
		t.Fatalf("batch after Close %d, want > %d", b, b1)
	}
	if b2 := s.Watch(w); b2 != 0 {
		t.Fatalf("Watch after Close = %d, want 0", b2)
	}
	select {
	case c := <-w.ch:
		t.Fatalf("waiter after Close told %+v", c)
	default:
	}
	if err := s.Wait(b); !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Load(id, 0, 10, 100, nil); err == nil {
		t.Fatal("Load after Close succeeded")
	}
	s2 := openTest(t, s.dir, Options{})
	sameSeqs(t, load(t, s2, id), 1)
}

// orderChecker is a Waiter that checks batches are reported in order.
type orderChecker struct {
	mu   sync.Mutex
	last uint64 // guarded by mu
	bad  error  // guarded by mu
}

func (o *orderChecker) Committed(batch, lastFailed uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if batch < o.last && o.bad == nil {
		o.bad = fmt.Errorf("batch %d reported after %d", batch, o.last)
	}
	if lastFailed != 0 && o.bad == nil {
		o.bad = fmt.Errorf("batch %d failed", lastFailed)
	}
	o.last = batch
}

func TestConcurrent(t *testing.T) {
	s := openTest(t, "", Options{})
	const writers, perWriter = 8, 500
	order := &orderChecker{}
	ids := make([]uint64, writers)
	var wg sync.WaitGroup
	for w := range writers {
		ids[w] = s.NewQueueID()
		wg.Go(func() {
			id := ids[w]
			m := msg(fmt.Sprint(w), 64)
			for seq := uint64(1); seq <= perWriter; seq++ {
				s.Put(id, seq, m, 0, seq%4 == 0)
				switch seq % 5 {
				case 0:
					s.Delete(id, seq)
				case 1:
					s.Delivered(id, seq)
				case 2:
					if seq > 10 {
						s.Delete(id, seq-10)
					}
				}
				if seq%50 == 0 {
					s.Watch(order)
					if _, err := s.Load(id, 0, seq, 1<<10, nil); err != nil {
						t.Error(err)
					}
				}
				if seq%100 == 0 {
					if err := s.Wait(s.Pending()); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
	flush(t, s)
	order.mu.Lock()
	if order.bad != nil {
		t.Error(order.bad)
	}
	order.mu.Unlock()
	for _, id := range ids {
		var want []uint64
		for seq := uint64(1); seq <= perWriter; seq++ {
			deleted := seq%5 == 0 || (seq%5 == 2 && seq+10 <= perWriter)
			if !deleted {
				want = append(want, seq)
			}
		}
		es := load(t, s, id)
		sameSeqs(t, es, want...)
		for _, e := range es {
			if e.Redelivered != (e.Seq%5 == 1) {
				t.Fatalf("queue %d entry %d redelivered %v", id, e.Seq, e.Redelivered)
			}
		}
	}
}

// Compile-time check that Store implements queue.Store.
var _ queue.Store = (*Store)(nil)

// WaitRange reports a failure in any batch from lo on, even when it waits
// on a later batch: changes logged while the pending batch moved on.
func TestWaitRangeSeesEarlierFailure(t *testing.T) {
	var fail atomic.Bool
	s := openTest(t, "", Options{Fault: func() error {
		if fail.Load() {
			return errors.New("injected")
		}
		return nil
	}})
	id := s.NewQueueID()
	fail.Store(true)
	lo := s.Pending()
	b := s.Put(id, 1, msg("a", 10), 0, false)
	if err := s.Wait(b); err == nil {
		t.Fatal("Wait on the failed batch succeeded")
	}
	fail.Store(false)
	s.Put(id, 2, msg("b", 10), 0, false)
	hi := s.Pending()
	if err := s.WaitRange(lo, hi); err == nil {
		t.Fatal("WaitRange over a failed batch succeeded")
	}
	if err := s.WaitRange(hi, hi); err != nil {
		t.Fatalf("WaitRange after the failure: %v", err)
	}
}

// Changes logged under a Hold land in one transaction, however busy the
// commit loop is with other writers meanwhile.
func TestHoldKeepsChangesInOneBatch(t *testing.T) {
	s := openTest(t, "", Options{})
	id, busy := s.NewQueueID(), s.NewQueueID()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // keeps the loop committing
		defer wg.Done()
		for seq := uint64(1); seq <= 100_000; seq++ {
			select {
			case <-stop:
				return
			default:
			}
			s.Put(busy, seq, msg("busy", 10), 0, false)
			s.Delete(busy, seq)
		}
	}()
	defer wg.Wait()
	defer close(stop)

	const rounds = 300
	for i := range uint64(rounds) {
		held := s.Hold()
		b1 := s.Put(id, 2*i+1, msg("a", 10), 0, false)
		runtime.Gosched()
		b2 := s.Put(id, 2*i+2, msg("b", 10), 0, false)
		b3 := s.Delete(id, 2*i+1)
		s.Release()
		if b1 != held || b2 != held || b3 != held {
			t.Fatalf("round %d: held batch %d, changes logged in %d, %d, %d", i, held, b1, b2, b3)
		}
		if i%50 == 0 {
			mustWait(t, s, held)
		}
	}
	flush(t, s)
	es := load(t, s, id)
	if len(es) != rounds {
		t.Fatalf("%d entries, want %d", len(es), rounds)
	}
}

// Close waits for a hold: a hold's changes are written whole, never cut
// by the last commit.
func TestCloseWaitsForHold(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	id := s.NewQueueID()
	if err := s.Wait(s.PutQueue(QueueRecord{Name: "q", ID: id})); err != nil {
		t.Fatal(err)
	}
	s.Hold()
	s.Put(id, 1, msg("a", 10), 0, false)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	// Close cannot finish while the hold is on; the second change joins
	// the first whether or not Close has begun.
	s.Put(id, 2, msg("b", 10), 0, false)
	s.Release()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, Options{})
	if _, err := s.Recover(); err != nil {
		t.Fatal(err)
	}
	sameSeqs(t, load(t, s, id), 1, 2)
}

func TestHeldClean(t *testing.T) {
	s := openTest(t, "", Options{})
	id := s.NewQueueID()
	s.Hold()
	if !s.HeldClean() {
		t.Error("an empty held batch is not clean")
	}
	s.Put(id, 1, msg("a", 10), 0, false)
	s.Delivered(id, 1)
	if s.HeldClean() {
		t.Error("a held batch with a write is clean")
	}
	s.Delete(id, 1) // published and settled at once: nothing to write
	if !s.HeldClean() {
		t.Error("a held batch whose write was cancelled is not clean")
	}
	s.Delete(id, 2) // an entry written before: its delete must be
	if s.HeldClean() {
		t.Error("a held batch with a delete is clean")
	}
	s.Release()
	flush(t, s)
	s.Close()
	s.Hold()
	if s.HeldClean() {
		t.Error("a closed store is clean")
	}
	s.Release()
}

// TestLazyBatchWritten: a batch no one waits for (a consumer's acks) is
// still written, on its own, and a waiter that comes later gets it.
func TestLazyBatchWritten(t *testing.T) {
	s := openTest(t, "", Options{})
	id := s.NewQueueID()
	s.Put(id, 1, msg("a", 10), 0, false)
	for s.Stats().Commits == 0 {
		time.Sleep(time.Millisecond)
	}
	if st := s.Stats(); st.Commits != 1 || st.Ops != 1 {
		t.Fatalf("stats %+v, want 1 commit of 1 op", st)
	}
	b := s.Delete(id, 1)
	r := newRecorder()
	// (The delete's batch, unless its lazy wait ended just before.)
	w := s.WatchSynced(r)
	if w < b {
		t.Fatalf("WatchSynced on batch %d, before the delete's %d", w, b)
	}
	if c := <-r.ch; c.batch != w || c.lastFailed != 0 {
		t.Fatalf("Committed(%d, %d), want (%d, 0)", c.batch, c.lastFailed, w)
	}
	flush(t, s)
	if es := load(t, s, id); len(es) != 0 {
		t.Fatalf("entries %v left", seqs(es))
	}
}

// Stats.Recent holds the times of the last commits, at most
// recentCommits of them, each a part of CommitTime.
func TestStatsRecent(t *testing.T) {
	s := openTest(t, "", Options{})
	id := s.NewQueueID()
	// check returns the number of commits so far. Puts waited for one by
	// one may still share a commit, so the ring is checked against the
	// store's own count.
	check := func() int {
		t.Helper()
		st := s.Stats()
		if len(st.Recent) != min(int(st.Commits), recentCommits) {
			t.Fatalf("%d commits, %d recent times; want %d", st.Commits, len(st.Recent), min(int(st.Commits), recentCommits))
		}
		var sum time.Duration
		for i, d := range st.Recent {
			if d <= 0 {
				t.Fatalf("recent time %d is %v", i, d)
			}
			sum += d
		}
		if sum > st.CommitTime {
			t.Fatalf("recent times add up to %v, more than CommitTime %v", sum, st.CommitTime)
		}
		return int(st.Commits)
	}
	if n := check(); n != 0 {
		t.Fatalf("%d commits before any write", n)
	}
	for i := 1; i <= 2*recentCommits; i++ {
		s.Put(id, uint64(i), msg("a", 10), 0, false)
		if err := s.WaitSynced(s.Pending()); err != nil {
			t.Fatal(err)
		}
		n := check()
		if i == 3 && (n < 1 || n > 3) {
			t.Fatalf("%d commits after 3 waited-for puts", n)
		}
		if n > recentCommits+5 {
			return
		}
	}
	t.Fatalf("fewer than %d commits after %d waited-for puts", recentCommits+5, 2*recentCommits)
}

// TestSyncsCounted: Stats.Syncs counts one sync per log record and two per
// checkpoint.
func TestSyncsCounted(t *testing.T) {
	s, q, _, _ := pausedStore(t)
	before := s.Stats()
	m := msg("m", 100)
	for seq := uint64(1); seq <= 3; seq++ {
		putSynced(t, s, q.ID, seq, m) // a record each
	}
	mid := s.Stats()
	if got := mid.Syncs - before.Syncs; got != 3 || mid.Commits-before.Commits != 3 {
		t.Fatalf("%d syncs for %d log records, want 3 for 3", got, mid.Commits-before.Commits)
	}
	s.pauseCheckpoints.Store(false)
	flush(t, s)
	after := s.Stats()
	ckpts, commits := after.Checkpoints-mid.Checkpoints, after.Commits-mid.Commits
	if ckpts == 0 {
		t.Fatal("no checkpoint after flush")
	}
	if got, want := after.Syncs-mid.Syncs, commits+2*ckpts; got != want {
		t.Errorf("%d syncs for %d log records and %d checkpoints, want %d", got, commits, ckpts, want)
	}
}

// TestArenaChunksReused: a checkpoint's record arena is cut from chunks,
// and maxKeptArena of them are kept: a second checkpoint of 24 MiB of
// records allocates about the 8 MiB over that, where an arena that
// doubled from empty allocated twice the checkpoint again each time.
func TestArenaChunksReused(t *testing.T) {
	s := openTest(t, "", Options{})
	const total, value = 24 << 20, 64 << 10
	round := func() {
		for n := 0; n < total; n += value {
			b := s.alloc(value)
			b[0], b[value-1] = 1, 1
		}
		s.resetScratch()
	}
	round() // fills the spares
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	round()
	runtime.ReadMemStats(&after)
	if got, want := after.TotalAlloc-before.TotalAlloc, uint64(total-maxKeptArena+2*arenaChunk); got > want {
		t.Errorf("a checkpoint of %d bytes allocated %d, want at most %d", total, got, want)
	}
}
