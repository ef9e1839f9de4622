package server

import (
	"strconv"
	"time"

	"github.com/warrenmq/warren/internal/wire"
	"github.com/warrenmq/warren/queue"
)

// startPublish begins assembling a message: the header and body frames
// follow.
func (ch *channel) startPublish(m *wire.BasicPublish) error {
	if m.Immediate {
		return errorf(wire.NotImplemented, "immediate=true")
	}
	ch.content = contentState{active: true, methodID: basicPublishID, exchange: m.Exchange, routingKey: m.RoutingKey, mandatory: m.Mandatory}
	if ch.c.srv.alarmed() {
		ch.c.blockOnAlarm = true // the reader waits before the message's content
	}
	return nil
}

// basicPublishID is basic.publish's method id.
const basicPublishID = 40

// unexpected is RabbitMQ's exception for a frame out of the content
// sequence, stamped with the method whose content was due.
func (cs *contentState) unexpected() *amqpError {
	ae := errorf(wire.UnexpectedFrame, "expected content header for class 60, got non content header frame instead")
	if cs.haveHeader {
		ae = errorf(wire.UnexpectedFrame, "expected content body, got non content body frame instead")
	}
	ae.classID, ae.methodID = wire.ClassBasic, cs.methodID
	return ae
}

// contentFrame takes a header or body frame of the message being assembled.
func (ch *channel) contentFrame(f wire.Frame) error {
	cs := &ch.content
	if !cs.active {
		return errorf(wire.UnexpectedFrame, "expected method frame, got non method frame instead")
	}
	if f.Type == wire.FrameHeader {
		if cs.haveHeader {
			return cs.unexpected()
		}
		classID, size, props, err := wire.ParseContentHeader(f.Payload)
		if err != nil {
			return err
		}
		if f.Payload[2] != 0 || f.Payload[3] != 0 { // weight
			return cs.unexpected()
		}
		if classID != wire.ClassBasic {
			ae := errorf(wire.UnexpectedFrame, "expected content header for class %d, got one for class %d instead", wire.ClassBasic, classID)
			ae.classID, ae.methodID = wire.ClassBasic, cs.methodID
			return ae
		}
		if size > uint64(ch.c.srv.opts.MaxMessageSize) {
			ae := errorf(wire.PreconditionFailed, "message size %d is larger than configured max size %d", size, ch.c.srv.opts.MaxMessageSize)
			ae.classID, ae.methodID = wire.ClassBasic, basicPublishID
			return ae
		}
		// One allocation holds the properties and the body. A large body
		// gets room as its bytes arrive, so a header claiming 128 MiB on
		// every channel costs nothing until the bytes are sent.
		room := min(size, preallocBody)
		buf := makeBody(len(props), len(props)+int(room))
		copy(buf, props)
		cs.msg = &queue.Message{
			Exchange: cs.exchange, RoutingKey: cs.routingKey,
			Props: buf[:len(props):len(props)], Body: buf[len(props):],
		}
		cs.bodySize, cs.haveHeader = size, true
	} else {
		if !cs.haveHeader {
			return cs.unexpected()
		}
		if cs.overrun || uint64(len(f.Payload)) > cs.bodySize-cs.received {
			// RabbitMQ does not object: the message never completes, and
			// the next method frame is a 505 (channelMethod).
			cs.overrun = true
			return nil
		}
		cs.msg.Body = appendBody(cs.msg.Body, f.Payload, cs.bodySize)
		cs.received += uint64(len(f.Payload))
	}
	if cs.received < cs.bodySize {
		return nil
	}
	msg, mandatory := cs.msg, cs.mandatory
	if cs.methodID != basicPublishID {
		// basic.deliver and the like: RabbitMQ refuses them once whole.
		ae := errorf(wire.CommandInvalid, "unimplemented method")
		ae.classID, ae.methodID = wire.ClassBasic, cs.methodID
		ch.content = contentState{}
		return ae
	}
	ch.content = contentState{}
	finishMessage(msg)
	ch.c.stats.received.Add(1)
	if ch.confirm != nil {
		ch.c.stats.receivedConfirm.Add(1)
	}
	if wire.PropsReplyToIs(msg.Props, replyQueue) {
		if ae := ch.rewriteReplyTo(msg); ae != nil {
			ae.classID, ae.methodID = wire.ClassBasic, basicPublishID
			return ae
		}
	}
	// A direct reply is not held by a transaction: RabbitMQ delivers it
	// at once.
	if ch.tx != nil && !isReplyKey(msg.Exchange, msg.RoutingKey) {
		return ch.txPublish(msg, mandatory)
	}
	err := ch.publish(msg, mandatory)
	if err != nil {
		if ae, ok := err.(*amqpError); ok && ae.classID == 0 {
			ae.classID, ae.methodID = wire.ClassBasic, basicPublishID
		}
	}
	return err
}

// txPublish holds a publish in the channel's transaction. As in RabbitMQ,
// it is routed now (a missing exchange fails it now) and delivered to
// those queues at commit, whatever happens to the bindings meanwhile.
func (ch *channel) txPublish(msg *queue.Message, mandatory bool) error {
	start := len(ch.txDests)
	dests, err := ch.c.vh.route(msg, &ch.scratch, ch.txDests)
	if err != nil {
		if ae, ok := err.(*amqpError); ok {
			ae.classID, ae.methodID = wire.ClassBasic, basicPublishID
		}
		return err
	}
	ch.txDests = dests
	// The publish's own queues, capped so that nothing appended to them
	// can write over the next publish's.
	return ch.txAdd(ch.tx.Publish(msg, mandatory, dests[start:len(dests):len(dests)]))
}

// rollbackTx discards the open transaction's publishes and
// acknowledgements.
func (ch *channel) rollbackTx() {
	ch.tx.Rollback()
	ch.dropTxDests()
}

// maxKeptTxDests is the most routing room a transactional channel keeps
// between transactions.
const maxKeptTxDests = 4096

// dropTxDests empties the routing room of a committed or rolled-back
// transaction, keeping it for the next one unless it grew large.
func (ch *channel) dropTxDests() {
	if cap(ch.txDests) > maxKeptTxDests {
		ch.txDests = nil
		return
	}
	clear(ch.txDests)
	ch.txDests = ch.txDests[:0]
}

// preallocBody is the most body room reserved when a content header
// arrives; past it the body grows with the bytes actually received.
const preallocBody = 1 << 20

// appendBody appends a body frame, growing the buffer at most to the
// declared size (doubling, so a large body is copied O(log n) times). A
// frame read in place (bodyInto) is already there: the body just takes it
// in.
func appendBody(body, frame []byte, declared uint64) []byte {
	n := len(body)
	if len(frame) > 0 && n+len(frame) <= cap(body) && &body[:n+1][n] == &frame[0] {
		return body[:n+len(frame)]
	}
	body = growBody(body, len(frame), declared)
	return append(body, frame...)
}

// growBody makes room for n more body bytes, as appendBody grows.
func growBody(body []byte, n int, declared uint64) []byte {
	if need := len(body) + n; need > cap(body) {
		grown := min(max(2*cap(body), need), int(declared))
		nb := makeBody(len(body), grown)
		copy(nb, body)
		body = nb
	}
	return body
}

// bodyIntoMin is the smallest body frame read straight into its message
// (bodyInto).
const bodyIntoMin = 16 << 10

// bodyInto is the connection's wire.Reader.BodyInto: a body frame of
// size bytes on a channel assembling a message that will take it whole
// is read into the message's body, after the bytes it holds. Anything
// else (a small frame, one contentFrame will refuse or ignore) is read as
// usual.
func (c *conn) bodyInto(channel uint16, size int) []byte {
	if size < bodyIntoMin || c.state != opened || c.closeSent.Load() {
		return nil
	}
	ch := c.channels[channel]
	if ch == nil || ch.closing {
		return nil
	}
	cs := &ch.content
	if !cs.haveHeader || cs.overrun || uint64(size) > cs.bodySize-cs.received {
		return nil
	}
	body := growBody(cs.msg.Body, size, cs.bodySize)
	cs.msg.Body = body
	return body[len(body) : len(body)+size]
}

// finishMessage reads what routing needs from the properties.
func finishMessage(m *queue.Message) {
	m.Persistent = wire.PropsDeliveryMode(m.Props) == 2
	if len(m.Props) >= 2 && m.Props[0]&(wire.FlagExpiration>>8) != 0 {
		var p wire.Properties
		if p.Decode(m.Props) == nil {
			if ms, err := strconv.ParseInt(p.Expiration, 10, 64); err == nil && ms >= 0 {
				m.ExpiresAt = queue.ExpiryAt(time.Now().UnixNano(), millis(ms))
			}
		}
	}
}

// publish routes a complete message and delivers it.
func (ch *channel) publish(m *queue.Message, mandatory bool) error {
	if isReplyKey(m.Exchange, m.RoutingKey) {
		ch.publishReply(m, mandatory)
		return nil
	}
	routed, err := ch.c.vh.route(m, &ch.scratch, ch.routed[:0])
	if err != nil {
		return err
	}
	ch.deliverRouted(m, mandatory, routed)
	clear(routed)
	ch.routed = routed[:0] // route's room, for the next publish
	return nil
}

// deliverRouted hands m to the queues it was routed to, returns it if it
// is mandatory and went nowhere, and settles its confirm.
func (ch *channel) deliverRouted(m *queue.Message, mandatory bool, routed []*queueRec) {
	delivered, rejected := 0, false
	var lo, hi uint64 // the lowest and highest store batches holding a write of m
	for _, r := range routed {
		batch, err := r.q.Publish(m)
		if r.q.Over() && ch.c.flowWait == nil {
			ch.c.throttle(r)
		}
		// m was written to a store that is behind: this holds a
		// connection that consumes from r too, as its acks do not help
		// the store catch up.
		if st := ch.c.srv.store; ch.c.flowWait == nil && st.Over() && (batch != 0 || r.q.Paged()) {
			ch.c.flowWait = st.Throttle()
		}
		switch err {
		case nil:
			delivered++
			if batch != 0 {
				hi = max(hi, batch)
				// A queue whose own record may not be on disk yet holds
				// the message only if that write lands too.
				if d := r.declBatch.Load(); d != 0 && d < batch {
					batch = d
				}
				if lo == 0 || batch < lo {
					lo = batch
				}
			}
		case queue.ErrRejectPublish:
			rejected = true
		}
	}
	switch {
	case delivered > 0 || rejected: // a full queue was reached: routed, as RabbitMQ counts
		ch.c.stats.routed.Add(1)
	case mandatory:
		ch.c.stats.unroutableReturned.Add(1)
	default:
		ch.c.stats.unroutableDropped.Add(1)
	}
	// Only an unroutable message is returned: one a full queue rejected was
	// routed, and is nacked instead, as in RabbitMQ.
	if delivered == 0 && !rejected && mandatory {
		ch.c.out.sendContent(ch.id, &wire.BasicReturn{
			ReplyCode: wire.NoRoute, ReplyText: "NO_ROUTE", Exchange: m.Exchange, RoutingKey: m.RoutingKey,
		}, m)
	}
	if ch.confirm != nil {
		ch.settleConfirm(lo, hi, rejected)
	}
}
