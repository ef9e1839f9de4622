package server_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/warrenmq/warren/server"
)

// consumerTimeout is the timeout these tests run with; they never assert
// a time, only what happens once it has run out.
const consumerTimeout = 200 * time.Millisecond

// timeoutText is RabbitMQ's reply text for a channel timed out at
// consumerTimeout.
func timeoutText(channel int) string {
	return fmt.Sprintf("PRECONDITION_FAILED - delivery acknowledgement on channel %d timed out. Timeout value used: %d ms. This timeout value can be configured, see consumers doc guide to learn more", channel, consumerTimeout.Milliseconds())
}

// expectTimedOut waits for a channel's close (its NotifyClose) and fails
// unless it is the consumer timeout's 406 for channel number.
func expectTimedOut(t *testing.T, closed <-chan *amqp.Error, number int) {
	t.Helper()
	select {
	case e := <-closed:
		if e == nil || e.Code != amqp.PreconditionFailed || e.Reason != timeoutText(number) {
			t.Fatalf("channel closed with %v, want 406 %q", e, timeoutText(number))
		}
	case <-time.After(waitTimeout):
		t.Fatal("the timed-out channel was not closed")
	}
}

// startTimeout starts a broker with consumerTimeout and returns a
// connection, one that sends a heartbeat a second, a queue, and the URL.
func startTimeout(t *testing.T) (conn, slow *amqp.Connection, q, url string) {
	t.Helper()
	b := start(t, func(o *server.Options) { o.ConsumerTimeout = consumerTimeout })
	needWarren(t, b) // RabbitMQ's timeout is 30 minutes, set in its config
	conn = dial(t, b.URL)
	q = declareQueue(t, b, mustChannel(t, conn), nil)
	// A heartbeat a second: the reader looks for timed-out channels
	// before each frame, heartbeats included.
	slow = dialConfig(t, b.URL, amqp.Config{Heartbeat: time.Second})
	return conn, slow, q, b.URL
}

// TestConsumerTimeout: a consumer that holds deliveries past the consumer
// timeout has its channel closed with RabbitMQ's 406, without doing
// anything itself (its heartbeats carry the close); what it held is
// requeued and goes to another consumer, redelivered, in queue order; its
// connection stays open.
func TestConsumerTimeout(t *testing.T) {
	conn, slow, q, _ := startTimeout(t)
	ch := mustChannel(t, slow)
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	if err := ch.Qos(2, 0, false); err != nil {
		t.Fatal(err)
	}
	held := consume(t, ch, q, false)
	p := newPublisher(t, conn)
	for i := range 2 {
		p.body("", q, fmt.Sprint(i))
	}
	p.wait()
	if got := recvBodies(t, held, 2); !equalStrings(got, []string{"0", "1"}) {
		t.Fatalf("slow consumer got %q", got)
	}
	other := consume(t, mustChannel(t, conn), q, false)
	for i := range 2 {
		d := recv(t, other)
		if string(d.Body) != fmt.Sprint(i) || !d.Redelivered {
			t.Fatalf("other consumer's delivery %d: %q redelivered=%v", i, d.Body, d.Redelivered)
		}
		if err := d.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	expectTimedOut(t, closed, 1)
	if slow.IsClosed() {
		t.Fatal("the connection closed with the channel")
	}
	mustChannel(t, slow) // still usable
	waitCount(t, conn, q, 0)
}

// TestConsumerTimeoutGetAndAck: a basic.get delivery times out too, and
// is requeued; the client's late ack gets its channel closed with the
// timeout's 406, not "unknown delivery tag". A transactional channel that
// holds a delivery is closed too, its transaction rolled back and the
// delivery requeued.
func TestConsumerTimeoutGetAndAck(t *testing.T) {
	conn, slow, q, url := startTimeout(t)
	p := newPublisher(t, conn)
	p.body("", q, "got")
	p.wait()

	// Its own connection (amqp091-go's heartbeat, 10 s), which sends
	// nothing between the get and the ack.
	ch := mustChannel(t, dial(t, url))
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	d := get(t, ch, q, false)
	waitCount(t, conn, q, 1) // requeued once timed out
	if err := d.Ack(false); err != nil {
		t.Fatal(err)
	}
	expectTimedOut(t, closed, 1)

	tx := mustChannel(t, slow)
	txClosed := tx.NotifyClose(make(chan *amqp.Error, 1))
	if err := tx.Tx(); err != nil {
		t.Fatal(err)
	}
	if d = get(t, tx, q, false); string(d.Body) != "got" || !d.Redelivered {
		t.Fatalf("got %q redelivered=%v, want the requeued message", d.Body, d.Redelivered)
	}
	if err := d.Ack(false); err != nil { // held by the transaction, never committed
		t.Fatal(err)
	}
	expectTimedOut(t, txClosed, 1)
	waitCount(t, conn, q, 1) // rolled back: the message is back
}

// TestConsumerTimeoutDuringConsume: a channel timed out while one of its
// consumers is being subscribed does not leave that consumer on its queue:
// the consume fails with the timeout's 406, and once the connection is
// gone the queue has no consumer (an exclusive consume elsewhere works).
func TestConsumerTimeoutDuringConsume(t *testing.T) {
	b := start(t, func(o *server.Options) { o.ConsumerTimeout = consumerTimeout })
	needWarren(t, b)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q1, q2 := declareQueue(t, b, ch, nil), declareQueue(t, b, ch, nil)
	publish(t, ch, "", q1, "held")
	get(t, ch, q1, false) // so that the channel has something to time out
	server.SetAfterConsumerListed(func() { server.ExpireConsumersNow(b.Server) })
	_, err := ch.Consume(q2, "c", false, true, false, false, nil)
	server.SetAfterConsumerListed(nil)
	expectCloseText(t, err, amqp.PreconditionFailed, timeoutText(1))
	waitCount(t, conn, q1, 1) // requeued
	conn.Close()
	other := mustChannel(t, dial(t, b.URL))
	if _, err := other.Consume(q2, "exclusive", false, true, false, false, nil); err != nil {
		t.Fatalf("exclusive consume after the timed-out consumer's connection closed: %v", err)
	}
}

// TestConsumerTimeoutDuringCommit: a transactional channel timed out in
// the middle of its commit still applies the commit whole: every ack in
// it holds, and the channel is closed afterwards.
func TestConsumerTimeoutDuringCommit(t *testing.T) {
	b := start(t, func(o *server.Options) { o.ConsumerTimeout = consumerTimeout })
	needWarren(t, b)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	const n = 1100 // more than one settle chunk
	p := newPublisher(t, conn)
	for i := range n {
		p.body("", q, fmt.Sprint(i))
	}
	p.wait()
	tx := mustChannel(t, conn)
	closed := tx.NotifyClose(make(chan *amqp.Error, 1))
	if err := tx.Tx(); err != nil {
		t.Fatal(err)
	}
	msgs := consume(t, tx, q, false)
	var last amqp.Delivery
	for range n {
		last = recv(t, msgs)
	}
	if err := tx.Ack(last.DeliveryTag-1, true); err != nil {
		t.Fatal(err)
	}
	if err := tx.Ack(last.DeliveryTag, false); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	server.SetBetweenSettleChunks(func() { once.Do(func() { server.ExpireConsumersNow(b.Server) }) })
	err := tx.TxCommit()
	server.SetBetweenSettleChunks(nil)
	if err != nil {
		t.Fatalf("tx.commit: %v", err)
	}
	expectTimedOut(t, closed, 3) // after the queue's channel and the publisher's
	if c := messageCount(t, conn, q); c != 0 {
		t.Fatalf("%d messages back in the queue after a commit that acked all %d", c, n)
	}
}
