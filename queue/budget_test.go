package queue

import (
	"fmt"
	"testing"
)

// budgetQueue returns a queue of its own fake store, with an 8 MiB window
// and budget b.
func budgetQueue(name string, b *Budget) (*Queue, *fakeStore) {
	fs := newFakeStore()
	opts := storeOptions(fs, false, 8<<20)
	opts.Budget = b
	return New(name, opts), fs
}

// checkBudget fails unless b counts exactly what qs have reserved, and each
// has reserved what it holds, rounded up to a BudgetChunk or up to two,
// and when empty nothing, or one chunk if it has consumers.
func checkBudget(t *testing.T, b *Budget, qs ...*Queue) {
	t.Helper()
	var sum int64
	for _, q := range qs {
		q.mu.Lock()
		sum += q.reserved
		empty := int64(0)
		if len(q.consumers) > 0 && !q.deleted {
			empty = BudgetChunk
		}
		if q.reserved < q.memBytes || q.reserved-q.memBytes >= 2*BudgetChunk || q.memBytes == 0 && q.reserved != empty {
			t.Errorf("%s holds %d bytes and has reserved %d", q.name, q.memBytes, q.reserved)
		}
		q.mu.Unlock()
	}
	if b.Used() != sum {
		t.Fatalf("budget counts %d bytes, the queues have reserved %d", b.Used(), sum)
	}
}

// TestBudget: two queues sharing a 1 MiB budget, each with a window of 8
// MiB, page out what would take them past the budget together; a third,
// whose consumer keeps up, is not paged although the budget is full; the
// first drains in order within the budget; and deleting, acking and
// requeueing count back.
func TestBudget(t *testing.T) {
	const size = 1000
	cost := EntryCost(msg(1000, size))
	b := NewBudget(1 << 20)
	q1, fs1 := budgetQueue("q1", b)
	q2, fs2 := budgetQueue("q2", b)

	for i := range 2000 {
		if _, err := q1.Publish(msg(i, size)); err != nil {
			t.Fatal(err)
		}
	}
	if _, m1 := q1.Memory(); m1 > b.Limit() || m1 <= b.Limit()-cost {
		t.Fatalf("q1 holds %d bytes in memory, want the budget's %d", m1, b.Limit())
	}
	for i := range 1000 {
		if _, err := q2.Publish(msg(i, size)); err != nil {
			t.Fatal(err)
		}
	}
	if _, m2 := q2.Memory(); m2 != 0 {
		t.Fatalf("q2, without consumers, holds %d bytes in memory with the budget used up", m2)
	}
	checkBudget(t, b, q1, q2)

	// A queue with a consumer keeps up to BudgetFloor in memory although
	// the budget is full: the 90 messages its consumer has no credit for
	// yet are not written to the store, and are delivered once it has.
	q3, fs3 := budgetQueue("q3", b)
	c3 := newConsumer("c3", 10)
	if err := q3.AddConsumer(c3, true, false, 0); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if _, err := q3.Publish(msg(i, size)); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := q3.Memory(); n != 90 {
		t.Fatalf("q3 holds %d messages in memory, want the 90 its consumer had no credit for", n)
	}
	if ops := fs3.pendingOps(); len(ops) != 0 {
		t.Fatalf("q3 wrote %d store ops for messages within its floor", len(ops))
	}
	checkBudget(t, b, q1, q2, q3)
	c3.setCredit(-1)
	q3.Kick()
	checkInOrder(t, c3.entries(), intRange(0, 99))
	fs1.commit()
	fs2.commit()

	c := newMemConsumer()
	if err := q1.AddConsumer(c, false, false, 0); err != nil {
		t.Fatal(err)
	}
	checkInOrder(t, c.entries(), intRange(0, 1999))
	if peak := c.peak(); peak > b.Limit()+cost { // a load may pass its bound by an entry
		t.Fatalf("q1 held %d bytes while draining, budget %d", peak, b.Limit())
	}
	if fs1.loadCalls() == 0 {
		t.Fatal("q1 drained without reading the store")
	}
	checkBudget(t, b, q1, q2, q3)
	q1.Ack(c.entries())

	// q2's messages, delivered and requeued, count again; deleted, not.
	c2 := newMemConsumer()
	if err := q2.AddConsumer(c2, false, false, 0); err != nil {
		t.Fatal(err)
	}
	es := c2.entries()
	if len(es) != 1000 {
		t.Fatalf("q2 delivered %d messages, want 1000", len(es))
	}
	checkBudget(t, b, q1, q2, q3)
	// Every message delivered: the three queues, empty, keep a chunk each
	// for their consumers until those go.
	if b.Used() != 3*BudgetChunk {
		t.Fatalf("budget counts %d bytes with every message delivered, want %d", b.Used(), 3*BudgetChunk)
	}
	q1.RemoveConsumer(c)
	q2.RemoveConsumer(c2)
	q3.RemoveConsumer(c3)
	if b.Used() != 0 {
		t.Fatalf("budget counts %d bytes with no messages and no consumers", b.Used())
	}
	q2.Requeue(es)
	var want int64
	for _, e := range es {
		want += EntryCost(e.Msg)
	}
	if _, m2 := q2.Memory(); m2 != want {
		t.Fatalf("requeued messages hold %d bytes in memory, want %d", m2, want)
	}
	checkBudget(t, b, q1, q2, q3)
	if _, _, err := q2.Delete(false, false); err != nil {
		t.Fatal(err)
	}
	checkBudget(t, b, q1, q3)
	if b.Used() != 0 {
		t.Fatalf("budget counts %d bytes after the queue holding them was deleted", b.Used())
	}
}

// TestBudgetSettlesAtZero: a queue that empties keeps one chunk of its
// budget while it has consumers, whatever its reservation was, and gives
// it back when deleted.
func TestBudgetSettlesAtZero(t *testing.T) {
	b := NewBudget(1 << 30)
	q, _ := budgetQueue("q", b)
	// More than BudgetChunk of large messages, then small ones: the queue
	// would tell its budget of the drain's last BudgetChunk before the
	// small ones are gone, and then not of them.
	for i := range 90 {
		size := 1000
		if i >= 70 {
			size = 10
		}
		if _, err := q.Publish(msg(i, size)); err != nil {
			t.Fatal(err)
		}
	}
	if b.Used() == 0 {
		t.Fatalf("budget counts nothing of %d bytes held", q.memBytes)
	}
	checkBudget(t, b, q)
	c := newConsumer("c", -1)
	if err := q.AddConsumer(c, true, false, 0); err != nil {
		t.Fatal(err)
	}
	if got := len(c.entries()); got != 90 {
		t.Fatalf("delivered %d, want 90", got)
	}
	// Empty, with a consumer: one chunk.
	if b.Used() != BudgetChunk {
		t.Fatalf("budget counts %d bytes of an empty queue with a consumer, want %d", b.Used(), BudgetChunk)
	}
	checkBudget(t, b, q)
	if _, _, err := q.Delete(false, false); err != nil {
		t.Fatal(err)
	}
	if b.Used() != 0 {
		t.Fatalf("budget counts %d bytes after the queue was deleted", b.Used())
	}
}

// TestBudgetManySmallQueues: queues each holding less than a BudgetChunk
// still count against their budget, so many of them cannot pass it.
func TestBudgetManySmallQueues(t *testing.T) {
	b := NewBudget(1 << 20)
	var qs []*Queue
	var held int64
	for i := range 200 {
		q, _ := budgetQueue(fmt.Sprint("q", i), b)
		qs = append(qs, q)
		for j := range 10 {
			if _, err := q.Publish(msg(j, 900)); err != nil {
				t.Fatal(err)
			}
		}
		_, m := q.Memory()
		held += m
	}
	if held > b.Limit() {
		t.Fatalf("200 queues of 10 messages hold %d bytes in memory, budget %d", held, b.Limit())
	}
	checkBudget(t, b, qs...)
}

// TestBudgetSpill: messages a queue paged out before the store committed
// them, taken back into memory from the spill, count against the budget.
func TestBudgetSpill(t *testing.T) {
	b := NewBudget(1 << 30)
	fs := newFakeStore()
	opts := storeOptions(fs, false, windowOf(10, 1000))
	opts.Budget = b
	q := New("q", opts)
	for i := range 100 {
		if _, err := q.Publish(msg(i, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	if s, _ := pagedState(q); s != 90 {
		t.Fatalf("%d spilled, want 90", s)
	}
	c := newConsumer("c", 50)
	if err := q.AddConsumer(c, true, false, 0); err != nil {
		t.Fatal(err)
	}
	checkInOrder(t, c.entries(), intRange(0, 49))
	if n, _ := q.Memory(); n != 50 {
		t.Fatalf("%d in memory after the spill was taken back, want 50", n)
	}
	checkBudget(t, b, q)
}
