package server

import (
	"time"

	"github.com/warrenmq/warren/internal/wire"
)

// Consumer timeout, as RabbitMQ's consumer_timeout: a channel that holds a
// delivery unacknowledged for longer than Options.ConsumerTimeout is
// closed with 406 PRECONDITION_FAILED, and what it held is requeued. It
// covers basic.get deliveries too, as RabbitMQ's does.
//
// A monitor goroutine ticks every consumerTick(timeout). Each tick stores
// the time (monotonic) in Server.clock, which deliveries are stamped with
// (an atomic load per delivery instead of reading the clock), and looks at
// the oldest delivery of every open channel. A delivery stamped with one
// tick was made before the next tick, so it is at least now minus that
// next tick old (the monitor keeps its recent ticks): it times out at the
// first look where that reaches the timeout, never early, and late by
// about two ticks at most (RabbitMQ looks once a minute).
//
// The monitor does what it can without the connection's reader. Under the
// channel's lock it marks the channel timed out (Deliver refuses from then
// on, and acknowledgements get the timeout error) and takes its deliveries
// and consumers; then it requeues the deliveries and detaches the
// consumers, in that order, so that a single active consumer's successor
// gets them first. A transactional channel's deliveries may be claimed by
// its open transaction, so they are left to the channel's close, which
// rolls the transaction back. The channel.close itself is sent by the
// reader, which owns the channel's protocol state: it looks for timed-out
// channels before each frame it reads, so the client hears of it with the
// next frame it sends, a heartbeat at the latest (60 s by default) if it
// has heartbeats on.

// DefaultConsumerTimeout is RabbitMQ's default consumer_timeout.
const DefaultConsumerTimeout = 30 * time.Minute

// consumerTick is how often the consumer-timeout monitor looks: a quarter
// of the timeout, from 10 ms to a minute.
func consumerTick(timeout time.Duration) time.Duration {
	return min(max(timeout/4, 10*time.Millisecond), time.Minute)
}

// checkConsumerTimeouts is the monitor's tick; it returns the wait until
// the next one.
func (s *Server) checkConsumerTimeouts() time.Duration {
	timeout := s.opts.ConsumerTimeout
	now := int64(time.Since(s.started)) + 1 // 0 means not stamped
	s.clock.Store(now)
	if len(s.ticks) == maxTicks {
		s.ticks = append(s.ticks[:0], s.ticks[1:]...)
	}
	s.ticks = append(s.ticks, now)
	for _, c := range s.openConns() {
		for _, ch := range c.openChannels() {
			if ch.expireDeliveries(now, s.madeBefore, timeout) {
				c.timedOut.Store(true)
			}
		}
	}
	return consumerTick(timeout)
}

// maxTicks is how many of its ticks the monitor keeps: a timeout's worth
// at four ticks a timeout, and 32 at a minute a tick (30 minutes).
const maxTicks = 64

// madeBefore returns the tick after at, before which a delivery stamped
// with at was made: the oldest kept if at is older than all of them, the
// newest (now) if there is none after it.
func (s *Server) madeBefore(at int64) int64 {
	for _, t := range s.ticks {
		if t > at {
			return t
		}
	}
	return s.ticks[len(s.ticks)-1]
}

// expireDeliveries times ch out if its oldest delivery is at least timeout
// old at now (see above), and reports whether it did.
func (ch *channel) expireDeliveries(now int64, madeBefore func(at int64) int64, timeout time.Duration) bool {
	ch.mu.Lock()
	at := ch.unacked.oldestStamp()
	if ch.closed || ch.timedOut.Load() || at == 0 || time.Duration(now-madeBefore(at)) < timeout {
		ch.mu.Unlock()
		return false
	}
	ch.timedOut.Store(true)
	var recs []unackedRecord
	var consumers []*consumer
	if ch.mode.Load() != modeTx {
		recs = ch.unacked.all()
		for _, cs := range ch.consumers {
			consumers = append(consumers, cs)
			ch.removeConsumerLocked(cs)
		}
	}
	ch.mu.Unlock()
	requeueAll(recs)
	for _, cs := range consumers {
		ch.detach(cs)
	}
	return true
}

// timeoutError is the channel.close a timed-out channel gets, in
// RabbitMQ's words.
func (ch *channel) timeoutError() *amqpError {
	return errorf(wire.PreconditionFailed, "delivery acknowledgement on channel %d timed out. Timeout value used: %d ms. This timeout value can be configured, see consumers doc guide to learn more",
		ch.id, ch.c.srv.opts.ConsumerTimeout.Milliseconds())
}

// closeTimedOut closes the channels the monitor timed out. The reader
// calls it before each frame it reads.
func (c *conn) closeTimedOut() {
	c.timedOut.Store(false) // before the scan: a channel timed out during it sets it again
	for _, ch := range c.channels {
		if ch.timedOut.Load() && !ch.closing {
			c.closeChannel(ch, ch.timeoutError())
		}
	}
}
