package server

import "github.com/warrenmq/warren/internal/wire"

// Publisher confirms. A channel's confirm.Tracker numbers its publishes
// and turns settled ones into basic.ack and basic.nack frames in tag order.
// A publish that needs no disk write (transient, or routed to no durable
// queue) is settled at once by the connection's reader; one written to the
// store waits in ch.awaiting until the commit loop reports the batch holding
// it done, and is settled from the commit loop's goroutine. Both sides take
// ch.confirmMu.

// awaitingConfirm is a publish whose confirm waits for the store: its
// writes are in batches lo..hi.
type awaitingConfirm struct {
	seq, lo, hi uint64
}

// settleConfirm numbers the publish just routed and settles it. lo and hi
// are the lowest and highest store batches holding its writes, 0 if it
// made none; nack says a queue refused it.
func (ch *channel) settleConfirm(lo, hi uint64, nack bool) {
	ch.confirmMu.Lock()
	seq := ch.confirm.Next()
	switch {
	case nack:
		ch.confirm.Nack(seq)
	case lo == 0:
		ch.confirm.Ack(seq)
		ch.c.stats.confirmed.Add(1)
	case hi <= ch.synced:
		// Its batches were reported done (on the batch ch was watching)
		// between its writes and now: no later report will cover it.
		ch.settleLocked(seq, lo, ch.syncedFailed)
	default:
		// Registered on a batch at or after hi, ch hears when every
		// write above is done; once per batch, not per publish.
		if ch.watched < hi {
			ch.watched = ch.c.vh.store.WatchSynced(ch)
		}
		// (A closed store's Watch returns 0; hi then keeps the publish
		// waiting, as its writes were dropped.)
		ch.awaiting = append(ch.awaiting, awaitingConfirm{seq: seq, lo: lo, hi: max(ch.watched, hi)})
	}
	ch.confirmMu.Unlock()
	ch.c.confirmDue(ch)
}

// Committed implements queue.Waiter: publishes whose writes are now on
// disk are acked, those whose writes failed are nacked, and the settled
// confirms go out at once.
func (ch *channel) Committed(batch, lastFailed uint64) {
	ch.confirmMu.Lock()
	ch.synced, ch.syncedFailed = max(ch.synced, batch), lastFailed
	i := 0
	for ; i < len(ch.awaiting) && ch.awaiting[i].hi <= batch; i++ {
		ch.settleLocked(ch.awaiting[i].seq, ch.awaiting[i].lo, lastFailed)
	}
	if i == 0 {
		ch.confirmMu.Unlock()
		return
	}
	n := copy(ch.awaiting, ch.awaiting[i:])
	ch.awaiting = ch.awaiting[:n]
	emit := !ch.confirmsOff
	if emit {
		ch.confirm.Emit(ch.sendConfirm)
	}
	ch.confirmMu.Unlock()
	if emit {
		ch.c.flushCommitted(batch)
	}
}

// settleLocked acks publish seq, whose writes are in batches from lo on,
// or nacks it if the batch lastFailed may have lost one of them.
// ch.confirmMu must be held.
func (ch *channel) settleLocked(seq, lo, lastFailed uint64) {
	if lo <= lastFailed {
		ch.confirm.Nack(seq)
	} else {
		ch.confirm.Ack(seq)
		ch.c.stats.confirmed.Add(1)
	}
}

// emitConfirms sends the confirms settled so far. With none (publishes
// that wait for the store), it does not signal the writer, which may
// then have exited: starting it takes outbox.mu, which the commit loop
// holds while it writes the connection's confirms itself (writeNow).
func (ch *channel) emitConfirms() {
	ch.confirmMu.Lock()
	sent := !ch.confirmsOff && ch.confirm.Emit(ch.sendConfirm)
	ch.confirmMu.Unlock()
	if sent {
		ch.c.out.signal()
	}
}

// stopConfirms ends confirms on a closing channel: nothing more may follow
// its close.
func (ch *channel) stopConfirms() {
	ch.confirmMu.Lock()
	ch.confirmsOff = true
	ch.awaiting = nil
	ch.confirmMu.Unlock()
}

// flushCommitted sends the frames the commit loop queued on c, reporting
// batch done: itself (writeNow) for the first few connections of a batch,
// through c's writer after that.
func (c *conn) flushCommitted(batch uint64) {
	if c.vh.writeNowFor(batch) {
		c.out.writeNow()
	} else {
		c.out.signal()
	}
}

// confirmDue marks ch as having confirms to send at the end of the burst.
func (c *conn) confirmDue(ch *channel) {
	for _, d := range c.confirmsDue {
		if d == ch {
			return
		}
	}
	c.confirmsDue = append(c.confirmsDue, ch)
}

// sendConfirm queues a confirm; its caller wakes the writer.
func (ch *channel) sendConfirm(tag uint64, multiple, nack bool) {
	if nack {
		ch.c.out.queueMethod(ch.id, &wire.BasicNack{DeliveryTag: tag, Multiple: multiple})
		return
	}
	ch.c.out.queueMethod(ch.id, &wire.BasicAck{DeliveryTag: tag, Multiple: multiple})
}
