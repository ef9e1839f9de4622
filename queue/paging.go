package queue

import "errors"

// A queue's ready messages are in lanes: one, or for a priority queue one
// per priority (Options.MaxPriority), served highest first. A lane's ready
// messages, in order, are: the requeued heap and the ring of readyList (in
// memory), then a run of entries on disk only (diskRun), then the spill:
// paged-out entries still held in memory until the store has committed
// them. Once a lane is paged, every new message of it joins its spill, so
// the order holds; the ring is refilled from disk, then from the spill, as
// it drains, and the lane leaves paged mode when both are empty. Memory is
// counted for the whole queue: its window and budget bound all its lanes
// together.

// lane is the ready messages of one priority (see above). Its entries'
// seqs carry the priority in their top byte (laneShift) above the queue's
// counter, so each lane's entries are one contiguous range of the store's
// keys, and a queue with one lane has the seqs it always had.
type lane struct {
	ready readyList
	disk  diskRun
	spill spillList
}

func (l *lane) len() int { return l.ready.len() + l.disk.n + l.spill.len() }

// paged reports whether some of the lane's ready messages are on disk or in
// the spill: a new message must then join the spill, behind them.
func (l *lane) paged() bool { return l.disk.n > 0 || l.spill.len() > 0 }

// laneShift is where a seq's lane starts; the queue's counter is below it.
const laneShift = 56

const seqCounter = 1<<laneShift - 1

// laneOf returns the lane of the entry with seq.
func (q *Queue) laneOf(seq uint64) *lane {
	if len(q.lanes) == 1 {
		return &q.lanes[0]
	}
	return &q.lanes[min(seq>>laneShift, uint64(len(q.lanes)-1))]
}

// entryOverhead is what the queue counts against its window for one entry
// besides the message bytes (the Entry, the Message and its slices).
const entryOverhead = 128

// EntryCost is what one ready message counts against a queue's memory
// window: its bytes and the queue's overhead for holding it.
func EntryCost(m *Message) int64 {
	return int64(len(m.Body)+len(m.Props)+len(m.Exchange)+len(m.RoutingKey)) + entryOverhead
}

// diskRun is the ready entries of a queue held only on disk: those of the
// store with after < seq <= hi.
type diskRun struct {
	n     int
	bytes int64 // body bytes
	after uint64
	hi    uint64
}

// spilled is one paged-out entry and the store batch holding its write.
type spilled struct {
	e     Entry
	batch uint64
}

// spillList is a FIFO of spilled entries.
type spillList struct {
	items []spilled
	head  int
}

func (s *spillList) len() int { return len(s.items) - s.head }

func (s *spillList) push(x spilled) { s.items = append(s.items, x) }

func (s *spillList) peek() *spilled { return &s.items[s.head] }

func (s *spillList) pop() Entry {
	e := s.items[s.head].e
	s.items[s.head] = spilled{}
	s.head++
	if s.head == len(s.items) {
		s.items, s.head = s.items[:0], 0
	} else if s.head >= 1024 && s.head*2 >= len(s.items) {
		n := copy(s.items, s.items[s.head:])
		clear(s.items[n:])
		s.items, s.head = s.items[:n], 0
	}
	return e
}

// Recover tells a new queue that its store already holds n persistent
// entries, of bytes body bytes, with seqs from lo to hi, all of one lane
// (a priority queue's store splits its entries by lane). They are read
// back as the queue drains. Call it, once per lane, before using q.
func (q *Queue) Recover(n int, bytes int64, lo, hi uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if n <= 0 || q.opts.Store == nil {
		return
	}
	if d := &q.laneOf(lo).disk; d.n > 0 {
		// A second run for one lane (only a damaged key can make one):
		// read the two as one range.
		d.n, d.bytes, d.after, d.hi = d.n+n, d.bytes+bytes, min(d.after, lo-1), max(d.hi, hi)
	} else {
		*d = diskRun{n: n, bytes: bytes, after: lo - 1, hi: hi}
	}
	q.usedStore = true
	q.readyBytes += bytes
	if c := hi & seqCounter; c >= q.nextSeq {
		q.nextSeq = c + 1
	}
}

// UsedStore reports whether the queue has ever logged an entry to its store.
func (q *Queue) UsedStore() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.usedStore
}

// readyLenLocked is the number of ready messages, in memory or not.
func (q *Queue) readyLenLocked() int {
	n := 0
	for i := range q.lanes {
		n += q.lanes[i].len()
	}
	return n
}

// inMemoryLocked is the number of ready messages held in memory.
func (q *Queue) inMemoryLocked() int {
	n := 0
	for i := range q.lanes {
		n += q.lanes[i].ready.len()
	}
	return n
}

// enqueueLocked adds a new entry behind every ready one of its lane. persist says the
// message must be written to the store to be safe; batch is the store batch
// holding it if it was already logged (e.Stored). It returns the batch a
// confirm must wait for, 0 for none.
func (q *Queue) enqueueLocked(e Entry, persist bool, batch uint64) uint64 {
	st := q.opts.Store
	cost := EntryCost(e.Msg)
	q.readyBytes += int64(e.Msg.Size())
	l := q.laneOf(e.Seq)
	if st != nil && (l.paged() || q.memBytes+cost > q.opts.Window || cost > q.budgetRoomLocked()) {
		if !e.Stored {
			batch = st.Put(q.opts.ID, e.Seq, e.Msg, e.ExpiresAt, !persist)
			e.Stored, q.usedStore = true, true
		}
		l.spill.push(spilled{e: e, batch: batch})
		q.watchLocked()
	} else {
		if persist && !e.Stored {
			batch = st.Put(q.opts.ID, e.Seq, e.Msg, e.ExpiresAt, false)
			e.Stored, q.usedStore = true, true
		}
		l.ready.push(e)
		q.addMemLocked(cost)
	}
	if !persist {
		return 0
	}
	return batch
}

// watchLocked makes sure q hears when the pending store batch is done.
func (q *Queue) watchLocked() {
	if st := q.opts.Store; q.watching != st.Pending() {
		q.watching = st.Watch(q)
	}
}

// Committed implements Waiter: spilled entries now on disk give their
// memory back and join the disk run.
func (q *Queue) Committed(batch, lastFailed uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.watching <= batch {
		q.watching = 0
	}
	for i := range q.lanes {
		if q.committedLocked(&q.lanes[i], batch, lastFailed) {
			q.watchLocked()
		}
	}
}

// committedLocked moves the spilled entries of l that batch wrote to its
// disk run, and reports whether some are left waiting for a later batch.
func (q *Queue) committedLocked(l *lane, batch, lastFailed uint64) (waiting bool) {
	for l.spill.len() > 0 {
		s := l.spill.peek()
		if s.batch > batch {
			return true // later writes are still pending
		}
		if s.batch <= lastFailed {
			// Its write may have failed: log it again and wait for
			// that, holding it (and so every entry behind it, to keep
			// the order) in memory meanwhile.
			q.relogSpillLocked(l, lastFailed)
			return true
		}
		e := l.spill.pop()
		if l.disk.n == 0 {
			l.disk.after = e.Seq - 1
		}
		l.disk.n++
		l.disk.bytes += int64(e.Msg.Size())
		l.disk.hi = e.Seq
	}
	return false
}

// relogSpillLocked logs again the writes of the spilled entries in batches
// up to lastFailed, which may have failed. A write that did land is
// deleted and written again, so a Delete that later cancels the new Put
// still removes the old record.
func (q *Queue) relogSpillLocked(l *lane, lastFailed uint64) {
	st := q.opts.Store
	for i := l.spill.head; i < len(l.spill.items); i++ {
		s := &l.spill.items[i]
		if s.batch > lastFailed {
			break
		}
		st.Delete(q.opts.ID, s.e.Seq)
		s.batch = st.Put(q.opts.ID, s.e.Seq, s.e.Msg, s.e.ExpiresAt, !(q.opts.Durable && s.e.Msg.Persistent))
	}
}

// refillLocked moves entries into l's empty in-memory list: from disk
// first, then from the spill. An entry the store cannot read back as a
// message is dropped, from the store too, and the load goes on past it.
func (q *Queue) refillLocked(l *lane) {
	for l.disk.n > 0 && l.ready.len() == 0 {
		// Half the window, less what other lanes hold in memory.
		limit := max(min(q.opts.Window/2-q.memBytes, q.opts.Budget.room(q.memBytes, q.reserved, BudgetFloor)), 1)
		buf, err := q.opts.Store.Load(q.opts.ID, l.disk.after, l.disk.hi, limit, q.loadBuf[:0])
		var bad *CorruptEntryError
		if err != nil && !errors.As(err, &bad) {
			return // the entries stay on disk; the next pop tries again
		}
		for _, e := range buf {
			l.ready.push(e)
			q.addMemLocked(EntryCost(e.Msg))
			l.disk.n--
			l.disk.bytes -= int64(e.Msg.Size())
			l.disk.after = e.Seq
		}
		clear(buf)
		q.loadBuf = buf[:0]
		skipped := bad != nil && bad.Seq > l.disk.after && bad.Seq <= l.disk.hi
		if skipped {
			// A size the store could not read stays in disk.bytes until
			// the run ends, below.
			q.opts.Store.Delete(q.opts.ID, bad.Seq)
			l.disk.n--
			l.disk.bytes -= bad.Bytes
			q.readyBytes -= bad.Bytes
			l.disk.after = bad.Seq
		}
		if (len(buf) == 0 && !skipped) || l.disk.after >= l.disk.hi || l.disk.n <= 0 {
			// A run the store no longer holds in full (its counts were
			// off) is dropped rather than read forever.
			q.readyBytes -= l.disk.bytes
			l.disk = diskRun{}
		}
	}
	if l.ready.len() > 0 {
		return
	}
	for l.spill.len() > 0 {
		e := l.spill.pop()
		l.ready.push(e)
		q.addMemLocked(EntryCost(e.Msg))
	}
}

// budgetRoomLocked returns how many more bytes of new messages the
// queue's budget lets it keep in memory (see Budget).
func (q *Queue) budgetRoomLocked() int64 {
	var floor int64
	if len(q.consumers) > 0 {
		floor = BudgetFloor
	}
	return q.opts.Budget.room(q.memBytes, q.reserved, floor)
}

// addMemLocked changes what the ready messages in memory count against
// the queue's window, and its budget, by n. The queue keeps reserved at
// memBytes rounded up to a BudgetChunk, growing it at once and shrinking
// it only once it is two chunks more, so that the budget, which every
// queue updates, hears from it once in many messages (see
// settleBudgetLocked for an empty queue).
func (q *Queue) addMemLocked(n int64) {
	q.memBytes += n
	if q.opts.Budget != nil && (q.memBytes > q.reserved || q.reserved-q.memBytes >= 2*BudgetChunk || q.memBytes == 0) {
		q.settleBudgetLocked()
	}
}

// settleBudgetLocked sets what the queue reserves from its budget to
// memBytes rounded up to a BudgetChunk. An empty queue with consumers
// keeps one chunk: messages its consumers keep up with make it empty and
// not empty again with each one, and the budget need not hear of that.
// RemoveConsumer calls it too, to give that chunk back; Delete marks the
// queue deleted before clearing it, which gives it back.
func (q *Queue) settleBudgetLocked() {
	b := q.opts.Budget
	if b == nil {
		return
	}
	want := (q.memBytes + BudgetChunk - 1) / BudgetChunk * BudgetChunk
	if want == 0 && len(q.consumers) > 0 && !q.deleted {
		want = BudgetChunk
	}
	if want != q.reserved {
		b.add(want - q.reserved)
		q.reserved = want
	}
}

// Paged reports whether some of q's ready messages are paged out, on disk
// or waiting to be written there: a message published to q now is
// written to its store too.
func (q *Queue) Paged() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pagedLocked()
}

// pagedLocked reports whether some ready messages are on disk or in a
// spill.
func (q *Queue) pagedLocked() bool {
	for i := range q.lanes {
		if q.lanes[i].paged() {
			return true
		}
	}
	return false
}

// headLocked returns the first ready entry of the highest lane that has
// one, reading it from disk if need be, without removing it.
func (q *Queue) headLocked() (Entry, bool) {
	if len(q.lanes) == 1 {
		l := &q.lanes[0]
		if l.ready.len() == 0 && l.paged() {
			q.refillLocked(l)
		}
		return l.ready.peek()
	}
	for i := len(q.lanes) - 1; i >= 0; i-- {
		l := &q.lanes[i]
		if l.ready.len() == 0 && l.paged() {
			q.refillLocked(l)
		}
		if e, ok := l.ready.peek(); ok {
			q.top = i
			return e, true
		}
	}
	return Entry{}, false
}

// headExpiryLocked returns the expiry of the entry headLocked would
// return, 0 if it has none. A queue of one lane does not read its head
// from disk for it: the head is checked for expiry when it is read to be
// delivered (a lane's ring empties only as it is consumed). A priority
// queue reads in the head of its top lane as headLocked would: a new
// message of a higher priority than the others is routinely paged out
// behind them, and RabbitMQ expires it at the head of the queue.
func (q *Queue) headExpiryLocked() int64 {
	for i := len(q.lanes) - 1; i >= 0; i-- {
		l := &q.lanes[i]
		if l.len() == 0 {
			continue
		}
		if l.ready.len() == 0 && len(q.lanes) > 1 {
			q.refillLocked(l)
		}
		return l.ready.headExpiry()
	}
	return 0
}

// removeHeadLocked removes the entry headLocked returned.
func (q *Queue) removeHeadLocked() Entry {
	e, _ := q.lanes[q.top].ready.pop()
	q.readyBytes -= int64(e.Msg.Size())
	q.addMemLocked(-EntryCost(e.Msg))
	return e
}

// forgetLocked deletes a settled or dropped entry from the store.
func (q *Queue) forgetLocked(e Entry) {
	if e.Stored {
		q.opts.Store.Delete(q.opts.ID, e.Seq)
	}
}

// deliveredLocked logs that a stored entry was handed to a consumer.
func (q *Queue) deliveredLocked(e Entry, noAck bool) {
	q.counts.Delivered++
	if e.Redelivered {
		q.counts.Redelivered++
	}
	if !e.Stored {
		return
	}
	if noAck {
		q.opts.Store.Delete(q.opts.ID, e.Seq)
	} else {
		q.opts.Store.Delivered(q.opts.ID, e.Seq)
	}
}

// clearReadyLocked drops every ready message; with forget it deletes them
// from the store too. It returns how many there were.
func (q *Queue) clearReadyLocked(forget bool) int {
	n := q.readyLenLocked()
	for i := range q.lanes {
		l := &q.lanes[i]
		if forget && q.opts.Store != nil {
			l.ready.each(q.forgetLocked)
			for l.spill.len() > 0 {
				q.forgetLocked(l.spill.pop())
			}
			if l.disk.n > 0 {
				q.opts.Store.DeleteRange(q.opts.ID, l.disk.after+1, l.disk.hi)
			}
		}
		*l = lane{}
	}
	q.readyBytes = 0
	q.addMemLocked(-q.memBytes)
	return n
}
