package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/internal/rawsock"
	"github.com/warrenmq/warren/internal/wire"
)

// The lean client: just enough AMQP 0-9-1 for the producers' and
// consumers' hot paths (publish, confirms, transactions, consume, ack),
// on Warren's own frame codec. A general client (amqp091-go) spends a
// goroutine hand-off, a flush and several allocations on each message;
// on a machine the broker shares, that, not the broker, sets the figure.
// The lean client writes a publisher's frames in bursts and a
// consumer's acks once its read buffer is drained, and allocates nothing
// per message. --client amqp091 measures with amqp091-go instead; setup
// and cleanup always use it. RPC on the lean client is in leanrpc.go.

// leanChannel is the one channel a lean connection opens.
const leanChannel = 1

// leanMaxFrame is the largest frame_max the lean client accepts.
const leanMaxFrame = 1 << 20

// errLeanClosed is returned for reads after the broker closed the
// connection or channel in reply to the client's close.
var errLeanClosed = errors.New("connection closed")

// leanConn is a connection with channel 1 open.
type leanConn struct {
	nc       net.Conn
	br       *bufio.Reader
	rd       *wire.Reader
	dec      *wire.Decoder
	frameMax uint32

	wmu sync.Mutex // guards writes to nc and closing
	// closing is set once connection.close is sent: nothing may follow.
	closing bool
}

// leanDial connects to uri, named name, and opens channel 1.
func leanDial(uri, name string) (*leanConn, error) {
	u, err := amqp.ParseURI(uri)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "amqp" {
		return nil, fmt.Errorf("the lean client speaks amqp:// only (use --client amqp091 for %s://)", u.Scheme)
	}
	nc, err := net.DialTimeout("tcp", net.JoinHostPort(u.Host, strconv.Itoa(u.Port)), 10*time.Second)
	if err != nil {
		return nil, err
	}
	nc = rawsock.NewConn(nc)
	c := &leanConn{nc: nc, dec: wire.NewDecoder()}
	c.br = bufio.NewReaderSize(nc, 128<<10)
	c.rd = wire.NewReader(c.br, wire.FrameMinSize)
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	if err := c.handshake(u, name); err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	return c, nil
}

func (c *leanConn) handshake(u amqp.URI, name string) error {
	if _, err := c.nc.Write(wire.ProtocolHeader); err != nil {
		return err
	}
	if _, err := leanExpect[*wire.ConnectionStart](c); err != nil {
		return err
	}
	err := c.send(0, &wire.ConnectionStartOk{
		ClientProperties: wire.Table{"product": "warren-perf", "connection_name": name},
		Mechanism:        "PLAIN",
		Response:         "\x00" + u.Username + "\x00" + u.Password,
		Locale:           "en_US",
	})
	if err != nil {
		return err
	}
	tune, err := leanExpect[*wire.ConnectionTune](c)
	if err != nil {
		return err
	}
	c.frameMax = tune.FrameMax
	if c.frameMax == 0 || c.frameMax > leanMaxFrame {
		c.frameMax = leanMaxFrame
	}
	if err := c.send(0, &wire.ConnectionTuneOk{ChannelMax: 1, FrameMax: c.frameMax}); err != nil {
		return err
	}
	c.rd.SetMaxFrameSize(c.frameMax)
	if err := c.send(0, &wire.ConnectionOpen{VirtualHost: u.Vhost}); err != nil {
		return err
	}
	if _, err := leanExpect[*wire.ConnectionOpenOk](c); err != nil {
		return err
	}
	return c.call(&wire.ChannelOpen{}, func(m wire.Method) bool { _, ok := m.(*wire.ChannelOpenOk); return ok })
}

// send writes one method frame.
func (c *leanConn) send(channel uint16, m wire.Method) error {
	b, err := wire.AppendMethodFrame(nil, channel, m)
	if err != nil {
		return err
	}
	return c.write(b)
}

// write writes frames, unless connection.close was sent.
func (c *leanConn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closing {
		return errLeanClosed
	}
	_, err := c.nc.Write(b)
	return err
}

// call sends m on channel 1 and reads until a method ok accepts; for
// setup, before any reading goroutine starts.
func (c *leanConn) call(m wire.Method, ok func(wire.Method) bool) error {
	if err := c.send(leanChannel, m); err != nil {
		return err
	}
	for {
		reply, err := c.readMethod()
		if err != nil {
			return fmt.Errorf("%s: %w", m.MethodName(), err)
		}
		if ok(reply) {
			return nil
		}
	}
}

// consume sets the prefetch count (unless 0) and starts consuming queue;
// for setup, before any reading goroutine starts.
func (c *leanConn) consume(queue string, prefetch int, noAck bool) error {
	if prefetch > 0 {
		if err := c.call(&wire.BasicQos{PrefetchCount: uint16(prefetch)}, func(m wire.Method) bool { _, ok := m.(*wire.BasicQosOk); return ok }); err != nil {
			return err
		}
	}
	return c.call(&wire.BasicConsume{Queue: queue, NoAck: noAck}, func(m wire.Method) bool { _, ok := m.(*wire.BasicConsumeOk); return ok })
}

// leanExpect reads the next method, which must be a T.
func leanExpect[T wire.Method](c *leanConn) (T, error) {
	var zero T
	m, err := c.readMethod()
	if err != nil {
		return zero, err
	}
	t, ok := m.(T)
	if !ok {
		return zero, fmt.Errorf("expected %T, got %s", zero, m.MethodName())
	}
	return t, nil
}

// readMethod reads frames up to the next method frame and decodes it,
// skipping heartbeats and content. A close from the broker is answered
// and returned as an error.
func (c *leanConn) readMethod() (wire.Method, error) {
	for {
		f, err := c.rd.ReadFrame()
		if err != nil {
			return nil, err
		}
		if f.Type != wire.FrameMethod {
			continue
		}
		m, err := c.dec.DecodeMethod(f.Payload)
		if err != nil {
			return nil, err
		}
		if err := c.closed(m); err != nil {
			return nil, err
		}
		return m, nil
	}
}

// closed answers the broker's connection.close or channel.close and
// returns it as an error; errLeanClosed for the close-ok of ours; nil for
// any other method.
func (c *leanConn) closed(m wire.Method) error {
	switch m := m.(type) {
	case *wire.ConnectionClose:
		c.send(0, &wire.ConnectionCloseOk{})
		return fmt.Errorf("connection closed by the broker: %d %s", m.ReplyCode, m.ReplyText)
	case *wire.ChannelClose:
		c.send(leanChannel, &wire.ChannelCloseOk{})
		return fmt.Errorf("channel closed by the broker: %d %s", m.ReplyCode, m.ReplyText)
	case *wire.ConnectionCloseOk:
		return errLeanClosed
	}
	return nil
}

// startClose sends connection.close; the reading goroutine ends at its
// close-ok. Later writes are dropped.
func (c *leanConn) startClose() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closing {
		return
	}
	if b, err := wire.AppendMethodFrame(nil, 0, &wire.ConnectionClose{ReplyCode: 200, ReplyText: "goodbye"}); err == nil {
		c.nc.Write(b)
	}
	c.closing = true
	// The broker answers at once; a reader still blocked after this
	// long is stopped.
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
}

// leanPublisher is a producer's write side: frames are gathered and
// written in bursts (flush), not one write per message.
type leanPublisher struct {
	c      *leanConn
	buf    []byte
	method wire.BasicPublish
	props  []byte
}

// leanFlushAt is the size at which gathered frames are written.
const leanFlushAt = 64 << 10

func (p *leanPublisher) publish(exchange, key string, mandatory bool, body []byte) error {
	p.method.Exchange, p.method.RoutingKey, p.method.Mandatory = exchange, key, mandatory
	var err error
	if p.buf, err = wire.AppendMethodFrame(p.buf, leanChannel, &p.method); err != nil {
		return err
	}
	p.buf = wire.AppendHeaderFrame(p.buf, leanChannel, wire.ClassBasic, uint64(len(body)), p.props)
	p.buf = wire.AppendBodyFrames(p.buf, leanChannel, body, p.c.frameMax)
	if len(p.buf) >= leanFlushAt {
		return p.flush()
	}
	return nil
}

func (p *leanPublisher) flush() error {
	if len(p.buf) == 0 {
		return nil
	}
	err := p.c.write(p.buf)
	p.buf = p.buf[:0]
	return err
}

// leanConfirms tracks a producer's outstanding confirms: at most
// len(sent) of them, tag t in slot t mod len(sent).
type leanConfirms struct {
	mu    sync.Mutex // guards the fields below
	cond  sync.Cond  // on mu: low moved, or dead
	sent  []int64    // send time of each outstanding tag, unix ns
	acked []bool     // settled, not yet passed by low
	low   uint64     // every tag up to low is settled
	next  uint64     // the last tag sent
	dead  bool       // the reader ended: nothing more will settle
}

func newLeanConfirms(n int) *leanConfirms {
	w := &leanConfirms{sent: make([]int64, n), acked: make([]bool, n)}
	w.cond.L = &w.mu
	return w
}

// take waits for room, flushing (through flush) before it waits, and
// numbers the next publish, sent now; it returns the send time, or false
// if no confirm can come any more.
func (w *leanConfirms) take(flush func() error) (int64, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.next-w.low >= uint64(len(w.sent)) && !w.dead {
		w.mu.Unlock()
		err := flush()
		w.mu.Lock()
		if err != nil {
			return 0, false
		}
	}
	for w.next-w.low >= uint64(len(w.sent)) && !w.dead {
		w.cond.Wait()
	}
	if w.dead {
		return 0, false
	}
	w.next++
	now := time.Now().UnixNano()
	w.sent[w.next%uint64(len(w.sent))] = now
	return now, true
}

// settle records the broker's ack or nack of tag (and, if multiple, of
// every tag below it), calling each with the latency of every tag it
// settles.
func (w *leanConfirms) settle(tag uint64, multiple, ack bool, each func(d time.Duration, ack bool)) {
	now := time.Now().UnixNano()
	w.mu.Lock()
	defer w.mu.Unlock()
	n := uint64(len(w.sent))
	first := tag
	if multiple {
		first = w.low + 1
	}
	for t := max(first, w.low+1); t <= tag && t <= w.next; t++ {
		if !w.acked[t%n] {
			w.acked[t%n] = true
			each(time.Duration(now-w.sent[t%n]), ack)
		}
	}
	moved := false
	for w.low < w.next && w.acked[(w.low+1)%n] {
		w.low++
		w.acked[w.low%n] = false
		moved = true
	}
	if moved {
		w.cond.Broadcast()
	}
}

// outstanding is the number of publishes not yet confirmed.
func (w *leanConfirms) outstanding() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.next - w.low
}

func (w *leanConfirms) end() {
	w.mu.Lock()
	w.dead = true
	w.cond.Broadcast()
	w.mu.Unlock()
}

// leanProducer is producer i on the lean client.
func (r *runner) leanProducer(ctx context.Context, i int) {
	cfg := r.cfg
	c, err := leanDial(cfg.uri, fmt.Sprintf("%s-producer-%d", r.prefix, i))
	if err != nil {
		r.fail("producer %d: %v", i, err)
		return
	}
	defer c.nc.Close()
	h := r.newHists()
	p := &leanPublisher{c: c}
	// One encoding of the properties per priority, taken in turn.
	var propsBy [][]byte
	for prio := range cfg.maxPriority + 1 {
		props := wire.Properties{Priority: uint8(prio)}
		if cfg.persistent() {
			props.DeliveryMode = 2
		}
		b, _ := props.AppendTo(nil)
		propsBy = append(propsBy, b)
	}
	p.props = propsBy[0]

	var confirms *leanConfirms
	if cfg.confirm > 0 {
		if err := c.call(&wire.ConfirmSelect{}, func(m wire.Method) bool { _, ok := m.(*wire.ConfirmSelectOk); return ok }); err != nil {
			r.fail("producer %d: %v", i, err)
			return
		}
		confirms = newLeanConfirms(cfg.confirm)
	}
	if cfg.txSize > 0 {
		if err := c.call(&wire.TxSelect{}, func(m wire.Method) bool { _, ok := m.(*wire.TxSelectOk); return ok }); err != nil {
			r.fail("producer %d: %v", i, err)
			return
		}
	}

	// read handles what the broker sends (confirms, returns, commit-oks)
	// until a commit-ok, if untilCommitOK, or the connection's end
	// (false). A transactional producer reads its commit-oks itself;
	// any other has a goroutine run read.
	settled := func(d time.Duration, ack bool) {
		h.confirm.record(d)
		if ack {
			r.confirmed.Add(1)
		} else {
			r.nacked.Add(1)
		}
	}
	read := func(untilCommitOK bool) bool {
		for {
			m, err := c.readMethod()
			if err != nil {
				if err != errLeanClosed && ctx.Err() == nil {
					r.fail("producer %d: %v", i, err)
				}
				return false
			}
			switch m := m.(type) {
			case *wire.BasicAck:
				if confirms != nil {
					confirms.settle(m.DeliveryTag, m.Multiple, true, settled)
				}
			case *wire.BasicNack:
				if confirms != nil {
					confirms.settle(m.DeliveryTag, m.Multiple, false, settled)
				}
			case *wire.BasicReturn:
				r.returned.Add(1)
			case *wire.TxCommitOk:
				if untilCommitOK {
					return true
				}
			}
		}
	}
	readerDone := make(chan struct{})
	if cfg.txSize == 0 {
		go func() {
			defer close(readerDone)
			if confirms != nil {
				defer confirms.end()
			}
			read(false)
		}()
	}

	pace := newPacer(cfg.rate)
	body := make([]byte, cfg.size)
	mandatory := cfg.mandatory()
	var txStart time.Time
	for n := 0; cfg.pmessages == 0 || n < cfg.pmessages; n++ {
		if pace.every > 0 {
			if err := p.flush(); err != nil {
				break
			}
		}
		if !pace.wait(ctx) {
			break
		}
		if ctx.Err() != nil {
			break
		}
		now := time.Now().UnixNano()
		if confirms != nil {
			// Once taken, the tag is published: its confirm is waited
			// for at the end.
			var ok bool
			if now, ok = confirms.take(p.flush); !ok {
				break
			}
		}
		stamp(body, now)
		if cfg.txSize > 0 && n%cfg.txSize == 0 {
			txStart = time.Now()
		}
		p.props = propsBy[n%len(propsBy)]
		if err := p.publish(cfg.exchange, r.routingKey(i, n), mandatory, body); err != nil {
			if ctx.Err() == nil {
				r.fail("producer %d: publish: %v", i, err)
			}
			break
		}
		r.sent.Add(1)
		if cfg.txSize > 0 && (n+1)%cfg.txSize == 0 {
			p.buf, _ = wire.AppendMethodFrame(p.buf, leanChannel, &wire.TxCommit{})
			if err := p.flush(); err != nil {
				if ctx.Err() == nil {
					r.fail("producer %d: tx.commit: %v", i, err)
				}
				break
			}
			if !read(true) {
				break
			}
			h.commit.record(time.Since(txStart))
			r.commits.Add(1)
		}
	}
	p.flush()
	// Wait for the confirms of what was sent (bounded), so the counts
	// are whole.
	if confirms != nil {
		deadline := time.Now().Add(10 * time.Second)
		for confirms.outstanding() > 0 && time.Now().Before(deadline) {
			select {
			case <-readerDone:
				deadline = time.Now()
			case <-time.After(time.Millisecond):
			}
		}
	}
	c.startClose()
	if cfg.txSize > 0 {
		read(false)
	} else {
		<-readerDone
	}
}

// leanConsumer is consumer i on the lean client.
func (r *runner) leanConsumer(ctx context.Context, i int, ready chan<- error) {
	cfg := r.cfg
	c, err := leanDial(cfg.uri, fmt.Sprintf("%s-consumer-%d", r.prefix, i))
	if err != nil {
		ready <- fmt.Errorf("consumer %d: %w", i, err)
		return
	}
	defer c.nc.Close()
	prefetch := cfg.prefetch
	if cfg.autoAck {
		prefetch = 0
	}
	if err := c.consume(r.queueName(i%cfg.queues), prefetch, cfg.autoAck); err != nil {
		ready <- fmt.Errorf("consumer %d: %w", i, err)
		return
	}
	ready <- nil
	stop := context.AfterFunc(ctx, c.startClose)
	defer stop()

	h := r.newHists()
	every := max(cfg.multiAckEvery, 1)
	var acks []byte
	ack := wire.BasicAck{Multiple: every > 1}
	var (
		tag       uint64 // of the delivery being read
		remaining uint64 // its body bytes still to come
		size      uint64
		stamp     [8]byte
		got       int // bytes of stamp filled
		n         int // deliveries completed
		inBody    bool
	)
	complete := func() {
		inBody = false
		if ctx.Err() != nil || cfg.cmessages > 0 && n >= cfg.cmessages {
			return // closing: what still arrives is requeued
		}
		if size >= 8 {
			h.latency.record(time.Duration(time.Now().UnixNano() - int64(binary.BigEndian.Uint64(stamp[:]))))
		}
		r.received.Add(1)
		r.receivedBytes.Add(size)
		n++
		if !cfg.autoAck && n%every == 0 {
			ack.DeliveryTag = tag
			acks, _ = wire.AppendMethodFrame(acks, leanChannel, &ack)
		}
		if cfg.cmessages > 0 && n >= cfg.cmessages {
			if len(acks) > 0 {
				c.write(acks)
				acks = acks[:0]
			}
			c.startClose()
		}
	}
	for {
		// Acks go out once everything received so far is handled.
		if len(acks) > 0 && c.br.Buffered() == 0 {
			if err := c.write(acks); err != nil && err != errLeanClosed {
				r.fail("consumer %d: ack: %v", i, err)
				return
			}
			acks = acks[:0]
		}
		f, err := c.rd.ReadFrame()
		if err != nil {
			if ctx.Err() == nil && !c.isClosing() {
				r.fail("consumer %d: %v", i, err)
			}
			return
		}
		switch f.Type {
		case wire.FrameMethod:
			if t, ok := deliveryTag(f.Payload); ok {
				tag, inBody = t, true
				continue
			}
			m, err := c.dec.DecodeMethod(f.Payload)
			if err == nil {
				err = c.closed(m)
			}
			if err != nil {
				if err != errLeanClosed && ctx.Err() == nil {
					r.fail("consumer %d: %v", i, err)
				}
				return
			}
		case wire.FrameHeader:
			if !inBody {
				continue
			}
			_, bodySize, _, err := wire.ParseContentHeader(f.Payload)
			if err != nil {
				r.fail("consumer %d: %v", i, err)
				return
			}
			size, remaining, got = bodySize, bodySize, 0
			if remaining == 0 {
				complete()
			}
		case wire.FrameBody:
			if !inBody {
				continue
			}
			got += copy(stamp[got:], f.Payload)
			remaining -= min(remaining, uint64(len(f.Payload)))
			if remaining == 0 {
				complete()
			}
		}
	}
}

func (c *leanConn) isClosing() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.closing
}

// deliveryTag returns the delivery tag of a basic.deliver method frame
// payload, read in place; false for any other method.
func deliveryTag(p []byte) (uint64, bool) {
	if len(p) < 5 || binary.BigEndian.Uint16(p) != 60 || binary.BigEndian.Uint16(p[2:]) != 60 {
		return 0, false
	}
	p = p[4:]
	n := int(p[0]) // consumer-tag, a shortstr
	if len(p) < 1+n+8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(p[1+n:]), true
}
