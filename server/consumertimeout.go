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
// the time in Server.clock, which deliveries are stamped with (an atomic
// load per delivery instead of reading the clock), and looks at the oldest
// delivery of every open channel. A stamp lags the delivery by up to a
// tick, so a delivery counts as timed out once now - stamp - tick reaches
// the timeout: between one timeout and one timeout and two ticks after it
// was delivered (RabbitMQ looks once a minute).
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
	tick := consumerTick(timeout)
	now := time.Now().UnixNano()
	s.clock.Store(now)
	for _, c := range s.openConns() {
		for _, ch := range c.openChannels() {
			if ch.expireDeliveries(now, tick, timeout) {
				c.timedOut.Store(true)
			}
		}
	}
	return tick
}

// expireDeliveries times ch out if its oldest delivery, stamped with the
// monitor's clock, is older than timeout (see above), and reports whether
// it did.
func (ch *channel) expireDeliveries(now int64, tick, timeout time.Duration) bool {
	ch.mu.Lock()
	at := ch.unacked.oldestStamp()
	if ch.closed || ch.timedOut.Load() || at == 0 || time.Duration(now-at)-tick < timeout {
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
