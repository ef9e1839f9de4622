package server_test

import (
	"encoding/binary"
	"sync"
	"testing"
	"time"

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

// TestStoreFlowControl: a publisher without confirms whose messages the
// store must write (persistent ones to a durable queue, or transient ones
// that a queue without consumers pages out) is held back, its connection
// in state flow, while bbolt is behind (its checkpoints blocked), instead
// of the broker keeping all it sends in memory. Once bbolt catches up
// every message arrives, in order. A connection that consumes from the
// queue is held back too (its acks do not help bbolt catch up).
func TestStoreFlowControl(t *testing.T) {
	t.Run("persistent", func(t *testing.T) { testStoreFlowControl(t, true, false) })
	t.Run("paged", func(t *testing.T) { testStoreFlowControl(t, false, false) })
	t.Run("own consumer", func(t *testing.T) { testStoreFlowControl(t, true, true) })
}

func testStoreFlowControl(t *testing.T, persistent, ownConsumer bool) {
	release := make(chan struct{})
	var once sync.Once
	b := start(t, func(o *server.Options) {
		if !persistent {
			o.QueueWindow = 64 << 10 // the default holds all in memory
		}
		o.StoreCheckpointFault = func() error {
			<-release
			return nil
		}
	})
	needWarren(t, b)
	releaseStore := func() { once.Do(func() { close(release) }) }
	t.Cleanup(releaseStore) // before the broker's shutdown
	pubConn := dial(t, b.URL)
	subConn := pubConn
	if !ownConsumer {
		subConn = dial(t, b.URL)
	}
	pub, sub := mustChannel(t, pubConn), mustChannel(t, subConn)
	q := "flow-transient"
	mode := amqp.Transient
	if persistent {
		q, mode = "flow-persistent", amqp.Persistent
	}
	if _, err := pub.QueueDeclare(q, persistent, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	var deliveries <-chan amqp.Delivery
	if ownConsumer {
		// It takes the first message and acks nothing until bbolt is
		// let go: the queue is over its window meanwhile.
		if err := sub.Qos(1, 0, false); err != nil {
			t.Fatal(err)
		}
		deliveries = consume(t, sub, q, false)
	}

	// 60 MiB, against a backlog bound of 24 MiB (store.maxBacklog).
	const n, size, bound = 240, 256 << 10, 24 << 20
	published := make(chan error, 1)
	go func() {
		for i := range n {
			body := make([]byte, size)
			binary.BigEndian.PutUint32(body, uint32(i))
			if err := pub.Publish("", q, false, false, amqp.Publishing{Body: body, DeliveryMode: mode}); err != nil {
				published <- err
				return
			}
		}
		published <- nil
	}()
	inFlow := func() bool {
		for _, c := range b.Server.Connections() {
			if c.Flow {
				return true
			}
		}
		return false
	}
	if !poll(30*time.Second, inFlow) {
		info, _ := b.Server.Queue(q)
		t.Fatalf("the publisher was never held back; the queue holds %d messages (%d MiB)", info.Ready, info.Ready*size>>20)
	}
	info, err := b.Server.Queue(q)
	if err != nil {
		t.Fatal(err)
	}
	// A held reader still takes one more frame a second (maxFlowPause):
	// well under n.
	if limit := bound/size + n/8; info.Ready > limit {
		t.Errorf("%d messages in the queue with bbolt blocked; flow control should hold them near %d", info.Ready, bound/size)
	}
	t.Logf("held back with %d messages in the queue (bound %d)", info.Ready, bound/size)

	releaseStore()
	if !ownConsumer {
		deliveries = consume(t, sub, q, true)
	}
	for i := range n {
		select {
		case d := <-deliveries:
			if got := binary.BigEndian.Uint32(d.Body); len(d.Body) != size || got != uint32(i) {
				t.Fatalf("message %d: %d bytes, numbered %d", i, len(d.Body), got)
			}
			if ownConsumer {
				if err := d.Ack(false); err != nil {
					t.Fatal(err)
				}
			}
		case <-time.After(time.Minute):
			t.Fatalf("message %d never arrived", i)
		}
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}
}
