package server_test

import (
	"sync"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/warrenmq/warren/server"
)

// TestPublisherFlowControl: a producer faster than the consumer of its
// queue is held back, so the queue's backlog stays near its window
// instead of growing with everything the producer has; every message
// still arrives, in order.
func TestPublisherFlowControl(t *testing.T) {
	const window = 16 << 10
	b := start(t, func(o *server.Options) { o.QueueWindow = window })
	pubConn, subConn := dial(t, b.URL), dial(t, b.URL)
	pub, sub := mustChannel(t, pubConn), mustChannel(t, subConn)
	q := declareQueue(t, b, pub, nil)
	if err := sub.Qos(1, 0, false); err != nil {
		t.Fatal(err)
	}
	deliveries := consume(t, sub, q, false)

	const n, size = 3000, 1024
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		body := make([]byte, size)
		for range n {
			if err := pub.Publish("", q, false, false, amqp.Publishing{Body: body}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	// The consumer takes one message at a time, and watches the backlog.
	maxReady := 0
	for i := range n {
		d := <-deliveries
		if len(d.Body) != size {
			t.Fatalf("message %d: %d bytes", i, len(d.Body))
		}
		if i%50 == 0 {
			info, err := b.Server.Queue(q)
			if err != nil {
				t.Fatal(err)
			}
			maxReady = max(maxReady, info.Ready)
		}
		if err := d.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	// Over the window (16 messages) the producer waits; a few frames may
	// be read before it does.
	if limit := window/size + 50; maxReady > limit {
		t.Errorf("backlog reached %d messages; flow control should hold it near %d", maxReady, window/size)
	}
	t.Logf("largest backlog seen: %d messages (window %d)", maxReady, window/size)
}

// TestFlowControlSameConnection: a connection that consumes from the
// queue it publishes to is not held back (its acks would wait behind its
// publishes); everything arrives.
func TestFlowControlSameConnection(t *testing.T) {
	b := start(t, func(o *server.Options) { o.QueueWindow = 4 << 10 })
	conn := dial(t, b.URL)
	pub, sub := mustChannel(t, conn), mustChannel(t, conn)
	q := declareQueue(t, b, pub, nil)
	if err := sub.Qos(1, 0, false); err != nil {
		t.Fatal(err)
	}
	deliveries := consume(t, sub, q, false)
	const n = 2000
	go func() {
		body := make([]byte, 1024)
		for range n {
			if pub.Publish("", q, false, false, amqp.Publishing{Body: body}) != nil {
				return
			}
		}
	}()
	for i := range n {
		d := <-deliveries
		if err := d.Ack(false); err != nil {
			t.Fatalf("ack %d: %v", i, err)
		}
	}
}
