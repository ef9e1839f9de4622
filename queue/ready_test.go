package queue

import (
	"math/rand"
	"sort"
	"testing"
)

func entry(seq uint64) Entry {
	return Entry{Msg: &Message{}, Seq: seq}
}

func popSeqs(t *testing.T, r *readyList, n int) []uint64 {
	t.Helper()
	out := make([]uint64, 0, n)
	for i := 0; i < n; i++ {
		e, ok := r.pop()
		if !ok {
			t.Fatalf("pop %d of %d: list empty", i, n)
		}
		out = append(out, e.Seq)
	}
	return out
}

func TestReadyListEmpty(t *testing.T) {
	var r readyList
	if r.len() != 0 {
		t.Fatalf("len = %d, want 0", r.len())
	}
	if _, ok := r.peek(); ok {
		t.Fatal("peek on empty list returned ok")
	}
	if _, ok := r.pop(); ok {
		t.Fatal("pop on empty list returned ok")
	}
	if got := r.drain(); len(got) != 0 {
		t.Fatalf("drain on empty list = %d entries", len(got))
	}
}

func TestReadyListFIFO(t *testing.T) {
	var r readyList
	for i := uint64(0); i < 100; i++ {
		r.push(entry(i))
	}
	if r.len() != 100 {
		t.Fatalf("len = %d, want 100", r.len())
	}
	for i := uint64(0); i < 100; i++ {
		p, ok := r.peek()
		if !ok || p.Seq != i {
			t.Fatalf("peek = %d,%v want %d", p.Seq, ok, i)
		}
		e, ok := r.pop()
		if !ok || e.Seq != i {
			t.Fatalf("pop = %d,%v want %d", e.Seq, ok, i)
		}
	}
	if r.len() != 0 {
		t.Fatalf("len = %d after popping all", r.len())
	}
}

// TestReadyListGrowWrapped grows the ring while its contents wrap around the
// end of the backing array.
func TestReadyListGrowWrapped(t *testing.T) {
	var r readyList
	seq := uint64(0)
	for i := 0; i < 16; i++ {
		r.push(entry(seq))
		seq++
	}
	if len(r.ring) != 16 {
		t.Fatalf("ring capacity = %d, want 16", len(r.ring))
	}
	// Move head to the middle, then refill so the contents wrap.
	if got := popSeqs(t, &r, 10); got[0] != 0 || got[9] != 9 {
		t.Fatalf("popped %v", got)
	}
	for i := 0; i < 10; i++ {
		r.push(entry(seq))
		seq++
	}
	if len(r.ring) != 16 || r.head != 10 {
		t.Fatalf("ring cap %d head %d, want 16 and 10 (wrapped)", len(r.ring), r.head)
	}
	// This push needs to grow a wrapped ring.
	for i := 0; i < 5; i++ {
		r.push(entry(seq))
		seq++
	}
	if len(r.ring) != 32 {
		t.Fatalf("ring capacity = %d, want 32", len(r.ring))
	}
	got := popSeqs(t, &r, r.len())
	for i, s := range got {
		if s != uint64(10+i) {
			t.Fatalf("after grow, pop %d = %d, want %d (all: %v)", i, s, 10+i, got)
		}
	}
}

// TestReadyListShrinks checks that draining a large backlog releases the
// ring and that the list keeps working afterwards.
func TestReadyListShrinks(t *testing.T) {
	var r readyList
	for i := uint64(0); i < 5000; i++ {
		r.push(entry(i))
	}
	got := r.drain()
	if len(got) != 5000 {
		t.Fatalf("drain = %d entries", len(got))
	}
	for i, e := range got {
		if e.Seq != uint64(i) {
			t.Fatalf("drain[%d] = %d", i, e.Seq)
		}
	}
	if r.ring != nil {
		t.Fatalf("ring of %d kept after draining a large backlog", len(r.ring))
	}
	r.push(entry(5000))
	if e, ok := r.pop(); !ok || e.Seq != 5000 {
		t.Fatalf("pop after shrink = %d,%v", e.Seq, ok)
	}
}

func TestReadyListPopClearsSlot(t *testing.T) {
	var r readyList
	r.push(entry(0))
	r.push(entry(1))
	r.pop()
	if r.ring[0].Msg != nil {
		t.Fatal("popped ring slot still references its message")
	}
	e, _ := r.pop()
	r.requeue(e)
	r.requeue(entry(0))
	h := r.requeued
	r.popRequeued()
	if h[1].Msg != nil {
		t.Fatal("popped heap slot still references its message")
	}
}

func TestReadyListRequeueBeforeRing(t *testing.T) {
	var r readyList
	for i := uint64(1); i <= 6; i++ {
		r.push(entry(i))
	}
	popSeqs(t, &r, 6)
	r.push(entry(7))
	r.requeue(entry(4))
	r.requeue(entry(2))
	if p, _ := r.peek(); p.Seq != 2 {
		t.Fatalf("peek = %d, want 2", p.Seq)
	}
	got := popSeqs(t, &r, 3)
	if got[0] != 2 || got[1] != 4 || got[2] != 7 {
		t.Fatalf("pops = %v, want [2 4 7]", got)
	}
}

// TestReadyListRandom runs random pushes, pops and requeues against a model
// that keeps the ready entries as a slice sorted by Seq. Requeued entries are
// always ones popped earlier, which is the invariant the queue relies on.
func TestReadyListRandom(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var r readyList
	var model []uint64 // ready Seqs, sorted
	var out []uint64   // popped and not yet requeued
	next := uint64(0)
	maxLen := 0
	big, shrinks := false, 0 // the ring grew past 1024; times it was released

	insert := func(s uint64) {
		i := sort.Search(len(model), func(i int) bool { return model[i] >= s })
		model = append(model, 0)
		copy(model[i+1:], model[i:])
		model[i] = s
	}

	for it := 0; it < 200000; it++ {
		// Phases bias towards growth and then draining, so the ring grows
		// past the shrink threshold and wraps at several sizes.
		phase := 0
		if it%30000 >= 10000 {
			phase = 1
		}
		pushP, popP := 40, 90 // percent: push below pushP, pop below popP, else requeue
		if phase == 1 {
			pushP, popP = 5, 95
		}
		op := rng.Intn(100)
		switch {
		case op < pushP:
			n := 1 + rng.Intn(4)
			for j := 0; j < n; j++ {
				r.push(entry(next))
				model = append(model, next)
				next++
			}
		case op < popP:
			e, ok := r.pop()
			if ok != (len(model) > 0) {
				t.Fatalf("it %d: pop ok=%v with model len %d", it, ok, len(model))
			}
			if !ok {
				continue
			}
			if e.Seq != model[0] {
				t.Fatalf("it %d: pop = %d, want %d", it, e.Seq, model[0])
			}
			model = model[1:]
			out = append(out, e.Seq)
		default:
			if len(out) == 0 {
				continue
			}
			n := 1 + rng.Intn(3)
			for j := 0; j < n && len(out) > 0; j++ {
				k := rng.Intn(len(out))
				s := out[k]
				out[k] = out[len(out)-1]
				out = out[:len(out)-1]
				r.requeue(entry(s))
				insert(s)
			}
		}
		if r.len() != len(model) {
			t.Fatalf("it %d: len = %d, want %d", it, r.len(), len(model))
		}
		if r.len() > maxLen {
			maxLen = r.len()
		}
		if len(r.ring) > 1024 {
			big = true
		} else if big && r.ring == nil {
			big = false
			shrinks++
		}
		p, ok := r.peek()
		if ok != (len(model) > 0) || (ok && p.Seq != model[0]) {
			t.Fatalf("it %d: peek = %d,%v, model head %v", it, p.Seq, ok, model[:min(1, len(model))])
		}
	}
	if maxLen <= 1024 {
		t.Fatalf("random run never grew past 1024 entries (max %d)", maxLen)
	}
	if shrinks == 0 {
		t.Fatal("random run never drained a large ring")
	}
	t.Logf("max len %d, large ring released %d times", maxLen, shrinks)
	got := r.drain()
	if len(got) != len(model) {
		t.Fatalf("drain = %d entries, want %d", len(got), len(model))
	}
	for i, e := range got {
		if e.Seq != model[i] {
			t.Fatalf("drain[%d] = %d, want %d", i, e.Seq, model[i])
		}
	}
}

// TestReadyListHeapRandom exercises the heap alone with arbitrary Seq order.
func TestReadyListHeapRandom(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	var r readyList
	var model []uint64
	for it := 0; it < 50000; it++ {
		if rng.Intn(3) != 0 || len(model) == 0 {
			s := uint64(rng.Intn(1000)) // duplicates allowed
			r.requeue(entry(s))
			i := sort.Search(len(model), func(i int) bool { return model[i] > s })
			model = append(model, 0)
			copy(model[i+1:], model[i:])
			model[i] = s
		} else {
			e, ok := r.pop()
			if !ok || e.Seq != model[0] {
				t.Fatalf("it %d: pop = %d,%v, want %d", it, e.Seq, ok, model[0])
			}
			model = model[1:]
		}
		if r.len() != len(model) {
			t.Fatalf("it %d: len = %d, want %d", it, r.len(), len(model))
		}
	}
}
