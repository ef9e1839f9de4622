package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/warrenmq/warren/internal/wire"
)

// RPC on the lean client. A caller publishes a request with reply-to and
// correlation-id and reads deliveries until the reply with its
// correlation-id; a server answers each request with its body, to the
// request's reply-to, and acks it. The server handles requests one at a
// time in its reading goroutine (its handler only copies the body), so
// --rpc-workers does not apply; its replies and acks go out once its read
// buffer is drained.

// directReplyTo is the pseudo-queue of direct reply-to.
const directReplyTo = "amq.rabbitmq.reply-to"

// leanDelivery is one delivery read whole by readDelivery.
type leanDelivery struct {
	tag   uint64
	props wire.Properties
	body  []byte // reused from one delivery to the next
}

// readDelivery reads frames up to the end of the next basic.deliver's
// content and fills d. Other methods are skipped, after checking for a
// close (closed).
func (c *leanConn) readDelivery(d *leanDelivery) error {
	var inDelivery bool
	var remaining uint64
	for {
		f, err := c.rd.ReadFrame()
		if err != nil {
			return err
		}
		switch f.Type {
		case wire.FrameMethod:
			if t, ok := deliveryTag(f.Payload); ok {
				d.tag, inDelivery, d.body = t, true, d.body[:0]
				continue
			}
			inDelivery = false
			m, err := c.dec.DecodeMethod(f.Payload)
			if err == nil {
				err = c.closed(m)
			}
			if err != nil {
				return err
			}
		case wire.FrameHeader:
			if !inDelivery {
				continue
			}
			_, size, raw, err := wire.ParseContentHeader(f.Payload)
			if err != nil {
				return err
			}
			d.props = wire.Properties{}
			if err := d.props.Decode(raw); err != nil {
				return err
			}
			if remaining = size; remaining == 0 {
				return nil
			}
		case wire.FrameBody:
			if !inDelivery {
				continue
			}
			if uint64(len(f.Payload)) > remaining {
				return fmt.Errorf("body frame beyond the declared body size")
			}
			d.body = append(d.body, f.Payload...)
			if remaining -= uint64(len(f.Payload)); remaining == 0 {
				return nil
			}
		}
	}
}

// leanRPCServer is RPC server i on the lean client.
func (r *runner) leanRPCServer(ctx context.Context, i int, ready chan<- error) {
	cfg := r.cfg
	c, err := leanDial(cfg.uri, fmt.Sprintf("%s-rpc-server-%d", r.prefix, i))
	if err != nil {
		ready <- fmt.Errorf("rpc server %d: %w", i, err)
		return
	}
	defer c.nc.Close()
	if err := c.consume(r.queueName(i%cfg.queues), max(cfg.prefetch, cfg.rpcWorkers), false); err != nil {
		ready <- fmt.Errorf("rpc server %d: %w", i, err)
		return
	}
	ready <- nil
	stop := context.AfterFunc(ctx, c.startClose)
	defer stop()

	p := &leanPublisher{c: c}
	var d leanDelivery
	ack := wire.BasicAck{}
	for {
		if len(p.buf) > 0 && c.br.Buffered() == 0 {
			if err := p.flush(); err != nil && err != errLeanClosed {
				r.fail("rpc server %d: %v", i, err)
				return
			}
		}
		if err := c.readDelivery(&d); err != nil {
			if err != errLeanClosed && ctx.Err() == nil && !c.isClosing() {
				r.fail("rpc server %d: %v", i, err)
			}
			return
		}
		r.received.Add(1)
		r.receivedBytes.Add(uint64(len(d.body)))
		var err error
		if d.props.ReplyTo != "" {
			reply := wire.Properties{CorrelationID: d.props.CorrelationID}
			if p.props, err = reply.AppendTo(p.props[:0]); err == nil {
				err = p.publish("", d.props.ReplyTo, false, d.body)
			}
		}
		ack.DeliveryTag = d.tag
		if err == nil {
			p.buf, err = wire.AppendMethodFrame(p.buf, leanChannel, &ack)
		}
		if err != nil && err != errLeanClosed {
			r.fail("rpc server %d: reply: %v", i, err)
			return
		}
	}
}

// leanRPCCaller is RPC caller i on the lean client: one call at a time,
// replies to its own exclusive queue (--reply-to queue) or by direct
// reply-to.
func (r *runner) leanRPCCaller(ctx context.Context, i int) {
	cfg := r.cfg
	c, err := leanDial(cfg.uri, fmt.Sprintf("%s-rpc-client-%d", r.prefix, i))
	if err != nil {
		r.fail("rpc caller %d: %v", i, err)
		return
	}
	defer c.nc.Close()
	replyTo := directReplyTo
	if cfg.replyTo == "queue" {
		replyTo = ""
		err = c.call(&wire.QueueDeclare{Exclusive: true, AutoDelete: true}, func(m wire.Method) bool {
			ok, is := m.(*wire.QueueDeclareOk)
			if is {
				replyTo = ok.Queue
			}
			return is
		})
	}
	if err == nil {
		err = c.consume(replyTo, 0, true)
	}
	if err != nil {
		r.fail("rpc caller %d: %v", i, err)
		return
	}
	stop := context.AfterFunc(ctx, c.startClose)
	defer stop()

	h := r.newHists()
	p := &leanPublisher{c: c}
	body := make([]byte, cfg.size)
	pace := newPacer(cfg.rate)
	var d leanDelivery
	queue := r.queueName(i % cfg.queues)
calls:
	for n := 0; cfg.pmessages == 0 || n < cfg.pmessages; n++ {
		if !pace.wait(ctx) {
			break
		}
		start := time.Now()
		stamp(body, start.UnixNano())
		id := strconv.Itoa(n)
		req := wire.Properties{ReplyTo: replyTo, CorrelationID: id}
		if p.props, err = req.AppendTo(p.props[:0]); err == nil {
			err = p.publish("", queue, false, body)
		}
		if err == nil {
			err = p.flush()
		}
		if err != nil {
			if err != errLeanClosed && ctx.Err() == nil {
				r.fail("rpc caller %d: %v", i, err)
			}
			break
		}
		r.sent.Add(1)
		for {
			if err := c.readDelivery(&d); err != nil {
				if err == errLeanClosed {
					return // the close-ok of ours: the broker is done
				}
				if ctx.Err() == nil && !c.isClosing() {
					r.fail("rpc caller %d: %v", i, err)
				}
				break calls
			}
			if d.props.CorrelationID == id {
				break
			}
		}
		h.rpc.record(time.Since(start))
		r.calls.Add(1)
	}
	// Close and read to the close-ok, so the broker has removed the
	// reply queue when the run ends.
	c.startClose()
	for {
		if _, err := c.readMethod(); err != nil {
			return
		}
	}
}
