package server

import (
	"sync"
	"sync/atomic"

	"github.com/warrenmq/warren/confirm"
	"github.com/warrenmq/warren/internal/wire"
	"github.com/warrenmq/warren/queue"
	"github.com/warrenmq/warren/txn"
)

// channel is one AMQP channel. Fields above mu belong to the connection's
// reader goroutine; queues deliver from other goroutines through the fields
// under mu.
type channel struct {
	id uint16
	c  *conn

	closing   bool         // channel.close sent; waiting for close-ok
	content   contentState // the publish being assembled
	confirm   *confirm.Tracker
	tx        *txn.Buffer[[]*queueRec]
	lastQueue string // the last queue declared, for empty queue names
	scratch   routeScratch
	routed    []*queueRec
	settled   []unackedRecord
	entryBuf  []queue.Entry   // scratch for settling
	txTags    map[uint64]bool // delivery tags settled in the open transaction
	txDests   []*queueRec     // the open transaction's publishes' queues, each op's Dest a part of it
	reply     *replyConsumer  // the direct reply-to consumer, if any
	txWait    txCommitWaiter  // the last tx.commit's wait for the store
	txPending bool            // txWait has not finished: the channel's next frame waits
	mode      atomic.Uint32   // modeConfirm or modeTx once selected; read by the management API
	timedOut  atomic.Bool     // set by the consumer-timeout monitor (consumertimeout.go)

	confirmMu sync.Mutex        // guards the contents of confirm and the fields below
	awaiting  []awaitingConfirm // publishes whose confirm waits for the store, in tag order
	watched   uint64            // the store batch ch is registered on as a Waiter
	// synced and syncedFailed are the last Committed call's arguments:
	// batches up to synced are done.
	synced, syncedFailed uint64
	confirmsOff          bool // the channel is closing: no more confirms

	mu             sync.Mutex // guards the fields below
	closed         bool       // no more deliveries
	consumers      map[string]*consumer
	nextTag        uint64
	unacked        unackedList
	prefetch       uint16 // basic.qos global=false: for consumers created after
	globalPrefetch uint16 // basic.qos global=true: shared by the channel
}

// contentState assembles basic.publish + header + body frames.
type contentState struct {
	active     bool // a publish method arrived; header or body frames are due
	haveHeader bool
	methodID   uint16 // basic.publish (40), or a method refused once its content is in
	overrun    bool   // a body frame went past bodySize: the message never completes
	exchange   string
	routingKey string
	mandatory  bool
	bodySize   uint64
	received   uint64
	msg        *queue.Message
}

// consumer is one basic.consume subscription.
type consumer struct {
	ch        *channel
	tag       string
	rec       *queueRec
	noAck     bool
	exclusive bool
	priority  int    // x-priority consume argument
	prefetch  uint16 // 0: unlimited
	unacked   int    // guarded by ch.mu
	active    bool   // guarded by ch.mu; from consume-ok until cancelled
}

// Channel modes, in channel.mode.
const (
	modeConfirm = 1
	modeTx      = 2
)

func newChannel(c *conn, id uint16) *channel {
	return &channel{id: id, c: c, consumers: map[string]*consumer{}}
}

// Deliver implements queue.Consumer: it is called with the queue's lock held.
func (cs *consumer) Deliver(q *queue.Queue, e queue.Entry) bool {
	ch := cs.ch
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.closed || !cs.active || ch.timedOut.Load() {
		return false
	}
	if !cs.noAck {
		if cs.prefetch > 0 && cs.unacked >= int(cs.prefetch) {
			return false
		}
		if ch.globalPrefetch > 0 && ch.unacked.live >= int(ch.globalPrefetch) {
			return false
		}
	}
	tag := ch.nextTag + 1
	out := e
	if cs.rec.quorum && !cs.noAck { // RabbitMQ 3.10 leaves it out for no-ack consumers
		out.Msg = withDeliveryCount(e.Msg, e.Returns)
	}
	if !ch.c.out.appendDelivery(ch.id, q, cs.tag, tag, out) {
		return false
	}
	ch.nextTag = tag
	st := &ch.c.stats
	if !cs.noAck {
		ch.unacked.push(unackedRecord{tag: tag, rec: cs.rec, entry: e, cs: cs, at: ch.c.srv.clock.Load()})
		cs.unacked++
		st.deliveredConsumeManual.Add(1)
	} else {
		st.deliveredConsumeAuto.Add(1)
	}
	if e.Redelivered {
		st.redelivered.Add(1)
	}
	return true
}

// deliverGet records a basic.get delivery and returns its tag.
func (ch *channel) deliverGet(r *queueRec, e queue.Entry, noAck bool) uint64 {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.nextTag++
	if !noAck {
		ch.unacked.push(unackedRecord{tag: ch.nextTag, rec: r, entry: e, at: ch.c.srv.clock.Load()})
	}
	return ch.nextTag
}

// settle applies basic.ack (kind Ack), basic.nack or basic.reject. Unless
// checked (a transaction's acknowledgements were checked when they
// arrived), tag must be outstanding.
func (ch *channel) settle(kind txn.SettleKind, tag uint64, multiple, requeue, checked bool) error {
	ch.mu.Lock()
	if !checked && ch.timedOut.Load() {
		// Its deliveries were requeued. A committing transaction's
		// settles (checked) go on: the monitor leaves its deliveries.
		ch.mu.Unlock()
		return ch.timeoutError()
	}
	// With multiple too the tag itself must be outstanding, as RabbitMQ
	// wants; then the ack fails whole and settles nothing.
	if !checked && !(multiple && tag == 0) && ch.unacked.find(tag) < 0 {
		ch.mu.Unlock()
		return errorf(wire.PreconditionFailed, "unknown delivery tag %d", tag)
	}
	var kick []*queueRec
	if multiple && tag == 0 {
		// All outstanding now, not those delivered between chunks.
		tag = ch.unacked.lastTag()
	}
	// Requeues go in one piece: a chunk requeued and delivered again
	// before the next is back could reach consumers out of queue order.
	limit := settleChunk
	if requeue && kind != txn.Ack {
		limit = 0
	}
	for {
		if kick == nil {
			// Before the settle frees the credit; again at each chunk,
			// as deliveries made since the last one may have filled the
			// channel's global prefetch again, refusing queues.
			kick = ch.creditKicksLocked()
		}
		recs := ch.unacked.take(tag, multiple, ch.settled[:0], limit)
		for _, r := range recs {
			if r.cs != nil {
				r.cs.unacked--
			}
		}
		ch.mu.Unlock()
		n := len(recs)
		if kind == txn.Ack {
			ch.c.stats.acknowledged.Add(uint64(n))
		}
		ch.entryBuf = trim(applySettle(recs, kind, requeue, ch.entryBuf))
		clear(recs)
		ch.settled = trim(recs)
		if limit == 0 || n < limit || tag == 0 {
			break
		}
		if betweenSettleChunks != nil {
			betweenSettleChunks()
		}
		ch.mu.Lock()
	}
	for _, r := range kick {
		r.q.Kick()
	}
	return nil
}

// afterConsumerListed, if set, runs when a new consumer is in its
// channel's list but not yet subscribed to its queue: for tests of what
// may happen there.
var afterConsumerListed func()

// betweenSettleChunks, if set, runs between two chunks of a settle, with
// no lock held. For tests; nil otherwise.
var betweenSettleChunks func()

// entries appends the records' entries to buf.
func entries(recs []unackedRecord, buf []queue.Entry) []queue.Entry {
	for _, r := range recs {
		buf = append(buf, r.entry)
	}
	return buf
}

// recover requeues every unacked delivery (basic.recover requeue=true)
// but those an open transaction has acknowledged: as in RabbitMQ, they are
// settled at commit (or outstanding again after a rollback).
func (ch *channel) recover() {
	ch.mu.Lock()
	kick := ch.creditKicksLocked()
	recs := ch.unacked.allExcept(ch.txTags)
	for _, r := range recs {
		if r.cs != nil {
			r.cs.unacked--
		}
	}
	ch.mu.Unlock()
	requeueAll(recs)
	for _, r := range kick {
		r.q.Kick()
	}
}

// creditKicksLocked returns the queues to kick after deliveries are
// settled: with the channel's global prefetch full, every consumer's queue
// may have been refused and must be told there is room again.
func (ch *channel) creditKicksLocked() []*queueRec {
	if ch.globalPrefetch == 0 || ch.unacked.live < int(ch.globalPrefetch) {
		return nil
	}
	kick := make([]*queueRec, 0, len(ch.consumers))
	for _, cs := range ch.consumers {
		kick = append(kick, cs.rec)
	}
	return kick
}

// requeueAll puts deliveries back in their queues.
func requeueAll(recs []unackedRecord) { applySettle(recs, txn.Reject, true, nil) }

// applySettle hands settled deliveries to their queues: acked, requeued or
// discarded. Consecutive records of one queue go as one run, so each
// queue's lock is taken once a run. buf is scratch space, returned for
// reuse.
func applySettle(recs []unackedRecord, kind txn.SettleKind, requeue bool, buf []queue.Entry) []queue.Entry {
	for i := 0; i < len(recs); {
		j := i + 1
		for j < len(recs) && recs[j].rec == recs[i].rec {
			j++
		}
		q := recs[i].rec.q
		buf = entries(recs[i:j], buf[:0])
		switch {
		case kind == txn.Ack:
			q.Ack(buf)
		case requeue:
			q.Requeue(buf)
		default:
			q.Discard(buf)
		}
		clear(buf)
		i = j
	}
	return buf[:0]
}

// addConsumer implements basic.consume after the checks in dispatch.
func (ch *channel) addConsumer(cs *consumer) error {
	ch.mu.Lock()
	cs.prefetch = ch.prefetch
	ch.consumers[cs.tag] = cs
	ch.mu.Unlock()
	if afterConsumerListed != nil {
		afterConsumerListed()
	}
	if err := cs.rec.q.AddConsumer(cs, cs.noAck, cs.exclusive, cs.priority); err != nil {
		ch.mu.Lock()
		ch.removeConsumerLocked(cs)
		ch.mu.Unlock()
		return err
	}
	ch.mu.Lock()
	gone := ch.consumers[cs.tag] != cs // the consumer-timeout monitor took it meanwhile
	ch.mu.Unlock()
	if gone {
		ch.detach(cs)
		return ch.timeoutError()
	}
	return nil
}

// removeConsumerLocked forgets cs; Deliver refuses it from now on.
func (ch *channel) removeConsumerLocked(cs *consumer) {
	delete(ch.consumers, cs.tag)
	cs.active = false
}

// cancel removes a consumer at the client's request; it reports whether the
// tag was known.
func (ch *channel) cancel(tag string) bool {
	ch.mu.Lock()
	cs, ok := ch.consumers[tag]
	if ok {
		ch.removeConsumerLocked(cs)
	}
	ch.mu.Unlock()
	if ok {
		ch.detach(cs)
	}
	return ok
}

// detach unsubscribes cs from its queue and deletes an auto-delete queue
// that lost its last consumer.
func (ch *channel) detach(cs *consumer) {
	left, found := cs.rec.q.RemoveConsumer(cs)
	if found && left == 0 && cs.rec.autoDelete {
		ch.c.vh.deleteIfUnused(cs.rec)
	}
}

// serverCancel is called when cs's queue was deleted: the consumer is gone
// and, if the client asked for consumer_cancel_notify, it is told.
func (ch *channel) serverCancel(cs *consumer) {
	ch.mu.Lock()
	ok := !ch.closed && ch.consumers[cs.tag] == cs
	if ok {
		ch.removeConsumerLocked(cs)
	}
	ch.mu.Unlock()
	if ok && ch.c.capCancelNotify {
		ch.c.out.sendMethod(ch.id, &wire.BasicCancel{ConsumerTag: cs.tag, NoWait: true})
	}
}

// shutdown ends the channel: no more deliveries, consumers cancelled,
// unacked deliveries requeued, a transaction rolled back.
func (ch *channel) shutdown() {
	ch.stopConfirms()
	ch.cancelReplies()
	ch.mu.Lock()
	if ch.closed {
		ch.mu.Unlock()
		return
	}
	ch.closed = true
	consumers := ch.consumers
	ch.consumers = map[string]*consumer{}
	recs := ch.unacked.all()
	ch.mu.Unlock()
	// Requeued before the consumers leave (they refuse, the channel being
	// closed), so that the consumer of a single active consumer queue that
	// takes over gets them first, in queue order, as with RabbitMQ.
	requeueAll(recs)
	for _, cs := range consumers {
		ch.detach(cs)
	}
	if ch.tx != nil {
		ch.rollbackTx()
	}
	ch.content = contentState{}
}

// txCommitWaiter sends tx.commit-ok once the store batch holding the
// commit's writes is on disk (or closes the connection if it failed). The
// commit loop calls it; the reader does not wait for it, so transactional
// channels on one connection share fsyncs, but the channel's next frame
// waits for it (awaitCommit), so nothing on the channel overtakes the
// commit-ok.
type txCommitWaiter struct {
	ch    *channel
	batch uint64        // set by the reader before the commit loop can call
	done  chan struct{} // gets one value per commit, once commit-ok is out
}

// Committed implements queue.Waiter.
func (w *txCommitWaiter) Committed(batch, lastFailed uint64) {
	c := w.ch.c
	if lastFailed != 0 && lastFailed >= w.batch {
		c.closeAsync(errorf(wire.InternalError, "could not write to the store: batch %d of the transaction failed", w.batch))
	} else if !c.closeSent.Load() {
		c.out.queueMethod(w.ch.id, &wire.TxCommitOk{})
		c.flushCommitted(batch)
	}
	w.done <- struct{}{}
}

// awaitCommit waits until a pending tx.commit-ok on ch has been sent, before
// the reader handles the channel's next frame.
func (ch *channel) awaitCommit() {
	if ch.txPending {
		<-ch.txWait.done
		ch.txPending = false
	}
}
