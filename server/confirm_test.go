package server_test

// Publisher confirms for persistent messages in durable queues: acked only
// once on disk, in tag order, coalesced with multiple=true, after their
// basic.return, and nacked when the store fails. (confirm.select on a
// channel in tx mode is TestConfirmAndTxExclusive in basic_test.go.)

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/warrenmq/warren/internal/wire"
	"github.com/warrenmq/warren/server"
)

// declareDurableQueue declares a durable queue with a unique name.
func declareDurableQueue(t *testing.T, ch *amqp.Channel) string {
	t.Helper()
	q := uniq(t, "durable")
	if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
		t.Fatalf("declare durable queue: %v", err)
	}
	return q
}

// rawPersistentProps are encoded properties with delivery_mode 2.
func rawPersistentProps(t testing.TB) []byte {
	t.Helper()
	props, err := (&wire.Properties{DeliveryMode: 2}).AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	return props
}

// appendPublish appends a basic.publish with its header and body frames.
func appendPublish(buf []byte, ch uint16, m *wire.BasicPublish, props, body []byte) []byte {
	buf, _ = wire.AppendMethodFrame(buf, ch, m)
	buf = wire.AppendHeaderFrame(buf, ch, wire.ClassBasic, uint64(len(body)), props)
	return wire.AppendBodyFrames(buf, ch, body, 131072)
}

// writeAsync writes buf from another goroutine, so that the test can read
// the broker's replies meanwhile; the returned channel reports the result.
func writeAsync(c *rawClient, buf []byte) <-chan error {
	done := make(chan error, 1)
	go func() {
		c.nc.SetWriteDeadline(time.Now().Add(rawTimeout))
		_, err := c.nc.Write(buf)
		done <- err
	}()
	return done
}

// rawConfirmSelect puts channel 1 of c in confirm mode.
func rawConfirmSelect(t testing.TB, c *rawClient) {
	t.Helper()
	c.send(t, 1, &wire.ConfirmSelect{})
	expectMethod[*wire.ConfirmSelectOk](t, c, 1)
}

func TestConfirmPersistentMultiple(t *testing.T) {
	b := startDurable(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareDurableQueue(t, ch)

	rc := rawDial(t, b.Addr)
	rawConfirmSelect(t, rc)
	rc.logf = nil // up to n acks: too many to log
	const n = 2000
	props := rawPersistentProps(t)
	var buf []byte
	for i := range n {
		buf = appendPublish(buf, 1, &wire.BasicPublish{RoutingKey: q}, props, fmt.Appendf(nil, "m%d", i))
	}
	written := writeAsync(rc, buf)
	var next uint64 = 1 // the lowest tag not yet acked
	frames, multiples := 0, 0
	for next <= n {
		chn, m, err := rc.nextMethod()
		if err != nil {
			t.Fatalf("waiting for the ack of %d: %v", next, err)
		}
		ack, ok := m.(*wire.BasicAck)
		if !ok || chn != 1 {
			t.Fatalf("waiting for the ack of %d: got %s on channel %d", next, describe(m), chn)
		}
		frames++
		switch {
		case ack.DeliveryTag > n:
			t.Fatalf("ack of tag %d, but only %d were published", ack.DeliveryTag, n)
		case ack.Multiple && ack.DeliveryTag >= next:
			multiples++
		case !ack.Multiple && ack.DeliveryTag == next:
		default:
			t.Fatalf("ack %d multiple=%v: the next tag to ack is %d (each tag once, in order)", ack.DeliveryTag, ack.Multiple, next)
		}
		next = ack.DeliveryTag + 1
	}
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	if multiples == 0 || frames >= n {
		t.Fatalf("%d persistent publishes confirmed by %d acks, %d with multiple=true: no coalescing", n, frames, multiples)
	}
	t.Logf("%d persistent publishes confirmed by %d acks (%d multiple)", n, frames, multiples)
	// nothing further: a ping round trip comes back with nothing before it
	rc.send(t, 1, &wire.BasicQos{PrefetchCount: 1})
	expectMethod[*wire.BasicQosOk](t, rc, 1)
	if c := messageCount(t, conn, q); c != n {
		t.Fatalf("%s holds %d, want %d", q, c, n)
	}
}

// TestConfirmManyPublishers: publishers on more connections than the
// commit loop writes to itself per batch (the rest go through their
// connections' writers) all get every confirm, as acks, and every message
// is in the queue.
func TestConfirmManyPublishers(t *testing.T) {
	b := startDurable(t)
	conn := dial(t, b.URL)
	q := declareDurableQueue(t, mustChannel(t, conn))
	const publishers, each = 12, 300
	errs := make(chan error, publishers)
	for p := range publishers {
		pc := dial(t, b.URL)
		ch := mustChannel(t, pc)
		if err := ch.Confirm(false); err != nil {
			t.Fatal(err)
		}
		go func() {
			var last *amqp.DeferredConfirmation
			for i := range each {
				dc, err := ch.PublishWithDeferredConfirm("", q, false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: fmt.Appendf(nil, "p%d-%d", p, i)})
				if err != nil {
					errs <- err
					return
				}
				// a window of 10: wait for every 10th publish's confirm
				if i%10 == 9 {
					if ok, err := dc.WaitContext(t.Context()); !ok || err != nil {
						errs <- fmt.Errorf("publisher %d: message %d confirmed ack=%v: %v", p, i, ok, err)
						return
					}
				}
				last = dc
			}
			if ok, err := last.WaitContext(t.Context()); !ok || err != nil {
				errs <- fmt.Errorf("publisher %d: last message confirmed ack=%v: %v", p, ok, err)
				return
			}
			errs <- nil
		}()
	}
	for range publishers {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(time.Minute):
			t.Fatal("publishers still waiting for confirms after a minute")
		}
	}
	if c := messageCount(t, conn, q); c != publishers*each {
		t.Fatalf("%s holds %d, want %d", q, c, publishers*each)
	}
}

func TestConfirmReturnBeforeAckPersistent(t *testing.T) {
	b := startDurable(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareDurableQueue(t, ch)

	rc := rawDial(t, b.Addr)
	rawConfirmSelect(t, rc)
	rc.logf = nil
	const n = 300
	props := rawPersistentProps(t)
	unroutable := map[uint64]bool{}
	var unroutableTags []uint64 // in publish order, which is the order of their returns
	var buf []byte
	for tag := uint64(1); tag <= n; tag++ {
		m := &wire.BasicPublish{RoutingKey: q, Mandatory: true}
		if tag%5 == 0 || tag%7 == 0 {
			m = &wire.BasicPublish{Exchange: "amq.direct", RoutingKey: "nowhere", Mandatory: true}
			unroutable[tag] = true
			unroutableTags = append(unroutableTags, tag)
		}
		buf = appendPublish(buf, 1, m, props, fmt.Appendf(nil, "m%d", tag))
	}
	written := writeAsync(rc, buf)
	var next uint64 = 1
	returned := 0 // basic.returns seen: those of unroutableTags[:returned]
	for next <= n {
		chn, m, err := rc.nextMethod()
		if err != nil {
			t.Fatalf("waiting for the ack of %d: %v", next, err)
		}
		if chn != 1 {
			t.Fatalf("got %s on channel %d", describe(m), chn)
		}
		switch m := m.(type) {
		case *wire.BasicReturn:
			if m.ReplyCode != wire.NoRoute || m.Exchange != "amq.direct" || m.RoutingKey != "nowhere" {
				t.Fatalf("basic.return %d %q exchange %q key %q", m.ReplyCode, m.ReplyText, m.Exchange, m.RoutingKey)
			}
			if returned == len(unroutableTags) {
				t.Fatalf("more basic.returns than the %d unroutable publishes", len(unroutableTags))
			}
			if tag := unroutableTags[returned]; tag < next {
				t.Fatalf("basic.return of publish %d after its ack", tag)
			}
			returned++
		case *wire.BasicAck:
			lo := next
			switch {
			case m.DeliveryTag > n:
				t.Fatalf("ack of tag %d, but only %d were published", m.DeliveryTag, n)
			case m.Multiple && m.DeliveryTag >= next:
			case !m.Multiple && m.DeliveryTag == next:
			default:
				t.Fatalf("ack %d multiple=%v: the next tag to ack is %d (acks in tag order)", m.DeliveryTag, m.Multiple, next)
			}
			for tag := lo; tag <= m.DeliveryTag; tag++ {
				if unroutable[tag] && (returned == 0 || unroutableTags[returned-1] < tag) {
					t.Fatalf("ack %d (multiple=%v) covers unroutable publish %d before its basic.return", m.DeliveryTag, m.Multiple, tag)
				}
			}
			next = m.DeliveryTag + 1
		default:
			t.Fatalf("waiting for the ack of %d: got %s", next, describe(m))
		}
	}
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	if returned != len(unroutableTags) {
		t.Fatalf("%d basic.returns, want %d", returned, len(unroutableTags))
	}
	if c, want := messageCount(t, conn, q), n-len(unroutableTags); c != want {
		t.Fatalf("%s holds %d, want %d", q, c, want)
	}
}

// expectConfirm waits for the confirm of tag and fails unless it is an
// ack (ack true) or a nack (ack false).
func expectConfirm(t *testing.T, confirms <-chan amqp.Confirmation, tag uint64, ack bool) {
	t.Helper()
	select {
	case c, ok := <-confirms:
		if !ok {
			t.Fatalf("confirms closed waiting for %d: the channel closed", tag)
		}
		if c.DeliveryTag != tag || c.Ack != ack {
			t.Fatalf("got confirm %d ack=%v, want %d ack=%v", c.DeliveryTag, c.Ack, tag, ack)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("no confirm of %d within the timeout", tag)
	}
}

// failWhen makes every store commit fail while failing is set, as a disk
// error would.
func failWhen(failing *atomic.Bool) func(*server.Options) {
	return func(o *server.Options) {
		o.StoreFault = func() error {
			if failing.Load() {
				return errors.New("injected disk error")
			}
			return nil
		}
	}
}

func TestConfirmStoreFault(t *testing.T) {
	var failing atomic.Bool
	fault := failWhen(&failing)
	b := startDurable(t, fault)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareDurableQueue(t, ch)
	qn := declareQueue(t, b, ch, nil) // not durable

	pch, confirms := confirmChannel(t, conn, 100)
	closed := pch.NotifyClose(make(chan *amqp.Error, 1))
	var tag uint64
	pub := func(exchange, key string, msg amqp.Publishing, ack bool) {
		t.Helper()
		publishMsg(t, pch, exchange, key, msg)
		tag++
		expectConfirm(t, confirms, tag, ack)
	}
	var before []string
	for i := range 5 {
		before = append(before, fmt.Sprintf("before-%d", i))
		pub("", q, persistent(before[i]), true)
	}

	failing.Store(true)
	pub("", q, amqp.Publishing{Body: []byte("transient")}, true)
	pub("", qn, persistent("to-nondurable"), true)
	pub("", q, persistent("nacked"), false)
	pub("", "no-such-queue", persistent("unroutable"), true)
	pub("", q, persistent("nacked-2"), false)

	failing.Store(false)
	pub("", q, persistent("after"), true)
	pub("", q, amqp.Publishing{Body: []byte("transient-after")}, true)
	pub("", q, persistent("after-2"), true)
	select {
	case err := <-closed:
		t.Fatalf("the publishing channel closed: %v", err)
	default:
	}
	if _, err := pch.QueueDeclarePassive(q, true, false, false, false, nil); err != nil {
		t.Fatalf("the publishing channel after the fault: %v", err)
	}

	b = restart(t, b)
	conn = dial(t, b.URL)
	ch = mustChannel(t, conn)
	got := drainBodies(t, ch, q)
	// The nacked ones may or may not be there (at least once); the rest must
	// be exactly the confirmed persistent messages, in order.
	var kept []string
	for _, body := range got {
		if body != "nacked" && body != "nacked-2" {
			kept = append(kept, body)
		}
	}
	if want := append(before, "after", "after-2"); !equalStrings(kept, want) {
		t.Fatalf("after restart %s holds %q, want %q (give or take the nacked ones)", q, got, want)
	}
	t.Logf("after restart: %q", got)
}

// A durable queue whose declare could not be written is not left in use:
// messages confirmed into it would vanish at the next start.
func TestDeclareStoreFaultLeavesNoQueue(t *testing.T) {
	var failing atomic.Bool
	b := startDurable(t, failWhen(&failing))
	ch := mustChannel(t, dial(t, b.URL))
	failing.Store(true)
	_, err := ch.QueueDeclare("not-on-disk", true, false, false, false, nil)
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.InternalError {
		t.Fatalf("declare with a failing store: %v, want 541", err)
	}
	failing.Store(false)
	ch2 := mustChannel(t, dial(t, b.URL))
	_, err = ch2.QueueDeclarePassive("not-on-disk", true, false, false, false, nil)
	if !errors.As(err, &ae) || ae.Code != amqp.NotFound {
		t.Fatalf("passive declare after the failed declare: %v, want 404", err)
	}
}

// tx.commit-ok means on disk: with the store failing, the commit fails
// instead of being acknowledged.
func TestTxCommitWaitsForStore(t *testing.T) {
	var failing atomic.Bool
	b := startDurable(t, failWhen(&failing))
	ch := mustChannel(t, dial(t, b.URL))
	if _, err := ch.QueueDeclare("tx-durable", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Tx(); err != nil {
		t.Fatal(err)
	}
	pub := amqp.Publishing{Body: []byte("a"), DeliveryMode: amqp.Persistent}
	if err := ch.Publish("", "tx-durable", false, false, pub); err != nil {
		t.Fatal(err)
	}
	if err := ch.TxCommit(); err != nil {
		t.Fatalf("commit with a working store: %v", err)
	}
	failing.Store(true)
	if err := ch.Publish("", "tx-durable", false, false, pub); err != nil {
		t.Fatal(err)
	}
	err := ch.TxCommit()
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.InternalError {
		t.Fatalf("commit with a failing store: %v, want 541", err)
	}
}

// gatedFault fails the first commit after arm, holding it until release.
type gatedFault struct {
	armed   atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func newGatedFault() *gatedFault {
	return &gatedFault{entered: make(chan struct{}, 1), release: make(chan struct{})}
}

func (g *gatedFault) opt(o *server.Options) {
	o.StoreFault = func() error {
		if g.armed.CompareAndSwap(true, false) {
			g.entered <- struct{}{}
			<-g.release
			return errors.New("injected disk error")
		}
		return nil
	}
}

// A message written to a durable queue whose own declare is still being
// written, and then fails, is nacked: after a restart neither is there.
func TestConfirmIntoQueueWhoseDeclareFails(t *testing.T) {
	g := newGatedFault()
	b := startDurable(t, g.opt)
	chA := mustChannel(t, dial(t, b.URL))
	g.armed.Store(true)
	declErr := make(chan error, 1)
	go func() {
		_, err := chA.QueueDeclare("shared", true, false, false, false, nil)
		declErr <- err
	}()
	<-g.entered // the batch holding the queue's record is being written

	connC := dial(t, b.URL)
	pch, confirms := confirmChannel(t, connC, 10)
	publishMsg(t, pch, "", "shared", persistent("m1"))
	// A declare that needs no disk write answers once the publish before
	// it on the channel has been routed.
	if _, err := pch.QueueDeclare("", false, true, true, false, nil); err != nil {
		t.Fatal(err)
	}
	close(g.release)
	if err := <-declErr; err == nil {
		t.Fatal("the declare whose write failed succeeded")
	}
	select {
	case c := <-confirms:
		if c.Ack {
			t.Fatal("a message written to a queue whose declare failed was acked")
		}
	case <-time.After(30 * time.Second): // a failure bound only
		t.Fatal("no confirm")
	}
}
