package queue

// readyList holds a queue's ready entries: new entries in a FIFO ring and
// requeued entries in a min-heap by Seq. Every requeued entry was taken
// from the ring before any entry still in it, so its Seq is smaller than the
// ring's head; serving the heap first therefore keeps requeued messages in
// their original position, as RabbitMQ's classic queues do.
type readyList struct {
	ring     []Entry // power-of-two capacity
	head     int
	n        int
	requeued []Entry // min-heap on Seq
}

func (r *readyList) len() int { return r.n + len(r.requeued) }

func (r *readyList) push(e Entry) {
	if r.n == len(r.ring) {
		r.grow()
	}
	r.ring[(r.head+r.n)&(len(r.ring)-1)] = e
	r.n++
}

func (r *readyList) grow() {
	size := len(r.ring) * 2
	if size == 0 {
		size = 16
	}
	ring := make([]Entry, size)
	for i := 0; i < r.n; i++ {
		ring[i] = r.ring[(r.head+i)&(len(r.ring)-1)]
	}
	r.ring, r.head = ring, 0
}

// peek returns the entry that pop would return.
func (r *readyList) peek() (Entry, bool) {
	if len(r.requeued) > 0 {
		return r.requeued[0], true
	}
	if r.n == 0 {
		return Entry{}, false
	}
	return r.ring[r.head], true
}

// headExpiry returns the ExpiresAt of the entry peek would return, 0 if
// there is none.
func (r *readyList) headExpiry() int64 {
	if len(r.requeued) > 0 {
		return r.requeued[0].ExpiresAt
	}
	if r.n == 0 {
		return 0
	}
	return r.ring[r.head].ExpiresAt
}

func (r *readyList) pop() (Entry, bool) {
	if len(r.requeued) > 0 {
		return r.popRequeued(), true
	}
	if r.n == 0 {
		return Entry{}, false
	}
	e := r.ring[r.head]
	r.ring[r.head] = Entry{}
	r.head = (r.head + 1) & (len(r.ring) - 1)
	r.n--
	if r.n == 0 && len(r.ring) > 1024 {
		r.ring, r.head = nil, 0 // give a drained backlog's memory back
	}
	return e, true
}

// requeue puts e back in its Seq position.
func (r *readyList) requeue(e Entry) {
	h := append(r.requeued, e)
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if h[p].Seq <= h[i].Seq {
			break
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
	r.requeued = h
}

func (r *readyList) popRequeued() Entry {
	h := r.requeued
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h[last] = Entry{}
	h = h[:last]
	i := 0
	for {
		l, small := 2*i+1, i
		if l < len(h) && h[l].Seq < h[small].Seq {
			small = l
		}
		if l+1 < len(h) && h[l+1].Seq < h[small].Seq {
			small = l + 1
		}
		if small == i {
			break
		}
		h[i], h[small] = h[small], h[i]
		i = small
	}
	r.requeued = h
	return top
}

// drain removes and returns every ready entry in order.
func (r *readyList) drain() []Entry {
	out := make([]Entry, 0, r.len())
	for {
		e, ok := r.pop()
		if !ok {
			return out
		}
		out = append(out, e)
	}
}

// each calls f for every ready entry, in no particular order.
func (r *readyList) each(f func(Entry)) {
	for _, e := range r.requeued {
		f(e)
	}
	for i := 0; i < r.n; i++ {
		f(r.ring[(r.head+i)&(len(r.ring)-1)])
	}
}
