package queue

import (
	"errors"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warrenmq/warren/internal/wire"
)

// Errors returned by Queue methods. The server maps them to AMQP reply codes.
var (
	ErrDeleted       = errors.New("queue deleted")
	ErrExclusiveUse  = errors.New("queue in exclusive use")
	ErrInUse         = errors.New("queue in use")
	ErrNotEmpty      = errors.New("queue not empty")
	ErrRejectPublish = errors.New("queue full")
)

// Consumer receives deliveries from a queue.
type Consumer interface {
	// Deliver offers e to the consumer. It is called with q's lock held and
	// must not call any method of q. It returns false when the consumer
	// cannot take a message now; the queue then offers nothing more to any
	// consumer that refused until Kick is called.
	Deliver(q *Queue, e Entry) bool
}

// Overflow is what a queue at its length limit does with a new message.
type Overflow uint8

// The overflow behaviours of RabbitMQ's x-overflow argument.
const (
	DropHead Overflow = iota
	RejectPublish
	// RejectPublishDLX rejects as RejectPublish does and dead-letters the
	// rejected message (reason maxlen).
	RejectPublishDLX
)

// Options are a queue's limits, from its declare arguments.
type Options struct {
	// MessageTTL is x-message-ttl; negative means none.
	MessageTTL time.Duration
	// MaxLength is x-max-length in messages; negative means none.
	MaxLength int
	// MaxLengthBytes is x-max-length-bytes in body bytes; negative means none.
	MaxLengthBytes int64
	Overflow       Overflow
	// Expires is x-expires: how long the queue may go unused (no consumers,
	// no basic.get, no queue.declare) before it is deleted; 0 means never.
	Expires time.Duration

	// Store, if set, keeps the queue's entries on disk: the persistent
	// messages of a Durable queue, and every ready message past Window.
	Store Store
	// ID is the queue's id in Store.
	ID uint64
	// Durable queues log persistent messages to Store before they are
	// confirmed.
	Durable bool
	// Window is roughly the most bytes of ready messages the queue keeps in
	// memory; past it new messages are paged out to Store and read back as
	// the queue drains. 0 means DefaultWindow. Without a Store it is
	// unbounded.
	Window int64
	// Budget, if set, bounds the ready messages in memory of every queue
	// sharing it together; past it, messages are paged out as past Window.
	Budget *Budget
	// HasDeliveryLimit and DeliveryLimit are a quorum queue's
	// x-delivery-limit: an entry requeued more than DeliveryLimit times is
	// dead instead (DeliveryLimit reason).
	HasDeliveryLimit bool
	DeliveryLimit    int
	// MaxPriority is x-max-priority: above 0, messages are delivered by
	// their priority property (capped at MaxPriority), highest first, and
	// in publish order within one priority. 0 means no priorities.
	MaxPriority int
	// SingleActive is x-single-active-consumer: only the earliest
	// subscribed consumer still subscribed is offered messages (consumer
	// priorities play no part, as in RabbitMQ 3.10), and no consumer may
	// be exclusive.
	SingleActive bool
}

// DefaultWindow is the memory window of a queue whose Options leave it 0.
const DefaultWindow = 8 << 20

// NoLimits returns Options with every limit off.
func NoLimits() Options { return Options{MessageTTL: -1, MaxLength: -1, MaxLengthBytes: -1} }

type consumerSlot struct {
	c        Consumer
	noAck    bool
	priority int // x-priority: higher is offered first
}

// Queue is one queue's messages and consumers. All methods are safe for
// concurrent use.
type Queue struct {
	name string
	opts Options
	dead func([]Dead) // set once by SetDeadHook before use
	gone func()       // set once by SetExpireHook before use

	mu         sync.Mutex     // guards the fields below
	lanes      []lane         // ready messages, by priority, lowest first; one lane without priorities
	top        int            // the lane of the entry headLocked last returned
	readyBytes int64          // body bytes of every ready message, paged or not
	memBytes   int64          // entryCost of the messages in ready
	reserved   int64          // what opts.Budget counts for the queue: memBytes rounded up to a BudgetChunk or up to two more (one chunk when empty with consumers)
	watching   uint64         // the store batch q waits on as a Waiter; 0 for none
	loadBuf    []Entry        // reused by refillLocked
	usedStore  bool           // an entry was ever logged to the store
	unacked    int            // delivered and not yet acked, rejected or requeued
	consumers  []consumerSlot // by priority, highest first; in subscription order within one
	mixed      bool           // consumers have more than one priority
	next       int            // round-robin position in consumers
	blocked    bool           // every consumer refused the last offer
	nextSeq    uint64
	counts     Counts        // since the queue was made (or recovered)
	flow       chan struct{} // closed when the queue is no longer over; nil until Throttle asks
	over       atomic.Bool   // written under mu; read without it by Over
	deleted    bool
	// exclusiveConsumer is the consumer that holds exclusive access, if any.
	exclusiveConsumer Consumer
	pendingDead       []Dead // collected under mu, handed to dead after unlock
	timer             *time.Timer
	timerAt           int64 // when timer fires, Unix nanoseconds; 0 if not armed
	leaseTimer        *time.Timer
	unusedSince       int64   // start of the x-expires lease, Unix nanoseconds; 0 while in use
	one               [1]lane // lanes without priorities
}

// New returns an empty queue.
func New(name string, opts Options) *Queue {
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	// Seqs start at 1, so "after seq 0" is before every entry.
	q := &Queue{name: name, opts: opts, nextSeq: 1}
	q.lanes = q.one[:]
	if p := opts.MaxPriority; p > 0 {
		q.lanes = make([]lane, min(p, 255)+1)
	}
	return q
}

// Name returns the queue's name.
func (q *Queue) Name() string { return q.name }

// SetDeadHook sets the function that receives messages dying in the queue.
// It is called without the queue's lock held. Call it before using q.
func (q *Queue) SetDeadHook(f func([]Dead)) { q.dead = f }

// SetExpireHook sets the function called, without the queue's lock held,
// when the queue's x-expires lease runs out, and starts the lease. Call it
// before using q.
func (q *Queue) SetExpireHook(f func()) {
	q.gone = f
	q.Touch()
}

// Touch renews the x-expires lease, as a queue.declare does.
func (q *Queue) Touch() {
	q.mu.Lock()
	q.touchLocked()
	q.mu.Unlock()
}

// touchLocked restarts the lease of a queue without consumers.
func (q *Queue) touchLocked() {
	if q.opts.Expires <= 0 || q.deleted || len(q.consumers) > 0 {
		return
	}
	q.unusedSince = now()
	if q.leaseTimer == nil {
		q.leaseTimer = time.AfterFunc(q.opts.Expires, q.leaseEnded)
	} else {
		q.leaseTimer.Reset(q.opts.Expires)
	}
}

// leaseEnded runs on the lease timer. A timer that fires just as it is
// reset finds the lease renewed and does nothing; the reset one fires later.
func (q *Queue) leaseEnded() {
	q.mu.Lock()
	due := !q.deleted && len(q.consumers) == 0 && q.unusedSince != 0 && now()-q.unusedSince >= int64(q.opts.Expires)
	q.mu.Unlock()
	if due && q.gone != nil {
		q.gone()
	}
}

func now() int64 { return time.Now().UnixNano() }

// ExpiryAt is now (Unix nanoseconds) plus ttl, saturating instead of
// overflowing: a huge TTL from a client means "never", not "already".
func ExpiryAt(now int64, ttl time.Duration) int64 {
	if ttl > 0 && now > math.MaxInt64-int64(ttl) {
		return math.MaxInt64
	}
	return now + int64(ttl)
}

// unlockAndEmit releases q.mu and hands collected dead messages to the hook.
func (q *Queue) unlockAndEmit() {
	q.flowCheckLocked()
	dead := q.pendingDead
	q.pendingDead = nil
	q.mu.Unlock()
	if len(dead) > 0 && q.dead != nil {
		q.dead(dead)
	}
}

// Publisher flow control. A queue whose consumers fall behind, so that
// its ready messages pass its window (it would page them out), is "over":
// the server then holds back the connections publishing to it until the
// backlog is down to half the window, the consumers are gone, or the queue
// is deleted. A queue with no consumer is never over: filling it for
// later is what it is for, and it pages to the store.

// flowCheckLocked updates whether the queue is over, and wakes the
// publishers waiting on it when it no longer is.
func (q *Queue) flowCheckLocked() {
	if !q.over.Load() {
		if !q.deleted && len(q.consumers) > 0 && q.readyBytes > q.opts.Window {
			q.over.Store(true)
		}
		return
	}
	if q.deleted || len(q.consumers) == 0 || q.readyBytes <= q.opts.Window/2 {
		q.over.Store(false)
		if q.flow != nil {
			close(q.flow)
			q.flow = nil
		}
	}
}

// Over reports whether the queue's consumers have fallen behind (see
// Throttle). It takes no lock: publishers call it after every publish.
func (q *Queue) Over() bool { return q.over.Load() }

// Throttle returns a channel that is closed once the queue is no longer
// over, or nil if it is not over now.
func (q *Queue) Throttle() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.over.Load() {
		return nil
	}
	if q.flow == nil {
		q.flow = make(chan struct{})
	}
	return q.flow
}

// Publish appends m to the queue and delivers it if a consumer can take it.
// It returns ErrDeleted if the queue was deleted and ErrRejectPublish if the
// queue is full and its overflow is reject-publish or reject-publish-dlx
// (which dead-letters m too). batch is the store
// batch that makes the message safe (a persistent message in a durable
// queue), 0 if it needs none.
func (q *Queue) Publish(m *Message) (batch uint64, err error) {
	q.mu.Lock()
	if q.deleted {
		q.mu.Unlock()
		return 0, ErrDeleted
	}
	e := Entry{Msg: m, Seq: q.nextSeq, ExpiresAt: m.ExpiresAt}
	if len(q.lanes) > 1 {
		e.Seq |= min(uint64(wire.PropsPriority(m.Props)), uint64(len(q.lanes)-1)) << laneShift
	}
	q.nextSeq++
	q.counts.Published++
	if q.opts.MessageTTL >= 0 {
		at := ExpiryAt(now(), q.opts.MessageTTL)
		if e.ExpiresAt == 0 || at < e.ExpiresAt {
			e.ExpiresAt = at
		}
	}
	persist := q.opts.Durable && m.Persistent && q.opts.Store != nil
	// With nothing waiting, a consumer that can take the message gets it
	// at once, before TTL or length limits apply: RabbitMQ delivers a
	// message with a TTL of 0, or to a queue with x-max-length 0, to a
	// waiting consumer.
	if q.readyLenLocked() == 0 && !q.blocked && len(q.consumers) > 0 {
		if persist {
			// Logged first: the delivery's mark and ack follow it.
			batch = q.opts.Store.Put(q.opts.ID, e.Seq, m, e.ExpiresAt, false)
			e.Stored, q.usedStore = true, true
		}
		if q.offerLocked(e) {
			q.unlockAndEmit()
			return batch, nil
		}
		q.blocked = true
	}
	if q.overLimitLocked(1, int64(m.Size())) {
		switch q.opts.Overflow {
		case RejectPublish:
			q.forgetLocked(e)
			q.counts.Published--
			q.mu.Unlock()
			return 0, ErrRejectPublish
		case RejectPublishDLX:
			q.dropLocked(e, MaxLen)
			q.counts.Published--
			q.unlockAndEmit()
			return 0, ErrRejectPublish
		}
	}
	batch = q.enqueueLocked(e, persist, batch)
	q.enforceLimitsLocked()
	q.dispatchLocked()
	q.armTimerLocked()
	q.unlockAndEmit()
	return batch, nil
}

// overLimitLocked reports whether adding n messages of size bytes would pass
// a length limit.
func (q *Queue) overLimitLocked(n int, size int64) bool {
	if q.opts.MaxLength >= 0 && q.readyLenLocked()+n > q.opts.MaxLength {
		return true
	}
	return q.opts.MaxLengthBytes >= 0 && q.readyBytes+size > q.opts.MaxLengthBytes
}

// enforceLimitsLocked drops messages from the head until the queue is within
// its limits, as RabbitMQ's drop-head overflow does.
func (q *Queue) enforceLimitsLocked() {
	for q.readyLenLocked() > 0 && q.overLimitLocked(0, 0) {
		if _, ok := q.headLocked(); !ok {
			return
		}
		q.dropLocked(q.removeHeadLocked(), MaxLen)
	}
}

// dropLocked removes a message from the queue for good and hands it to
// the dead hook.
func (q *Queue) dropLocked(e Entry, why DeadReason) {
	q.forgetLocked(e)
	q.pendingDead = append(q.pendingDead, Dead{Entry: e, Reason: why})
}

// popLocked returns the next live ready entry, dropping expired ones.
func (q *Queue) popLocked() (Entry, bool) {
	var t int64
	for {
		e, ok := q.headLocked()
		if !ok {
			return Entry{}, false
		}
		if e.ExpiresAt != 0 {
			if t == 0 {
				t = now()
			}
			if e.ExpiresAt <= t {
				q.dropLocked(q.removeHeadLocked(), Expired)
				continue
			}
		}
		return e, true
	}
}

// dispatchLocked hands ready messages to consumers round robin until the
// queue is empty or every consumer refuses.
func (q *Queue) dispatchLocked() {
	if q.blocked || len(q.consumers) == 0 {
		return
	}
	for {
		e, ok := q.popLocked()
		if !ok {
			return
		}
		if !q.offerLocked(e) {
			q.blocked = true
			return
		}
		q.removeHeadLocked()
	}
}

// offerLocked offers e to the consumers, round robin from the next in turn,
// and reports whether one took it.
func (q *Queue) offerLocked(e Entry) bool {
	n := len(q.consumers)
	if q.opts.SingleActive {
		n = min(n, 1) // the earliest subscribed
	}
	// Consumers of one priority form a group served round robin; a lower
	// group is offered the message only when every consumer of the higher
	// ones refuses, as RabbitMQ's consumer priorities work.
	for lo := 0; lo < n; {
		hi := n
		if q.mixed {
			hi = lo + 1
			for hi < n && q.consumers[hi].priority == q.consumers[lo].priority {
				hi++
			}
		}
		start := q.next
		if start < lo || start >= hi {
			start = lo
		}
		for i := 0; i < hi-lo; i++ {
			idx := start + i
			if idx >= hi {
				idx -= hi - lo
			}
			slot := q.consumers[idx]
			if slot.c.Deliver(q, e) {
				if !slot.noAck {
					q.unacked++
				}
				q.deliveredLocked(e, slot.noAck)
				q.next = idx + 1
				if q.next >= hi {
					q.next = lo
				}
				return true
			}
		}
		lo = hi
	}
	return false
}

// armTimerLocked makes sure a timer will expire the head message on time.
// A head still on disk is not read for it: it is checked for expiry when
// it is read to be delivered, and the timer is armed then.
func (q *Queue) armTimerLocked() {
	if q.deleted {
		return
	}
	at := q.headExpiryLocked()
	if at == 0 {
		return
	}
	if q.timerAt != 0 && q.timerAt <= at {
		return
	}
	q.timerAt = at
	d := time.Duration(at - now())
	if q.timer == nil {
		q.timer = time.AfterFunc(d, q.expire)
	} else {
		q.timer.Reset(d)
	}
}

// expire runs on the TTL timer: it drops expired messages from the head.
func (q *Queue) expire() {
	q.mu.Lock()
	q.timerAt = 0
	if !q.deleted {
		q.popLocked() // drops expired head entries
		q.armTimerLocked()
	}
	q.unlockAndEmit()
}

// Get takes the next ready message for basic.get. remaining is the number
// of ready messages left. With noAck the message is not counted unacked.
func (q *Queue) Get(noAck bool) (e Entry, remaining int, ok bool) {
	q.mu.Lock()
	q.touchLocked()
	e, ok = q.popLocked()
	if ok {
		q.removeHeadLocked()
		if !noAck {
			q.unacked++
		}
		q.deliveredLocked(e, noAck)
		q.armTimerLocked()
	}
	remaining = q.readyLenLocked()
	q.unlockAndEmit()
	return e, remaining, ok
}

// Ack settles delivered messages. The consumer that had them may take
// more, so a blocked queue delivers again.
func (q *Queue) Ack(entries []Entry) {
	q.mu.Lock()
	q.unacked -= len(entries)
	q.counts.Acked += uint64(len(entries))
	for _, e := range entries {
		q.forgetLocked(e)
	}
	if q.blocked {
		q.blocked = false
		q.dispatchLocked()
		q.armTimerLocked()
	}
	q.unlockAndEmit()
}

// Requeue puts delivered messages back in their original positions, marked
// redelivered, and offers them to consumers again.
func (q *Queue) Requeue(entries []Entry) {
	q.mu.Lock()
	q.unacked -= len(entries)
	if q.deleted {
		q.mu.Unlock()
		return
	}
	for _, e := range entries {
		e.Redelivered = true
		e.Returns++
		if q.opts.HasDeliveryLimit && int64(e.Returns) > int64(q.opts.DeliveryLimit) {
			q.dropLocked(e, DeliveryLimit)
			continue
		}
		q.laneOf(e.Seq).ready.requeue(e)
		q.readyBytes += int64(e.Msg.Size())
		q.addMemLocked(EntryCost(e.Msg))
	}
	q.blocked = false
	q.dispatchLocked()
	q.armTimerLocked()
	q.unlockAndEmit()
}

// Discard settles delivered messages that were rejected without requeue; they
// go to the dead hook.
func (q *Queue) Discard(entries []Entry) {
	q.mu.Lock()
	q.unacked -= len(entries)
	if !q.deleted {
		for _, e := range entries {
			q.dropLocked(e, Rejected)
		}
		q.blocked = false
		q.dispatchLocked()
		q.armTimerLocked()
	}
	q.unlockAndEmit()
}

// AddConsumer subscribes c with a priority (x-priority, default 0). With
// exclusive it fails if the queue has any consumer, or is a single active
// consumer queue; it fails too if the queue already has an exclusive
// consumer.
func (q *Queue) AddConsumer(c Consumer, noAck, exclusive bool, priority int) error {
	q.mu.Lock()
	if q.deleted {
		q.mu.Unlock()
		return ErrDeleted
	}
	if q.exclusiveConsumer != nil || (exclusive && (len(q.consumers) > 0 || q.opts.SingleActive)) {
		q.mu.Unlock()
		return ErrExclusiveUse
	}
	if exclusive {
		q.exclusiveConsumer = c
	}
	// after every consumer of the same or a higher priority; in
	// subscription order alone for a single active consumer
	at := len(q.consumers)
	for at > 0 && q.consumers[at-1].priority < priority && !q.opts.SingleActive {
		at--
	}
	q.consumers = slices.Insert(q.consumers, at, consumerSlot{c: c, noAck: noAck, priority: priority})
	if q.next > at {
		q.next++
	}
	q.mixed = q.consumers[0].priority != q.consumers[len(q.consumers)-1].priority && !q.opts.SingleActive
	q.unusedSince = 0 // in use: the lease timer finds nothing to do
	q.blocked = false
	q.dispatchLocked()
	q.unlockAndEmit()
	return nil
}

// RemoveConsumer unsubscribes c and returns how many consumers are left and
// whether c was subscribed. In a single active consumer queue, removing
// the active consumer makes the next one subscribed active, and it is
// offered the ready messages.
func (q *Queue) RemoveConsumer(c Consumer) (left int, found bool) {
	q.mu.Lock()
	for i, s := range q.consumers {
		if s.c == c {
			q.consumers = slices.Delete(q.consumers, i, i+1) // zeroes the freed slot
			q.mixed = len(q.consumers) > 0 && q.consumers[0].priority != q.consumers[len(q.consumers)-1].priority && !q.opts.SingleActive
			if q.next > i {
				q.next--
			}
			if q.next >= len(q.consumers) {
				q.next = 0
			}
			found = true
			if q.opts.SingleActive && i == 0 {
				q.blocked = false
				q.dispatchLocked()
				q.armTimerLocked()
			}
			break
		}
	}
	if q.exclusiveConsumer == c {
		q.exclusiveConsumer = nil
	}
	if found && len(q.consumers) == 0 {
		q.touchLocked() // unused from now on
		q.settleBudgetLocked()
	}
	left = len(q.consumers)
	q.unlockAndEmit()
	return left, found
}

// SingleActive reports whether q is a single active consumer queue
// (Options.SingleActive).
func (q *Queue) SingleActive() bool { return q.opts.SingleActive }

// ActiveConsumer returns the consumer a single active consumer queue
// offers its messages to, or nil if it has none or is not such a queue.
func (q *Queue) ActiveConsumer() Consumer {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.opts.SingleActive || len(q.consumers) == 0 {
		return nil
	}
	return q.consumers[0].c
}

// Kick tells the queue that a consumer may take messages again.
func (q *Queue) Kick() {
	q.mu.Lock()
	q.blocked = false
	q.dispatchLocked()
	q.armTimerLocked()
	q.unlockAndEmit()
}

// Purge removes every ready message and returns how many there were.
func (q *Queue) Purge() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := q.clearReadyLocked(true)
	q.flowCheckLocked()
	return n
}

// Delete marks the queue deleted, if allowed by ifUnused (no consumers) and
// ifEmpty (no ready messages), and returns the number of ready messages it
// held and the consumers it had, which the caller must cancel.
func (q *Queue) Delete(ifUnused, ifEmpty bool) (messages int, consumers []Consumer, err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.deleted {
		return 0, nil, ErrDeleted
	}
	if ifUnused && len(q.consumers) > 0 {
		return 0, nil, ErrInUse
	}
	if ifEmpty && q.readyLenLocked() > 0 {
		return 0, nil, ErrNotEmpty
	}
	q.deleted = true
	// The store forgets the whole queue (the server logs that), so the
	// entries are not deleted one by one.
	messages = q.clearReadyLocked(false)
	for _, s := range q.consumers {
		consumers = append(consumers, s.c)
	}
	q.consumers = nil
	q.exclusiveConsumer = nil
	if q.timer != nil {
		q.timer.Stop()
	}
	if q.leaseTimer != nil {
		q.leaseTimer.Stop()
	}
	q.flowCheckLocked()
	return messages, consumers, nil
}

// Stats is a snapshot of a queue's counts.
type Stats struct {
	Ready, Unacked, Consumers int
	ReadyBytes                int64
	Counts
}

// Counts are a queue's message counters.
type Counts struct {
	// Published counts the messages the queue took (a full queue's
	// rejects are not counted; its drops are).
	Published uint64
	// Delivered counts deliveries to consumers and basic.get, Redelivered
	// those of them flagged redelivered.
	Delivered, Redelivered uint64
	// Acked counts deliveries settled by an acknowledgement.
	Acked uint64
}

// Stats returns the queue's current counts.
func (q *Queue) Stats() Stats {
	st, _ := q.StatsInMemory()
	return st
}

// StatsInMemory returns Stats and, from the same moment, how many of the
// ready messages are held in memory (never more than Ready).
func (q *Queue) StatsInMemory() (Stats, int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return Stats{Ready: q.readyLenLocked(), Unacked: q.unacked, Consumers: len(q.consumers), ReadyBytes: q.readyBytes, Counts: q.counts}, q.inMemoryLocked()
}

// Memory returns how many ready messages the queue holds in memory and
// what they count against its window; the rest are paged out to the store.
func (q *Queue) Memory() (messages int, bytes int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.inMemoryLocked(), q.memBytes
}

// Deleted reports whether the queue has been deleted.
func (q *Queue) Deleted() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.deleted
}
