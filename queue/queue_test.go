package queue

import (
	"errors"
	"fmt"
	"math/rand"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitLimit bounds every wait for something asynchronous (the TTL timer, a
// goroutine that may deadlock).
const waitLimit = 10 * time.Second

// msg returns a message whose RoutingKey is id and whose body is size bytes.
func msg(id, size int) *Message {
	return &Message{RoutingKey: strconv.Itoa(id), Body: make([]byte, size)}
}

// id returns the id msg gave e's message.
func id(t testing.TB, e Entry) int {
	t.Helper()
	n, err := strconv.Atoi(e.Msg.RoutingKey)
	if err != nil {
		t.Fatalf("entry without an id: %q", e.Msg.RoutingKey)
	}
	return n
}

func ids(t testing.TB, es []Entry) []int {
	t.Helper()
	out := make([]int, len(es))
	for i, e := range es {
		out[i] = id(t, e)
	}
	return out
}

func eqInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func publish(t testing.TB, q *Queue, m *Message) {
	t.Helper()
	if _, err := q.Publish(m); err != nil {
		t.Fatalf("Publish(%s): %v", m.RoutingKey, err)
	}
}

// checkStats compares the current counts; TestCounts checks the counters.
func checkStats(t testing.TB, q *Queue, want Stats) {
	t.Helper()
	got := q.Stats()
	got.Counts = Counts{}
	if got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
}

// fakeConsumer records what it is given. credit < 0 means unlimited; each
// accepted delivery uses one unit of credit, and a consumer with none left
// refuses.
type fakeConsumer struct {
	name    string
	mu      sync.Mutex
	credit  int
	got     []Entry
	offered int // Deliver calls, accepted or not
}

func newConsumer(name string, credit int) *fakeConsumer {
	return &fakeConsumer{name: name, credit: credit}
}

func (c *fakeConsumer) Deliver(q *Queue, e Entry) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offered++
	if c.credit == 0 {
		return false
	}
	if c.credit > 0 {
		c.credit--
	}
	c.got = append(c.got, e)
	return true
}

func (c *fakeConsumer) setCredit(n int) {
	c.mu.Lock()
	c.credit = n
	c.mu.Unlock()
}

func (c *fakeConsumer) entries() []Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Entry(nil), c.got...)
}

func (c *fakeConsumer) ids(t testing.TB) []int { return ids(t, c.entries()) }

func (c *fakeConsumer) offers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offered
}

// deadRecorder is a dead hook that records every call.
type deadRecorder struct {
	mu    sync.Mutex
	calls [][]Dead
	ch    chan struct{} // gets a token after each call
}

func newDeadRecorder(q *Queue) *deadRecorder {
	d := &deadRecorder{ch: make(chan struct{}, 1000)}
	q.SetDeadHook(d.hook)
	return d
}

func (d *deadRecorder) hook(dead []Dead) {
	d.mu.Lock()
	d.calls = append(d.calls, append([]Dead(nil), dead...))
	d.mu.Unlock()
	d.ch <- struct{}{}
}

func (d *deadRecorder) all() []Dead {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Dead
	for _, c := range d.calls {
		out = append(out, c...)
	}
	return out
}

// waitFor waits until n dead messages have been recorded.
func (d *deadRecorder) waitFor(t testing.TB, n int) []Dead {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		if all := d.all(); len(all) >= n {
			return all
		}
		select {
		case <-d.ch:
		case <-deadline.C:
			t.Fatalf("dead hook got %d messages, want %d", len(d.all()), n)
		}
	}
}

func checkDead(t testing.TB, dead []Dead, reason DeadReason, wantIDs ...int) {
	t.Helper()
	var got []int
	for _, d := range dead {
		if d.Reason != reason {
			t.Fatalf("dead reason %q, want %q (%+v)", d.Reason, reason, d)
		}
		got = append(got, id(t, d.Entry))
	}
	if !eqInts(got, wantIDs) {
		t.Fatalf("dead ids %v, want %v", got, wantIDs)
	}
}

func getIDs(t testing.TB, q *Queue, n int) []int {
	t.Helper()
	var out []int
	for i := 0; i < n; i++ {
		e, _, ok := q.Get(false)
		if !ok {
			t.Fatalf("Get %d of %d: empty", i, n)
		}
		out = append(out, id(t, e))
	}
	return out
}

func TestFIFO(t *testing.T) {
	q := New("q", NoLimits())
	if q.Name() != "q" {
		t.Fatalf("Name = %q", q.Name())
	}
	const n = 100
	for i := 0; i < n; i++ {
		publish(t, q, msg(i, 1))
	}
	var prev uint64
	for i := 0; i < n; i++ {
		e, remaining, ok := q.Get(false)
		if !ok {
			t.Fatalf("Get %d: empty", i)
		}
		if id(t, e) != i || e.Redelivered {
			t.Fatalf("Get %d = id %d redelivered %v", i, id(t, e), e.Redelivered)
		}
		if remaining != n-1-i {
			t.Fatalf("Get %d: remaining %d, want %d", i, remaining, n-1-i)
		}
		if i > 0 && e.Seq <= prev {
			t.Fatalf("Seq %d after %d", e.Seq, prev)
		}
		prev = e.Seq
	}
	if _, remaining, ok := q.Get(false); ok || remaining != 0 {
		t.Fatalf("Get on empty queue: ok %v remaining %d", ok, remaining)
	}
	checkStats(t, q, Stats{Unacked: n})
}

func TestFIFOToConsumer(t *testing.T) {
	q := New("q", NoLimits())
	for i := 0; i < 5; i++ {
		publish(t, q, msg(i, 1))
	}
	c := newConsumer("c", -1)
	if err := q.AddConsumer(c, false, false, 0); err != nil {
		t.Fatal(err)
	}
	for i := 5; i < 10; i++ {
		publish(t, q, msg(i, 1))
	}
	if got, want := c.ids(t), []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}; !eqInts(got, want) {
		t.Fatalf("consumer got %v, want %v", got, want)
	}
	checkStats(t, q, Stats{Unacked: 10, Consumers: 1})
}

// TestRequeueOriginalPosition: publish 1..6, deliver all, requeue 4 then 2;
// the next messages are 2 and 4, redelivered, then 7, published after.
func TestRequeueOriginalPosition(t *testing.T) {
	q := New("q", NoLimits())
	for i := 1; i <= 6; i++ {
		publish(t, q, msg(i, 1))
	}
	byID := map[int]Entry{}
	for i := 1; i <= 6; i++ {
		e, _, ok := q.Get(false)
		if !ok {
			t.Fatal("Get: empty")
		}
		byID[id(t, e)] = e
	}
	checkStats(t, q, Stats{Unacked: 6})
	q.Requeue([]Entry{byID[4]})
	q.Requeue([]Entry{byID[2]})
	checkStats(t, q, Stats{Ready: 2, Unacked: 4, ReadyBytes: 2})
	publish(t, q, msg(7, 1))

	want := []struct {
		id          int
		redelivered bool
	}{{2, true}, {4, true}, {7, false}}
	for i, w := range want {
		e, remaining, ok := q.Get(false)
		if !ok || id(t, e) != w.id || e.Redelivered != w.redelivered {
			t.Fatalf("Get %d = id %d redelivered %v ok %v, want id %d redelivered %v",
				i, id(t, e), e.Redelivered, ok, w.id, w.redelivered)
		}
		if remaining != len(want)-1-i {
			t.Fatalf("Get %d: remaining %d", i, remaining)
		}
	}
	checkStats(t, q, Stats{Unacked: 7})
}

// TestRequeueOriginalPositionToConsumer is the same through a consumer: the
// requeued messages wait while it has no credit and come first once it has.
func TestRequeueOriginalPositionToConsumer(t *testing.T) {
	q := New("q", NoLimits())
	c := newConsumer("c", 6)
	if err := q.AddConsumer(c, false, false, 0); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 6; i++ {
		publish(t, q, msg(i, 1))
	}
	got := c.entries()
	if !eqInts(ids(t, got), []int{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("first deliveries %v", ids(t, got))
	}
	q.Requeue([]Entry{got[3]})
	q.Requeue([]Entry{got[1]})
	publish(t, q, msg(7, 1))
	checkStats(t, q, Stats{Ready: 3, Unacked: 4, Consumers: 1, ReadyBytes: 3})

	c.setCredit(-1)
	q.Kick()
	all := c.entries()[6:]
	if !eqInts(ids(t, all), []int{2, 4, 7}) {
		t.Fatalf("after requeue got %v, want [2 4 7]", ids(t, all))
	}
	if !all[0].Redelivered || !all[1].Redelivered || all[2].Redelivered {
		t.Fatalf("redelivered flags %v %v %v, want true true false",
			all[0].Redelivered, all[1].Redelivered, all[2].Redelivered)
	}
	checkStats(t, q, Stats{Unacked: 7, Consumers: 1})
}

func TestRequeueBatchSortedBySeq(t *testing.T) {
	q := New("q", NoLimits())
	for i := 0; i < 10; i++ {
		publish(t, q, msg(i, 1))
	}
	var es []Entry
	for i := 0; i < 8; i++ {
		e, _, _ := q.Get(false)
		es = append(es, e)
	}
	// Requeue in a scrambled order, in one call and in several.
	q.Requeue([]Entry{es[6], es[1], es[7]})
	q.Requeue([]Entry{es[3]})
	q.Requeue([]Entry{es[0], es[5]})
	if got, want := getIDs(t, q, 8), []int{0, 1, 3, 5, 6, 7, 8, 9}; !eqInts(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestRoundRobin(t *testing.T) {
	q := New("q", NoLimits())
	cs := []*fakeConsumer{newConsumer("a", -1), newConsumer("b", -1), newConsumer("c", -1)}
	for _, c := range cs {
		if err := q.AddConsumer(c, false, false, 0); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 9; i++ {
		publish(t, q, msg(i, 1))
	}
	for k, c := range cs {
		want := []int{k, k + 3, k + 6}
		if got := c.ids(t); !eqInts(got, want) {
			t.Fatalf("consumer %s got %v, want %v", c.name, got, want)
		}
	}
	checkStats(t, q, Stats{Unacked: 9, Consumers: 3})
}

// TestRoundRobinBacklog: a backlog is spread over consumers as they join.
func TestRoundRobinBacklog(t *testing.T) {
	q := New("q", NoLimits())
	for i := 0; i < 6; i++ {
		publish(t, q, msg(i, 1))
	}
	a, b := newConsumer("a", 2), newConsumer("b", -1)
	if err := q.AddConsumer(a, false, false, 0); err != nil {
		t.Fatal(err)
	}
	if got := a.ids(t); !eqInts(got, []int{0, 1}) {
		t.Fatalf("a got %v", got)
	}
	checkStats(t, q, Stats{Ready: 4, Unacked: 2, Consumers: 1, ReadyBytes: 4})
	if err := q.AddConsumer(b, false, false, 0); err != nil {
		t.Fatal(err)
	}
	if got := b.ids(t); !eqInts(got, []int{2, 3, 4, 5}) {
		t.Fatalf("b got %v", got)
	}
	checkStats(t, q, Stats{Unacked: 6, Consumers: 2})
}

func TestRefusingConsumerSkipped(t *testing.T) {
	q := New("q", NoLimits())
	a, b, c := newConsumer("a", -1), newConsumer("b", 0), newConsumer("c", -1)
	for _, x := range []*fakeConsumer{a, b, c} {
		if err := q.AddConsumer(x, false, false, 0); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 4; i++ {
		publish(t, q, msg(i, 1))
	}
	if got := a.ids(t); !eqInts(got, []int{0, 2}) {
		t.Fatalf("a got %v, want [0 2]", got)
	}
	if got := b.ids(t); len(got) != 0 {
		t.Fatalf("b (no credit) got %v", got)
	}
	if got := c.ids(t); !eqInts(got, []int{1, 3}) {
		t.Fatalf("c got %v, want [1 3]", got)
	}
	if b.offers() == 0 {
		t.Fatal("b was never offered a message")
	}
	checkStats(t, q, Stats{Unacked: 4, Consumers: 3})
}

func TestAllRefuseBlocksUntilKickOrAck(t *testing.T) {
	q := New("q", NoLimits())
	a, b, c := newConsumer("a", 1), newConsumer("b", 1), newConsumer("c", 1)
	for _, x := range []*fakeConsumer{a, b, c} {
		if err := q.AddConsumer(x, false, false, 0); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 4; i++ {
		publish(t, q, msg(i, 1))
	}
	// Three taken, the fourth refused by everyone.
	checkStats(t, q, Stats{Ready: 1, Unacked: 3, Consumers: 3, ReadyBytes: 1})
	offers := a.offers() + b.offers() + c.offers()

	// Blocked: more publishes offer nothing to anyone.
	for i := 4; i < 7; i++ {
		publish(t, q, msg(i, 1))
	}
	if n := a.offers() + b.offers() + c.offers(); n != offers {
		t.Fatalf("blocked queue made %d more offers", n-offers)
	}
	checkStats(t, q, Stats{Ready: 4, Unacked: 3, Consumers: 3, ReadyBytes: 4})

	// Kick with credit for b only: b gets one message, then all refuse again.
	b.setCredit(1)
	q.Kick()
	if got := b.ids(t); !eqInts(got, []int{1, 3}) {
		t.Fatalf("b got %v, want [1 3]", got)
	}
	checkStats(t, q, Stats{Ready: 3, Unacked: 4, Consumers: 3, ReadyBytes: 3})
	offers = a.offers() + b.offers() + c.offers()
	publish(t, q, msg(7, 1))
	if n := a.offers() + b.offers() + c.offers(); n != offers {
		t.Fatalf("blocked queue made %d more offers", n-offers)
	}

	// Ack unblocks too.
	c.setCredit(2)
	q.Ack(make([]Entry, 1))
	if got := c.ids(t); !eqInts(got, []int{2, 4, 5}) {
		t.Fatalf("c got %v, want [2 4 5]", got)
	}
	checkStats(t, q, Stats{Ready: 2, Unacked: 5, Consumers: 3, ReadyBytes: 2})

	// Kick with nobody able to take anything delivers nothing.
	q.Kick()
	checkStats(t, q, Stats{Ready: 2, Unacked: 5, Consumers: 3, ReadyBytes: 2})

	// Requeue unblocks as well.
	a.setCredit(-1)
	q.Requeue(a.entries()[:1])
	if got := a.ids(t); !eqInts(got, []int{0, 0, 6, 7}) {
		t.Fatalf("a got %v, want [0 0 6 7]", got)
	}
	checkStats(t, q, Stats{Unacked: 7, Consumers: 3})
}

// TestAckUnblocked: Ack on a queue that is not blocked only settles.
func TestAckUnblocked(t *testing.T) {
	q := New("q", NoLimits())
	c := newConsumer("c", -1)
	if err := q.AddConsumer(c, false, false, 0); err != nil {
		t.Fatal(err)
	}
	publish(t, q, msg(0, 3))
	checkStats(t, q, Stats{Unacked: 1, Consumers: 1})
	q.Ack(make([]Entry, 1))
	checkStats(t, q, Stats{Consumers: 1})
	if len(c.entries()) != 1 {
		t.Fatalf("consumer got %d deliveries", len(c.entries()))
	}
}

func TestNoAckConsumer(t *testing.T) {
	q := New("q", NoLimits())
	na, ack := newConsumer("noack", -1), newConsumer("ack", -1)
	if err := q.AddConsumer(na, true, false, 0); err != nil {
		t.Fatal(err)
	}
	if err := q.AddConsumer(ack, false, false, 0); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		publish(t, q, msg(i, 2))
	}
	if len(na.entries()) != 2 || len(ack.entries()) != 2 {
		t.Fatalf("deliveries %d and %d, want 2 and 2", len(na.entries()), len(ack.entries()))
	}
	checkStats(t, q, Stats{Unacked: 2, Consumers: 2})
}

func TestGetNoAck(t *testing.T) {
	q := New("q", NoLimits())
	publish(t, q, msg(0, 5))
	publish(t, q, msg(1, 5))
	e, remaining, ok := q.Get(true)
	if !ok || id(t, e) != 0 || remaining != 1 {
		t.Fatalf("Get(noAck) = %d %d %v", id(t, e), remaining, ok)
	}
	checkStats(t, q, Stats{Ready: 1, ReadyBytes: 5})
	e, remaining, ok = q.Get(false)
	if !ok || id(t, e) != 1 || remaining != 0 {
		t.Fatalf("Get = %d %d %v", id(t, e), remaining, ok)
	}
	checkStats(t, q, Stats{Unacked: 1})
}

func TestStatsEachOperation(t *testing.T) {
	q := New("q", NoLimits())
	d := newDeadRecorder(q)
	checkStats(t, q, Stats{})

	publish(t, q, msg(0, 10))
	checkStats(t, q, Stats{Ready: 1, ReadyBytes: 10})
	publish(t, q, msg(1, 20))
	checkStats(t, q, Stats{Ready: 2, ReadyBytes: 30})
	publish(t, q, msg(2, 0))
	checkStats(t, q, Stats{Ready: 3, ReadyBytes: 30})

	q.Get(false)
	checkStats(t, q, Stats{Ready: 2, Unacked: 1, ReadyBytes: 20})
	q.Ack(make([]Entry, 1))
	checkStats(t, q, Stats{Ready: 2, ReadyBytes: 20})

	e1, _, _ := q.Get(false)
	checkStats(t, q, Stats{Ready: 1, Unacked: 1})
	q.Requeue([]Entry{e1})
	checkStats(t, q, Stats{Ready: 2, ReadyBytes: 20})

	c := newConsumer("c", 1)
	if err := q.AddConsumer(c, false, false, 0); err != nil {
		t.Fatal(err)
	}
	checkStats(t, q, Stats{Ready: 1, Unacked: 1, Consumers: 1})

	q.Discard(c.entries())
	checkStats(t, q, Stats{Ready: 1, Consumers: 1})
	checkDead(t, d.all(), Rejected, 1)

	if left, found := q.RemoveConsumer(c); left != 0 || !found {
		t.Fatalf("RemoveConsumer = %d %v", left, found)
	}
	checkStats(t, q, Stats{Ready: 1})

	publish(t, q, msg(3, 7))
	checkStats(t, q, Stats{Ready: 2, ReadyBytes: 7})
	if n := q.Purge(); n != 2 {
		t.Fatalf("Purge = %d, want 2", n)
	}
	checkStats(t, q, Stats{})
	if len(d.all()) != 1 {
		t.Fatalf("purged messages went to the dead hook: %+v", d.all())
	}
}

func TestGetRemaining(t *testing.T) {
	q := New("q", NoLimits())
	if _, remaining, ok := q.Get(false); ok || remaining != 0 {
		t.Fatalf("Get on empty queue = %d %v", remaining, ok)
	}
	for i := 0; i < 3; i++ {
		publish(t, q, msg(i, 1))
	}
	for want := 2; want >= 0; want-- {
		if _, remaining, ok := q.Get(false); !ok || remaining != want {
			t.Fatalf("Get: remaining %d ok %v, want %d", remaining, ok, want)
		}
	}
	if _, _, ok := q.Get(false); ok {
		t.Fatal("Get after draining returned a message")
	}
}

func TestPurge(t *testing.T) {
	q := New("q", NoLimits())
	if n := q.Purge(); n != 0 {
		t.Fatalf("Purge of empty queue = %d", n)
	}
	for i := 0; i < 5; i++ {
		publish(t, q, msg(i, 3))
	}
	e, _, _ := q.Get(false)
	f, _, _ := q.Get(false)
	q.Requeue([]Entry{f})
	checkStats(t, q, Stats{Ready: 4, Unacked: 1, ReadyBytes: 12})
	if n := q.Purge(); n != 4 {
		t.Fatalf("Purge = %d, want 4", n)
	}
	checkStats(t, q, Stats{Unacked: 1})
	// The unacked message can still be settled, and the queue works on.
	q.Requeue([]Entry{e})
	publish(t, q, msg(9, 3))
	if got := getIDs(t, q, 2); !eqInts(got, []int{0, 9}) {
		t.Fatalf("after purge got %v, want [0 9]", got)
	}
}

func TestDelete(t *testing.T) {
	q := New("q", NoLimits())
	a, b := newConsumer("a", 0), newConsumer("b", 0)
	if err := q.AddConsumer(a, false, false, 0); err != nil {
		t.Fatal(err)
	}
	if err := q.AddConsumer(b, false, false, 0); err != nil {
		t.Fatal(err)
	}
	publish(t, q, msg(0, 1))
	publish(t, q, msg(1, 1))

	if _, _, err := q.Delete(true, false); !errors.Is(err, ErrInUse) {
		t.Fatalf("Delete(ifUnused) with consumers: %v, want ErrInUse", err)
	}
	if _, _, err := q.Delete(false, true); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("Delete(ifEmpty) with messages: %v, want ErrNotEmpty", err)
	}
	if q.Deleted() {
		t.Fatal("refused Delete deleted the queue")
	}
	checkStats(t, q, Stats{Ready: 2, Consumers: 2, ReadyBytes: 2})

	n, cs, err := q.Delete(false, false)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("Delete returned %d messages, want 2", n)
	}
	if len(cs) != 2 || cs[0] != Consumer(a) || cs[1] != Consumer(b) {
		t.Fatalf("Delete returned consumers %v, want [a b]", cs)
	}
	if !q.Deleted() {
		t.Fatal("Deleted = false after Delete")
	}
	checkStats(t, q, Stats{})

	if _, _, err := q.Delete(false, false); !errors.Is(err, ErrDeleted) {
		t.Fatalf("second Delete: %v, want ErrDeleted", err)
	}
	if _, err := q.Publish(msg(2, 1)); !errors.Is(err, ErrDeleted) {
		t.Fatalf("Publish after Delete: %v, want ErrDeleted", err)
	}
	if err := q.AddConsumer(newConsumer("c", -1), false, false, 0); !errors.Is(err, ErrDeleted) {
		t.Fatalf("AddConsumer after Delete: %v, want ErrDeleted", err)
	}
	if _, _, ok := q.Get(false); ok {
		t.Fatal("Get after Delete returned a message")
	}
	q.Kick()
	checkStats(t, q, Stats{})
}

func TestDeleteIfUnusedIfEmptyAllowed(t *testing.T) {
	q := New("q", NoLimits())
	c := newConsumer("c", -1)
	if err := q.AddConsumer(c, false, false, 0); err != nil {
		t.Fatal(err)
	}
	publish(t, q, msg(0, 1)) // delivered: unacked, not ready
	if _, found := q.RemoveConsumer(c); !found {
		t.Fatal("consumer not found")
	}
	n, cs, err := q.Delete(true, true)
	if err != nil || n != 0 || len(cs) != 0 {
		t.Fatalf("Delete(ifUnused, ifEmpty) = %d %v %v", n, cs, err)
	}
	// Settling after deletion is harmless and dead-letters nothing.
	d := newDeadRecorder(q)
	q.Requeue(c.entries())
	q.Discard(c.entries())
	q.Ack(make([]Entry, 1))
	if len(d.all()) != 0 {
		t.Fatalf("dead hook called after delete: %+v", d.all())
	}
	if s := q.Stats(); s.Ready != 0 || s.ReadyBytes != 0 || s.Consumers != 0 {
		t.Fatalf("Stats after delete = %+v", s)
	}
}

func TestExclusive(t *testing.T) {
	q := New("q", NoLimits())
	a, b, x := newConsumer("a", -1), newConsumer("b", -1), newConsumer("x", -1)
	if err := q.AddConsumer(a, false, false, 0); err != nil {
		t.Fatal(err)
	}
	if err := q.AddConsumer(x, false, true, 0); !errors.Is(err, ErrExclusiveUse) {
		t.Fatalf("exclusive consume on a used queue: %v, want ErrExclusiveUse", err)
	}
	if left, found := q.RemoveConsumer(a); left != 0 || !found {
		t.Fatalf("RemoveConsumer = %d %v", left, found)
	}
	if err := q.AddConsumer(x, false, true, 0); err != nil {
		t.Fatalf("exclusive consume on an unused queue: %v", err)
	}
	if err := q.AddConsumer(b, false, false, 0); !errors.Is(err, ErrExclusiveUse) {
		t.Fatalf("consume on an exclusively used queue: %v, want ErrExclusiveUse", err)
	}
	if err := q.AddConsumer(b, false, true, 0); !errors.Is(err, ErrExclusiveUse) {
		t.Fatalf("exclusive consume on an exclusively used queue: %v, want ErrExclusiveUse", err)
	}
	checkStats(t, q, Stats{Consumers: 1})
	publish(t, q, msg(0, 1))
	if len(x.entries()) != 1 {
		t.Fatal("exclusive consumer got nothing")
	}
	if _, found := q.RemoveConsumer(x); !found {
		t.Fatal("exclusive consumer not found")
	}
	if err := q.AddConsumer(b, false, false, 0); err != nil {
		t.Fatalf("consume after exclusive consumer left: %v", err)
	}
	if err := q.AddConsumer(a, false, false, 0); err != nil {
		t.Fatalf("second consume after exclusive consumer left: %v", err)
	}
	checkStats(t, q, Stats{Unacked: 1, Consumers: 2})
}

func TestRemoveConsumerRoundRobin(t *testing.T) {
	setup := func(t *testing.T) (*Queue, []*fakeConsumer) {
		q := New("q", NoLimits())
		cs := []*fakeConsumer{newConsumer("a", -1), newConsumer("b", -1), newConsumer("c", -1)}
		for _, c := range cs {
			if err := q.AddConsumer(c, false, false, 0); err != nil {
				t.Fatal(err)
			}
		}
		// a and b take one each, so c is next.
		publish(t, q, msg(0, 1))
		publish(t, q, msg(1, 1))
		return q, cs
	}
	last := func(c *fakeConsumer) []int { return c.ids(t) }

	t.Run("before next", func(t *testing.T) {
		q, cs := setup(t)
		if left, found := q.RemoveConsumer(cs[0]); left != 2 || !found {
			t.Fatalf("RemoveConsumer = %d %v", left, found)
		}
		publish(t, q, msg(2, 1))
		publish(t, q, msg(3, 1))
		if got := last(cs[2]); !eqInts(got, []int{2}) {
			t.Fatalf("c got %v, want [2]", got)
		}
		if got := last(cs[1]); !eqInts(got, []int{1, 3}) {
			t.Fatalf("b got %v, want [1 3]", got)
		}
	})
	t.Run("the next one", func(t *testing.T) {
		q, cs := setup(t)
		if left, found := q.RemoveConsumer(cs[2]); left != 2 || !found {
			t.Fatalf("RemoveConsumer = %d %v", left, found)
		}
		publish(t, q, msg(2, 1))
		publish(t, q, msg(3, 1))
		if got := last(cs[0]); !eqInts(got, []int{0, 2}) {
			t.Fatalf("a got %v, want [0 2]", got)
		}
		if got := last(cs[1]); !eqInts(got, []int{1, 3}) {
			t.Fatalf("b got %v, want [1 3]", got)
		}
	})
	t.Run("after next wraps", func(t *testing.T) {
		q, cs := setup(t)
		publish(t, q, msg(2, 1)) // c takes it; a is next
		if left, found := q.RemoveConsumer(cs[1]); left != 2 || !found {
			t.Fatalf("RemoveConsumer = %d %v", left, found)
		}
		publish(t, q, msg(3, 1))
		publish(t, q, msg(4, 1))
		if got := last(cs[0]); !eqInts(got, []int{0, 3}) {
			t.Fatalf("a got %v, want [0 3]", got)
		}
		if got := last(cs[2]); !eqInts(got, []int{2, 4}) {
			t.Fatalf("c got %v, want [2 4]", got)
		}
	})
	t.Run("middle when next is last", func(t *testing.T) {
		q, cs := setup(t)
		// next is c at index 2; removing b moves c to index 1.
		if _, found := q.RemoveConsumer(cs[1]); !found {
			t.Fatal("not found")
		}
		publish(t, q, msg(2, 1))
		if got := last(cs[2]); !eqInts(got, []int{2}) {
			t.Fatalf("c got %v, want [2]", got)
		}
	})
	t.Run("unknown and all", func(t *testing.T) {
		q, cs := setup(t)
		if left, found := q.RemoveConsumer(newConsumer("z", -1)); left != 3 || found {
			t.Fatalf("RemoveConsumer(unknown) = %d %v", left, found)
		}
		for i, c := range cs {
			if left, found := q.RemoveConsumer(c); left != 2-i || !found {
				t.Fatalf("RemoveConsumer(%s) = %d %v", c.name, left, found)
			}
		}
		if _, found := q.RemoveConsumer(cs[0]); found {
			t.Fatal("removed consumer found twice")
		}
		publish(t, q, msg(2, 1))
		checkStats(t, q, Stats{Ready: 1, Unacked: 2, ReadyBytes: 1})
		d := newConsumer("d", -1)
		if err := q.AddConsumer(d, false, false, 0); err != nil {
			t.Fatal(err)
		}
		if got := last(d); !eqInts(got, []int{2}) {
			t.Fatalf("new consumer got %v, want [2]", got)
		}
	})
}

// spinUntil waits, without sleeping, until the wall clock passes at.
func spinUntil(t *testing.T, at int64) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().UnixNano() <= at {
		if time.Now().After(deadline) {
			t.Fatal("clock did not pass the expiry time")
		}
		runtime.Gosched()
	}
}

// pollUntil waits for cond, failing after waitLimit.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.Gosched()
	}
}

// disarmTimer stops q from arming its TTL timer, so that expiry only happens
// lazily when the queue is used: armTimerLocked sees a timer due before any
// entry and leaves it.
func disarmTimer(q *Queue) {
	q.mu.Lock()
	q.timerAt = 1
	q.mu.Unlock()
}

func TestMessageTTLLazy(t *testing.T) {
	opts := NoLimits()
	opts.MessageTTL = time.Millisecond
	q := New("q", opts)
	d := newDeadRecorder(q)
	disarmTimer(q)
	publish(t, q, msg(0, 4))
	publish(t, q, msg(1, 4))
	spinUntil(t, now()+int64(time.Millisecond)) // both have expired after this
	if len(d.all()) != 0 {
		t.Fatalf("dead hook called before the queue was used: %+v", d.all())
	}
	checkStats(t, q, Stats{Ready: 2, ReadyBytes: 8})

	if e, remaining, ok := q.Get(false); ok || remaining != 0 {
		t.Fatalf("Get after expiry = id %s remaining %d ok %v", e.Msg.RoutingKey, remaining, ok)
	}
	// The hook has run by the time Get returns.
	checkDead(t, d.all(), Expired, 0, 1)
	checkStats(t, q, Stats{})
}

func TestMessageTTLLazyOnDispatch(t *testing.T) {
	opts := NoLimits()
	opts.MessageTTL = time.Millisecond
	q := New("q", opts)
	d := newDeadRecorder(q)
	disarmTimer(q)
	publish(t, q, msg(0, 4))
	last := now() + int64(time.Millisecond)
	spinUntil(t, last+1)
	c := newConsumer("c", -1)
	if err := q.AddConsumer(c, false, false, 0); err != nil {
		t.Fatal(err)
	}
	if len(c.entries()) != 0 {
		t.Fatal("expired message delivered")
	}
	checkDead(t, d.all(), Expired, 0)
	checkStats(t, q, Stats{Consumers: 1})
}

func TestMessageTTLTimer(t *testing.T) {
	opts := NoLimits()
	opts.MessageTTL = 5 * time.Millisecond
	q := New("q", opts)
	d := newDeadRecorder(q)
	publish(t, q, msg(0, 4))
	publish(t, q, msg(1, 4))
	publish(t, q, msg(2, 4))
	// No further operation on q: the timer alone must expire all three.
	dead := d.waitFor(t, 3)
	checkDead(t, dead, Expired, 0, 1, 2)
	checkStats(t, q, Stats{})
}

// TestMessageTTLTimerRearm: the timer is re-armed for a head that expires
// sooner than the one it was armed for, and again after it fires.
func TestMessageTTLTimerRearm(t *testing.T) {
	q := New("q", NoLimits())
	d := newDeadRecorder(q)
	m0 := msg(0, 1)
	m0.ExpiresAt = now() + int64(time.Hour)
	publish(t, q, m0)
	e, _, ok := q.Get(false)
	if !ok {
		t.Fatal("Get: empty")
	}
	m1 := msg(1, 1)
	m1.ExpiresAt = now() + int64(time.Hour)
	publish(t, q, m1) // timer armed an hour out
	// Give the requeued entry a short life: it becomes the head, and the
	// timer must be brought forward for it.
	e.ExpiresAt = now() + int64(2*time.Millisecond)
	q.Requeue([]Entry{e})
	dead := d.waitFor(t, 1)
	checkDead(t, dead, Expired, 0)
	if !dead[0].Entry.Redelivered {
		t.Fatal("requeued entry not marked redelivered")
	}
	checkStats(t, q, Stats{Ready: 1, ReadyBytes: 1})

	// Messages expiring one after another, each needing a fresh timer.
	q2 := New("q2", NoLimits())
	d2 := newDeadRecorder(q2)
	base := now()
	for i := 0; i < 3; i++ {
		m := msg(i, 1)
		m.ExpiresAt = base + int64(i+1)*int64(3*time.Millisecond)
		publish(t, q2, m)
	}
	checkDead(t, d2.waitFor(t, 3), Expired, 0, 1, 2)
	checkStats(t, q2, Stats{})
}

func TestMessageTTLDeliveredBeforeExpiry(t *testing.T) {
	opts := NoLimits()
	opts.MessageTTL = time.Hour
	q := New("q", opts)
	d := newDeadRecorder(q)
	c := newConsumer("c", -1)
	if err := q.AddConsumer(c, false, false, 0); err != nil {
		t.Fatal(err)
	}
	before := now()
	publish(t, q, msg(0, 1))
	es := c.entries()
	if len(es) != 1 {
		t.Fatalf("consumer got %d", len(es))
	}
	if es[0].ExpiresAt <= before {
		t.Fatalf("ExpiresAt %d not after publish time %d", es[0].ExpiresAt, before)
	}
	if len(d.all()) != 0 {
		t.Fatal("dead hook called")
	}
}

func TestPerMessageExpiry(t *testing.T) {
	t.Run("lazy", func(t *testing.T) {
		q := New("q", NoLimits())
		d := newDeadRecorder(q)
		disarmTimer(q)
		m := msg(0, 1)
		m.ExpiresAt = now() + int64(time.Millisecond)
		publish(t, q, m)
		publish(t, q, msg(1, 1)) // no expiry
		spinUntil(t, m.ExpiresAt)
		e, remaining, ok := q.Get(false)
		if !ok || id(t, e) != 1 || remaining != 0 {
			t.Fatalf("Get = %d %d %v, want the unexpiring message", id(t, e), remaining, ok)
		}
		checkDead(t, d.all(), Expired, 0)
	})
	t.Run("timer", func(t *testing.T) {
		q := New("q", NoLimits())
		d := newDeadRecorder(q)
		m := msg(0, 1)
		m.ExpiresAt = now() + int64(5*time.Millisecond)
		publish(t, q, m)
		checkDead(t, d.waitFor(t, 1), Expired, 0)
		checkStats(t, q, Stats{})
	})
	t.Run("already expired", func(t *testing.T) {
		q := New("q", NoLimits())
		d := newDeadRecorder(q)
		m := msg(0, 1)
		m.ExpiresAt = now() - 1
		publish(t, q, m)
		if _, _, ok := q.Get(false); ok {
			t.Fatal("Get returned an expired message")
		}
		checkDead(t, d.waitFor(t, 1), Expired, 0)
	})
	t.Run("sooner of message and queue TTL", func(t *testing.T) {
		opts := NoLimits()
		opts.MessageTTL = time.Hour
		q := New("q", opts)
		short := msg(0, 1)
		short.ExpiresAt = now() + int64(time.Minute)
		long := msg(1, 1)
		long.ExpiresAt = now() + int64(2*time.Hour)
		publish(t, q, short)
		publish(t, q, long)
		e, _, _ := q.Get(false)
		if e.ExpiresAt != short.ExpiresAt {
			t.Fatalf("entry expiry %d, want the message's %d", e.ExpiresAt, short.ExpiresAt)
		}
		e, _, _ = q.Get(false)
		if e.ExpiresAt >= long.ExpiresAt || e.ExpiresAt == 0 {
			t.Fatalf("entry expiry %d, want the queue TTL's, before %d", e.ExpiresAt, long.ExpiresAt)
		}
	})
	t.Run("head blocks later expiry", func(t *testing.T) {
		// As in RabbitMQ, only the head expires; an expired message behind
		// a live one waits for the head to go, then dies rather than being
		// delivered.
		q := New("q", NoLimits())
		d := newDeadRecorder(q)
		disarmTimer(q)
		publish(t, q, msg(0, 1))
		m := msg(1, 1)
		m.ExpiresAt = now() + int64(time.Millisecond)
		publish(t, q, m)
		spinUntil(t, m.ExpiresAt)
		checkStats(t, q, Stats{Ready: 2, ReadyBytes: 2})
		e, remaining, ok := q.Get(false)
		if !ok || id(t, e) != 0 || remaining != 1 {
			t.Fatalf("Get = %d %d %v", id(t, e), remaining, ok)
		}
		if _, _, ok := q.Get(false); ok {
			t.Fatal("expired message returned")
		}
		checkDead(t, d.all(), Expired, 1)
	})
}

func TestMaxLengthDropHead(t *testing.T) {
	opts := NoLimits()
	opts.MaxLength = 3
	q := New("q", opts)
	d := newDeadRecorder(q)
	for i := 1; i <= 3; i++ {
		publish(t, q, msg(i, 1))
	}
	if len(d.all()) != 0 {
		t.Fatal("dead hook called before the limit")
	}
	publish(t, q, msg(4, 1))
	checkDead(t, d.all(), MaxLen, 1)
	publish(t, q, msg(5, 1))
	checkDead(t, d.all(), MaxLen, 1, 2)
	checkStats(t, q, Stats{Ready: 3, ReadyBytes: 3})
	if got := getIDs(t, q, 3); !eqInts(got, []int{3, 4, 5}) {
		t.Fatalf("got %v, want [3 4 5]", got)
	}
}

// TestMaxLengthRejectPublishDLX: a full reject-publish-dlx queue refuses
// the new message, as reject-publish does, and dead-letters it (maxlen);
// the messages it holds stay.
func TestMaxLengthRejectPublishDLX(t *testing.T) {
	opts := NoLimits()
	opts.MaxLength, opts.Overflow = 2, RejectPublishDLX
	q := New("q", opts)
	d := newDeadRecorder(q)
	publish(t, q, msg(1, 1))
	publish(t, q, msg(2, 1))
	for i := 3; i <= 4; i++ {
		if _, err := q.Publish(msg(i, 1)); err != ErrRejectPublish {
			t.Fatalf("publish %d to a full queue: %v", i, err)
		}
	}
	checkDead(t, d.all(), MaxLen, 3, 4)
	checkStats(t, q, Stats{Ready: 2, ReadyBytes: 2})
	if c := q.Stats().Counts; c.Published != 2 {
		t.Fatalf("Published = %d after two rejects, want 2", c.Published)
	}
	if got := getIDs(t, q, 2); !eqInts(got, []int{1, 2}) {
		t.Fatalf("got %v, want [1 2]", got)
	}
}

// TestDeliveryLimit: an entry counts its returns; requeued more than
// DeliveryLimit times it is dead instead (reason delivery_limit), and the
// queue goes on with the next.
func TestDeliveryLimit(t *testing.T) {
	opts := NoLimits()
	opts.HasDeliveryLimit, opts.DeliveryLimit = true, 1
	q := New("q", opts)
	d := newDeadRecorder(q)
	publish(t, q, msg(1, 1))
	publish(t, q, msg(2, 1))
	for want := range uint32(2) {
		e, _, ok := q.Get(false)
		if !ok || id(t, e) != 1 || e.Returns != want {
			t.Fatalf("Get = message %d with %d returns (ok %v), want 1 with %d", id(t, e), e.Returns, ok, want)
		}
		q.Requeue([]Entry{e})
	}
	checkDead(t, d.all(), DeliveryLimit, 1)
	checkStats(t, q, Stats{Ready: 1, ReadyBytes: 1})
	if e, _, ok := q.Get(true); !ok || id(t, e) != 2 || e.Returns != 0 {
		t.Fatalf("then %+v", e)
	}
}

// TestMaxLengthDropHeadRequeued: a requeued message is at the head, so it is
// the one dropped.
func TestMaxLengthDropHeadRequeued(t *testing.T) {
	opts := NoLimits()
	opts.MaxLength = 2
	q := New("q", opts)
	d := newDeadRecorder(q)
	publish(t, q, msg(1, 1))
	publish(t, q, msg(2, 1))
	e, _, _ := q.Get(false)
	publish(t, q, msg(3, 1))
	q.Requeue([]Entry{e}) // over the limit until the next publish
	publish(t, q, msg(4, 1))
	checkDead(t, d.all(), MaxLen, 1, 2)
	if got := getIDs(t, q, 2); !eqInts(got, []int{3, 4}) {
		t.Fatalf("got %v, want [3 4]", got)
	}
}

func TestMaxLengthZero(t *testing.T) {
	opts := NoLimits()
	opts.MaxLength = 0
	q := New("q", opts)
	d := newDeadRecorder(q)
	publish(t, q, msg(1, 1))
	checkDead(t, d.all(), MaxLen, 1)
	checkStats(t, q, Stats{})
}

func TestMaxLengthBytesDropHead(t *testing.T) {
	opts := NoLimits()
	opts.MaxLengthBytes = 10
	q := New("q", opts)
	d := newDeadRecorder(q)
	publish(t, q, msg(1, 4))
	publish(t, q, msg(2, 4))
	checkStats(t, q, Stats{Ready: 2, ReadyBytes: 8})
	publish(t, q, msg(3, 4))
	checkDead(t, d.all(), MaxLen, 1)
	checkStats(t, q, Stats{Ready: 2, ReadyBytes: 8})
	publish(t, q, msg(4, 2)) // exactly 10
	checkDead(t, d.all(), MaxLen, 1)
	checkStats(t, q, Stats{Ready: 3, ReadyBytes: 10})
	publish(t, q, msg(5, 9)) // needs 9: drop 2, 3 and 4
	checkDead(t, d.all(), MaxLen, 1, 2, 3, 4)
	checkStats(t, q, Stats{Ready: 1, ReadyBytes: 9})
	if got := getIDs(t, q, 1); !eqInts(got, []int{5}) {
		t.Fatalf("got %v", got)
	}
}

func TestRejectPublish(t *testing.T) {
	opts := NoLimits()
	opts.MaxLength = 2
	opts.Overflow = RejectPublish
	q := New("q", opts)
	d := newDeadRecorder(q)
	publish(t, q, msg(1, 1))
	publish(t, q, msg(2, 1))
	if _, err := q.Publish(msg(3, 1)); !errors.Is(err, ErrRejectPublish) {
		t.Fatalf("Publish to a full queue: %v, want ErrRejectPublish", err)
	}
	checkStats(t, q, Stats{Ready: 2, ReadyBytes: 2})
	if len(d.all()) != 0 {
		t.Fatalf("dead hook called: %+v", d.all())
	}
	// Room again after a Get; unacked messages do not count.
	q.Get(false)
	publish(t, q, msg(4, 1))
	if got := getIDs(t, q, 2); !eqInts(got, []int{2, 4}) {
		t.Fatalf("got %v, want [2 4]", got)
	}
	checkStats(t, q, Stats{Unacked: 3})
}

func TestRejectPublishBytes(t *testing.T) {
	opts := NoLimits()
	opts.MaxLengthBytes = 10
	opts.Overflow = RejectPublish
	q := New("q", opts)
	publish(t, q, msg(1, 6))
	if _, err := q.Publish(msg(2, 5)); !errors.Is(err, ErrRejectPublish) {
		t.Fatalf("Publish over the byte limit: %v, want ErrRejectPublish", err)
	}
	publish(t, q, msg(3, 4))
	checkStats(t, q, Stats{Ready: 2, ReadyBytes: 10})
	if _, err := q.Publish(msg(4, 0)); err != nil {
		t.Fatalf("empty message at the byte limit: %v", err)
	}
}

// TestRejectPublishWithConsumer: a queue kept empty by a consumer accepts
// every publish.
func TestRejectPublishWithConsumer(t *testing.T) {
	opts := NoLimits()
	opts.MaxLength = 1
	opts.Overflow = RejectPublish
	q := New("q", opts)
	c := newConsumer("c", -1)
	if err := q.AddConsumer(c, false, false, 0); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		publish(t, q, msg(i, 1))
	}
	if len(c.entries()) != 5 {
		t.Fatalf("consumer got %d", len(c.entries()))
	}
}

func TestDiscard(t *testing.T) {
	q := New("q", NoLimits())
	d := newDeadRecorder(q)
	for i := 0; i < 3; i++ {
		publish(t, q, msg(i, 2))
	}
	a, _, _ := q.Get(false)
	b, _, _ := q.Get(false)
	checkStats(t, q, Stats{Ready: 1, Unacked: 2, ReadyBytes: 2})
	q.Discard([]Entry{b, a})
	checkDead(t, d.all(), Rejected, 1, 0)
	checkStats(t, q, Stats{Ready: 1, ReadyBytes: 2})
	if d.all()[0].Entry.Msg != b.Msg {
		t.Fatal("dead entry does not carry the message")
	}
	// Discard frees the consumer's credit: a blocked queue delivers again.
	c := newConsumer("c", 0)
	if err := q.AddConsumer(c, false, false, 0); err != nil {
		t.Fatal(err)
	}
	if len(c.entries()) != 0 {
		t.Fatal("consumer without credit got a message")
	}
	c.setCredit(1)
	q.Discard(nil)
	if got := c.ids(t); !eqInts(got, []int{2}) {
		t.Fatalf("after Discard consumer got %v, want [2]", got)
	}
}

// TestDeadHookWithoutLock: the hook may call back into the queue.
func TestDeadHookWithoutLock(t *testing.T) {
	type op struct {
		name string
		opts func(*Options)
		run  func(q *Queue) // runs on another goroutine: no t.Fatal
	}
	ops := []op{
		{"discard", nil, func(q *Queue) {
			q.Publish(msg(0, 1))
			e, _, _ := q.Get(false)
			q.Discard([]Entry{e})
		}},
		{"drop head", func(o *Options) { o.MaxLength = 1 }, func(q *Queue) {
			q.Publish(msg(0, 1))
			q.Publish(msg(1, 1))
		}},
		{"expired on get", nil, func(q *Queue) {
			m := msg(0, 1)
			m.ExpiresAt = 1
			disarmTimer(q)
			q.Publish(m)
			q.Get(false)
		}},
		{"expired by timer", func(o *Options) { o.MessageTTL = time.Millisecond }, func(q *Queue) {
			q.Publish(msg(0, 1))
		}},
	}
	for _, o := range ops {
		t.Run(o.name, func(t *testing.T) {
			opts := NoLimits()
			if o.opts != nil {
				o.opts(&opts)
			}
			q := New("q", opts)
			hooked := make(chan Stats, 10)
			q.SetDeadHook(func(dead []Dead) {
				hooked <- q.Stats() // deadlocks if q.mu is held
				q.Kick()
			})
			done := make(chan struct{})
			go func() {
				defer close(done)
				o.run(q)
			}()
			timeout := time.NewTimer(waitLimit)
			defer timeout.Stop()
			select {
			case <-done:
			case <-timeout.C:
				t.Fatal("operation did not return: dead hook called with the queue locked?")
			}
			select {
			case <-hooked:
			case <-timeout.C:
				t.Fatal("dead hook not called (or deadlocked)")
			}
		})
	}
}

func TestDeadHookUnset(t *testing.T) {
	opts := NoLimits()
	opts.MaxLength = 1
	q := New("q", opts)
	publish(t, q, msg(0, 1))
	publish(t, q, msg(1, 1)) // drops 0 with no hook set
	e, _, _ := q.Get(false)
	q.Discard([]Entry{e})
	checkStats(t, q, Stats{})
}

// TestTimerStopsOnDelete: deleting a queue with an armed TTL timer calls no
// dead hook afterwards.
func TestTimerStopsOnDelete(t *testing.T) {
	opts := NoLimits()
	opts.MessageTTL = time.Millisecond
	q := New("q", opts)
	d := newDeadRecorder(q)
	publish(t, q, msg(0, 1))
	if _, _, err := q.Delete(false, false); err != nil {
		t.Fatal(err)
	}
	// Drive the expiry path directly, as a timer that fired just before
	// Delete stopped it would.
	q.expire()
	if n := len(d.all()); n != 0 {
		t.Fatalf("dead hook called %d times after delete", n)
	}
}

// ackConsumer is a consumer with a prefetch limit whose deliveries are
// settled by its own worker goroutine, as a channel's would be.
type ackConsumer struct {
	mu       sync.Mutex
	prefetch int
	inflight int
	pending  []Entry
	wake     chan struct{}
}

func (c *ackConsumer) Deliver(q *Queue, e Entry) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inflight >= c.prefetch {
		return false
	}
	c.inflight++
	c.pending = append(c.pending, e)
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return true
}

func (c *ackConsumer) take() []Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.pending
	c.pending = nil
	return p
}

func (c *ackConsumer) settled(n int) {
	c.mu.Lock()
	c.inflight -= n
	c.mu.Unlock()
}

// TestConcurrent publishes, consumes, gets, acks, requeues and kicks from
// many goroutines and checks that every message is acked exactly once.
func TestConcurrent(t *testing.T) {
	const (
		publishers = 8
		perPub     = 2000
		consumers  = 4
		total      = publishers * perPub
	)
	q := New("q", NoLimits())
	q.SetDeadHook(func(d []Dead) { t.Errorf("unexpected dead messages: %+v", d) })

	var (
		acked     [total]atomic.Int32
		delivered [total]atomic.Int32
		requeued  [total]atomic.Int32
		nAcked    atomic.Int64
		done      = make(chan struct{})
		closeOnce sync.Once
		wg        sync.WaitGroup
	)
	ack := func(e Entry) {
		n, err := strconv.Atoi(e.Msg.RoutingKey)
		if err != nil {
			panic(err)
		}
		acked[n].Add(1)
		if nAcked.Add(1) == total {
			closeOnce.Do(func() { close(done) })
		}
	}
	record := func(e Entry) int {
		n, err := strconv.Atoi(e.Msg.RoutingKey)
		if err != nil {
			panic(err)
		}
		delivered[n].Add(1)
		if e.Redelivered != (requeued[n].Load() > 0) {
			t.Errorf("message %d: Redelivered %v after %d requeues", n, e.Redelivered, requeued[n].Load())
		}
		return n
	}

	for w := 0; w < consumers; w++ {
		c := &ackConsumer{prefetch: 1 + w*5, wake: make(chan struct{}, 1)}
		if err := q.AddConsumer(c, false, false, 0); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func(seed int64) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(seed))
			for {
				select {
				case <-c.wake:
				case <-done:
					return
				}
				for _, e := range c.take() {
					n := record(e)
					// Settle the consumer first, then the queue, as a
					// channel does.
					c.settled(1)
					switch r := rng.Intn(10); {
					case r == 0 && requeued[n].Load() < 3:
						requeued[n].Add(1)
						q.Requeue([]Entry{e})
					case r == 1:
						ack(e)
						q.Ack(make([]Entry, 1))
						q.Kick()
					default:
						ack(e)
						q.Ack(make([]Entry, 1))
					}
				}
			}
		}(int64(w))
	}

	// A poller using basic.get alongside the consumers.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			e, _, ok := q.Get(false)
			if !ok {
				runtime.Gosched()
				continue
			}
			n := record(e)
			if n%7 == 0 && requeued[n].Load() == 0 {
				requeued[n].Add(1)
				q.Requeue([]Entry{e})
				continue
			}
			ack(e)
			q.Ack(make([]Entry, 1))
		}
	}()

	// Observers: Stats must stay consistent.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			s := q.Stats()
			if s.Ready < 0 || s.Unacked < 0 || s.ReadyBytes != int64(s.Ready) || s.Consumers != consumers {
				t.Errorf("inconsistent Stats %+v", s)
				return
			}
			runtime.Gosched()
		}
	}()

	var pubs sync.WaitGroup
	for p := 0; p < publishers; p++ {
		pubs.Add(1)
		go func(p int) {
			defer pubs.Done()
			for i := 0; i < perPub; i++ {
				if _, err := q.Publish(msg(p*perPub+i, 1)); err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
			}
		}(p)
	}
	pubs.Wait()

	timeout := time.NewTimer(waitLimit)
	defer timeout.Stop()
	select {
	case <-done:
	case <-timeout.C:
		closeOnce.Do(func() { close(done) })
		wg.Wait()
		t.Fatalf("only %d of %d messages acked; Stats %+v", nAcked.Load(), total, q.Stats())
	}
	wg.Wait()

	for i := range total {
		if a := acked[i].Load(); a != 1 {
			t.Errorf("message %d acked %d times", i, a)
		}
		if d, r := delivered[i].Load(), requeued[i].Load(); d != r+1 {
			t.Errorf("message %d delivered %d times with %d requeues", i, d, r)
		}
	}
	checkStats(t, q, Stats{Consumers: consumers})
}

func ExampleQueue() {
	q := New("orders", NoLimits())
	q.SetDeadHook(func(dead []Dead) {
		for _, d := range dead {
			fmt.Println("dead:", string(d.Entry.Msg.Body), d.Reason)
		}
	})
	q.Publish(&Message{Body: []byte("a")})
	q.Publish(&Message{Body: []byte("b")})
	e, remaining, _ := q.Get(false)
	fmt.Println(string(e.Msg.Body), remaining)
	q.Discard([]Entry{e})
	fmt.Printf("%+v\n", q.Stats())
	// Output:
	// a 1
	// dead: a rejected
	// {Ready:1 Unacked:0 Consumers:0 ReadyBytes:1 Counts:{Published:2 Delivered:1 Redelivered:0 Acked:0}}
}

// RabbitMQ delivers a message whose TTL is 0 to a consumer that can take it
// at once, and drops it only when it would have to wait.
func TestZeroTTLDeliveredToWaitingConsumer(t *testing.T) {
	opts := NoLimits()
	opts.MessageTTL = 0
	q := New("q", opts)
	dead := newDeadRecorder(q)
	c := newConsumer("c", 1)
	if err := q.AddConsumer(c, false, false, 0); err != nil {
		t.Fatal(err)
	}
	publish(t, q, msg(1, 1))
	publish(t, q, msg(2, 1)) // c has no credit left: 2 must wait, so it expires
	if got := c.ids(t); !eqInts(got, []int{1}) {
		t.Fatalf("delivered %v, want [1]", got)
	}
	if _, _, ok := q.Get(true); ok {
		t.Fatal("Get found the message that waited with TTL 0")
	}
	if got := dead.all(); len(got) != 1 || got[0].Reason != Expired || id(t, got[0].Entry) != 2 {
		t.Fatalf("dead = %+v, want message 2 expired", got)
	}
}

// With x-max-length 0, a waiting consumer still gets each message; only
// messages that would be queued are dropped.
func TestZeroMaxLengthDeliversToWaitingConsumer(t *testing.T) {
	opts := NoLimits()
	opts.MaxLength = 0
	q := New("q", opts)
	dead := newDeadRecorder(q)
	c := newConsumer("c", 1)
	if err := q.AddConsumer(c, false, false, 0); err != nil {
		t.Fatal(err)
	}
	publish(t, q, msg(1, 1))
	publish(t, q, msg(2, 1))
	if got := c.ids(t); !eqInts(got, []int{1}) {
		t.Fatalf("delivered %v, want [1]", got)
	}
	if got := dead.all(); len(got) != 1 || got[0].Reason != MaxLen || id(t, got[0].Entry) != 2 {
		t.Fatalf("dead = %+v, want message 2 dropped for max length", got)
	}
	checkStats(t, q, Stats{Ready: 0, Unacked: 1, Consumers: 1})
}

// Consumers with a higher x-priority get messages first; lower ones only
// when every higher one refuses. Within one priority it is round robin.
func TestConsumerPriorities(t *testing.T) {
	q := New("q", NoLimits())
	low := newConsumer("low", -1)
	highA := newConsumer("highA", 2)
	highB := newConsumer("highB", 1)
	for _, c := range []struct {
		c *fakeConsumer
		p int
	}{{low, 0}, {highA, 5}, {highB, 5}} {
		if err := q.AddConsumer(c.c, false, false, c.p); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 6; i++ {
		publish(t, q, msg(i, 1))
	}
	if got := highA.ids(t); !eqInts(got, []int{1, 3}) {
		t.Fatalf("highA got %v, want [1 3]", got)
	}
	if got := highB.ids(t); !eqInts(got, []int{2}) {
		t.Fatalf("highB got %v, want [2]", got)
	}
	if got := low.ids(t); !eqInts(got, []int{4, 5, 6}) {
		t.Fatalf("low got %v, want [4 5 6]", got)
	}
	// once the high group leaves, the low one is served alone
	q.RemoveConsumer(highA)
	q.RemoveConsumer(highB)
	publish(t, q, msg(7, 1))
	if got := low.ids(t); !eqInts(got, []int{4, 5, 6, 7}) {
		t.Fatalf("low got %v, want [4 5 6 7]", got)
	}
}

// TestSingleActiveConsumer: x-single-active-consumer offers messages to
// the earliest subscribed consumer only, whatever the others' priorities
// and even while it refuses them; when it leaves, the next subscribed
// takes over, with the messages it left requeued first. No consumer may
// be exclusive.
func TestSingleActiveConsumer(t *testing.T) {
	opts := NoLimits()
	opts.SingleActive = true
	q := New("q", opts)
	if q.ActiveConsumer() != nil {
		t.Fatal("an active consumer before any subscribed")
	}
	first, high, third := newConsumer("first", 2), newConsumer("high", -1), newConsumer("third", -1)
	for _, c := range []struct {
		c *fakeConsumer
		p int
	}{{first, 0}, {high, 10}, {third, 0}} {
		if err := q.AddConsumer(c.c, false, false, c.p); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.AddConsumer(newConsumer("x", -1), false, true, 0); !errors.Is(err, ErrExclusiveUse) {
		t.Fatalf("exclusive consumer on a single active consumer queue: %v", err)
	}
	for i := 1; i <= 5; i++ {
		publish(t, q, msg(i, 1))
	}
	if got := first.ids(t); !eqInts(got, []int{1, 2}) {
		t.Fatalf("first got %v, want [1 2]", got)
	}
	if got := high.entries(); len(got) != 0 || high.offers() != 0 {
		t.Fatalf("high got %v (offered %d) while first was active", ids(t, got), high.offers())
	}
	if q.ActiveConsumer() != first {
		t.Fatal("ActiveConsumer is not the first subscribed")
	}
	checkStats(t, q, Stats{Ready: 3, ReadyBytes: 3, Unacked: 2, Consumers: 3})

	// first leaves: its two go back to the head, and high (next
	// subscribed) gets everything in order.
	q.RemoveConsumer(first)
	if q.ActiveConsumer() != high {
		t.Fatal("ActiveConsumer is not the next subscribed")
	}
	if got := high.ids(t); !eqInts(got, []int{3, 4, 5}) {
		t.Fatalf("high got %v once active, want [3 4 5]", got)
	}
	q.Requeue(first.entries())
	publish(t, q, msg(6, 1))
	if got := high.ids(t); !eqInts(got, []int{3, 4, 5, 1, 2, 6}) {
		t.Fatalf("high got %v, want [3 4 5 1 2 6]", got)
	}
	// Removing a waiting consumer changes nothing for the active one.
	q.RemoveConsumer(third)
	publish(t, q, msg(7, 1))
	if got := high.ids(t); len(got) != 7 || q.ActiveConsumer() != high {
		t.Fatalf("high got %v after a waiting consumer left", got)
	}
	if got := third.entries(); len(got) != 0 {
		t.Fatalf("a waiting consumer got %v", ids(t, got))
	}
}

// TestCounts checks the counters behind the management API's message
// rates: what was published, delivered (and redelivered) and acked.
func TestCounts(t *testing.T) {
	q := New("q", NoLimits())
	for i := range 5 {
		publish(t, q, msg(i, 1))
	}
	var got []Entry
	for range 3 {
		e, _, _ := q.Get(false)
		got = append(got, e)
	}
	q.Ack(got[:1])
	q.Requeue(got[1:]) // 1 and 2 go back, to be delivered again
	fc := newConsumer("c", -1)
	if err := q.AddConsumer(fc, false, false, 0); err != nil {
		t.Fatal(err)
	}
	q.Kick()
	want := Counts{Published: 5, Delivered: 3 + 4, Redelivered: 2, Acked: 1}
	if c := q.Stats().Counts; c != want {
		t.Fatalf("Counts = %+v, want %+v", c, want)
	}
	// A full reject-publish queue does not count what it refused.
	lim := NoLimits()
	lim.MaxLength, lim.Overflow = 1, RejectPublish
	full := New("full", lim)
	publish(t, full, msg(1, 1))
	if _, err := full.Publish(msg(2, 1)); err != ErrRejectPublish {
		t.Fatalf("publish to a full queue: %v", err)
	}
	if c := full.Stats().Counts; c.Published != 1 {
		t.Fatalf("Published = %d after a reject, want 1", c.Published)
	}
}

// TestFlow: a queue whose consumers fall behind is over once its backlog
// passes the window, and its publishers are let go once the backlog is
// down to half the window, or it has no consumers, or it is deleted. A
// queue without consumers is never over.
func TestFlow(t *testing.T) {
	opts := NoLimits()
	opts.Window = 1000
	released := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}

	q := New("q", opts)
	for i := range 20 {
		publish(t, q, msg(i, 100))
	}
	if q.Over() || q.Throttle() != nil {
		t.Fatal("a queue without consumers is over")
	}

	q = New("q", opts)
	c := newConsumer("slow", 0) // takes nothing for now
	if err := q.AddConsumer(c, false, false, 0); err != nil {
		t.Fatal(err)
	}
	for i := range 10 { // 1000 bytes: at the window, not past it
		publish(t, q, msg(i, 100))
	}
	if q.Over() {
		t.Fatal("over at the window")
	}
	publish(t, q, msg(10, 100))
	if !q.Over() {
		t.Fatal("not over past the window")
	}
	wait := q.Throttle()
	if wait == nil || released(wait) {
		t.Fatal("Throttle gave no channel to wait on, or a closed one")
	}
	c.setCredit(5) // 1100 -> 600 bytes: still above half the window
	q.Kick()
	if released(wait) || !q.Over() {
		t.Fatal("let go above half the window")
	}
	c.setCredit(1) // 500 bytes: half the window
	q.Kick()
	if !released(wait) || q.Over() || q.Throttle() != nil {
		t.Fatal("not let go at half the window")
	}

	// Losing the consumers, or the queue, lets publishers go too.
	for i := range 10 {
		publish(t, q, msg(100+i, 100))
	}
	wait = q.Throttle()
	if wait == nil {
		t.Fatal("not over again")
	}
	q.RemoveConsumer(c)
	if !released(wait) || q.Over() {
		t.Fatal("not let go when the last consumer left")
	}
	q.AddConsumer(c, false, false, 0)
	publish(t, q, msg(200, 100))
	if wait = q.Throttle(); wait == nil {
		t.Fatal("not over with a consumer back")
	}
	q.Delete(false, false)
	if !released(wait) {
		t.Fatal("not let go when deleted")
	}
}
