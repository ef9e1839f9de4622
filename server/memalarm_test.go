package server_test

import (
	"strconv"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/warrenmq/warren/server"
	"github.com/warrenmq/warren/server/servertest"
)

// setMemory makes m show used bytes and waits for the memory alarm to be
// in state on.
func setMemory(t *testing.T, b *servertest.Broker, m *servertest.Memory, used int64, on bool) {
	t.Helper()
	m.Set(used)
	checkFor(t, waitTimeout, func() bool { return b.Server.Memory().Alarm == on })
}

// expectBlocking waits for the next connection.blocked (active, with
// reason) or connection.unblocked (reason "") on blocked.
func expectBlocking(t *testing.T, blocked <-chan amqp.Blocking, active bool, reason string) {
	t.Helper()
	select {
	case bl := <-blocked:
		if bl.Active != active || bl.Reason != reason {
			t.Fatalf("got %+v, want active %v with reason %q", bl, active, reason)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("no connection.blocked or unblocked (want active %v, reason %q)", active, reason)
	}
}

// While the broker's memory is at or above the watermark, a connection
// that publishes is blocked as for the free disk space alarm, told so with
// RabbitMQ's "low on memory". With both alarms raised the reason names
// both, in RabbitMQ's order; a connection is told once, not again when
// another alarm is raised while it waits, and unblocked only once both
// have cleared.
func TestMemoryAlarmBlocksPublishers(t *testing.T) {
	t.Parallel()
	const limit, diskLimit = 1 << 30, 50_000_000
	m, d := servertest.NewMemory(limit-64<<20), servertest.NewDisk(diskLimit+64<<20)
	b := start(t, m.Alarm(limit), d.Alarm(diskLimit))
	if got, want := b.Server.Memory(), (server.MemoryInfo{Used: limit - 64<<20, Limit: limit}); got != want {
		t.Fatalf("Memory() = %+v, want %+v", got, want)
	}
	pubConn, otherConn := dial(t, b.URL), dial(t, b.URL)
	blocked := pubConn.NotifyBlocked(make(chan amqp.Blocking, 4))
	otherBlocked := otherConn.NotifyBlocked(make(chan amqp.Blocking, 4))
	pub, confirms := confirmChannel(t, pubConn, 8)
	q := declareQueue(t, b, pub, nil)
	other := mustChannel(t, otherConn)

	// Memory alone.
	setMemory(t, b, m, limit, true)
	if got, want := b.Server.Memory(), (server.MemoryInfo{Used: limit, Limit: limit, Alarm: true}); got != want {
		t.Fatalf("Memory() = %+v, want %+v", got, want)
	}
	if s := connState(t, b, pubConn); s != "blocking" {
		t.Fatalf("publisher's state %q during the alarm before it publishes, want blocking", s)
	}
	publishMsg(t, pub, "", q, amqp.Publishing{Body: []byte("a")})
	expectBlocking(t, blocked, true, "low on memory")
	if s := connState(t, b, pubConn); s != "blocked" {
		t.Fatalf("publisher's state %q, want blocked", s)
	}
	// The other connection, which does not publish, carries on.
	if _, err := other.QueueDeclare("", false, true, true, false, nil); err != nil {
		t.Fatalf("declare during the alarm: %v", err)
	}
	if n := messageCount(t, otherConn, q); n != 0 {
		t.Fatalf("queue holds %d messages during the block, want 0", n)
	}
	// The disk alarm too, then memory clears: still blocked, not told.
	setDisk(t, b, d, 0, true)
	setMemory(t, b, m, limit-1, false)
	if n := messageCount(t, otherConn, q); n != 0 || connState(t, b, pubConn) != "blocked" {
		t.Fatalf("with the disk alarm still raised: %d messages queued, publisher %s; want 0, blocked", n, connState(t, b, pubConn))
	}
	setDisk(t, b, d, diskLimit, false)
	expectBlocking(t, blocked, false, "")
	waitConfirm(t, confirms)
	if n := messageCount(t, otherConn, q); n != 1 {
		t.Fatalf("queue holds %d messages after the alarms, want 1", n)
	}

	// Both at once.
	setMemory(t, b, m, limit+1, true)
	setDisk(t, b, d, 0, true)
	publishMsg(t, pub, "", q, amqp.Publishing{Body: []byte("b")})
	expectBlocking(t, blocked, true, "low on disk & memory")
	setMemory(t, b, m, 0, false)
	setDisk(t, b, d, diskLimit, false)
	expectBlocking(t, blocked, false, "")
	waitConfirm(t, confirms)
	if n := messageCount(t, otherConn, q); n != 2 {
		t.Fatalf("queue holds %d messages after the alarms, want 2", n)
	}
	for _, c := range []<-chan amqp.Blocking{blocked, otherBlocked} {
		select {
		case bl := <-c:
			t.Fatalf("got %+v; want no more than one blocked and unblocked for each block, and none for a connection that does not publish", bl)
		default:
		}
	}
}

// An ack of thousands of deliveries at once (multiple, which the broker
// settles a chunk at a time) settles exactly those up to its tag, and an
// ack of all (tag 0, multiple) all that were outstanding; a nack of
// thousands requeues them all, in order, marked redelivered.
func TestAckMultipleMany(t *testing.T) {
	t.Parallel()
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	const n = 5000 // several chunks
	for range n {
		publishMsg(t, ch, "", q, amqp.Publishing{Body: []byte("m")})
	}
	msgs := consume(t, ch, q, false)
	var tags [n]uint64
	for i := range n {
		tags[i] = recv(t, msgs).DeliveryTag
	}
	unacked := func() (int, uint64) {
		t.Helper()
		info, err := b.Server.Queue(q)
		if err != nil {
			t.Fatal(err)
		}
		return info.Unacked, info.Acked
	}
	if err := ch.Ack(tags[3000-1], true); err != nil {
		t.Fatal(err)
	}
	checkFor(t, waitTimeout, func() bool { u, a := unacked(); return u == n-3000 && a == 3000 })
	if err := ch.Ack(0, true); err != nil {
		t.Fatal(err)
	}
	checkFor(t, waitTimeout, func() bool { u, a := unacked(); return u == 0 && a == n })

	// A nack of thousands with requeue puts them all back in order, marked
	// redelivered.
	for i := range n {
		publishMsg(t, ch, "", q, amqp.Publishing{Body: []byte(strconv.Itoa(i))})
	}
	var last uint64
	for i := range n {
		m := recv(t, msgs)
		if string(m.Body) != strconv.Itoa(i) || m.Redelivered {
			t.Fatalf("delivery %d: %q redelivered %v", i, m.Body, m.Redelivered)
		}
		last = m.DeliveryTag
	}
	if err := ch.Nack(last, true, true); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		m := recv(t, msgs)
		if string(m.Body) != strconv.Itoa(i) || !m.Redelivered {
			t.Fatalf("redelivery %d: %q redelivered %v; want %d, redelivered", i, m.Body, m.Redelivered, i)
		}
		last = m.DeliveryTag
	}
	if err := ch.Ack(last, true); err != nil {
		t.Fatal(err)
	}
	checkFor(t, waitTimeout, func() bool { u, a := unacked(); return u == 0 && a == 2*n })
}

// A multiple ack settled in chunks still tells the queues a channel-wide
// prefetch refused that there is room: deliveries made between two chunks
// may fill the channel again and refuse a queue, and a later chunk frees
// the room. Not parallel: it sets a hook of the package.
func TestAckMultipleKicksGlobalPrefetch(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	pub := mustChannel(t, dial(t, b.URL))
	if err := ch.Qos(2000, 0, true); err != nil {
		t.Fatal(err)
	}
	q1, q2 := declareQueue(t, b, ch, nil), declareQueue(t, b, ch, nil)
	for range 1500 {
		publishMsg(t, pub, "", q1, amqp.Publishing{Body: []byte("a")})
	}
	m1, m2 := consume(t, ch, q1, false), consume(t, ch, q2, false)
	var last uint64
	for range 1500 {
		last = recv(t, m1).DeliveryTag
	}
	// After the first chunk (1,024 settled, 476 outstanding), q1 fills
	// the channel to 2,000 again and q2 is refused.
	filled := make(chan bool, 1)
	var once sync.Once
	server.SetBetweenSettleChunks(func() {
		once.Do(func() {
			for range 1524 {
				publishMsg(t, pub, "", q1, amqp.Publishing{Body: []byte("b")})
			}
			publishMsg(t, pub, "", q2, amqp.Publishing{Body: []byte("q2")})
			filled <- poll(waitTimeout, func() bool {
				i1, err1 := b.Server.Queue(q1)
				i2, err2 := b.Server.Queue(q2)
				return err1 == nil && err2 == nil && i1.Unacked == 2000 && i2.Ready == 1
			})
		})
	})
	defer server.SetBetweenSettleChunks(nil)
	if err := ch.Ack(last, true); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range m1 {
		}
	}()
	if !<-filled {
		t.Fatal("the channel was not full with q2's message refused between the chunks: the test did not test the case")
	}
	if m := recv(t, m2); string(m.Body) != "q2" {
		t.Fatalf("got %q from q2", m.Body)
	}
}
