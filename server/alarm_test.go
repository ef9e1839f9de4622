package server_test

import (
	"net"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/warrenmq/warren/internal/wire"
	"github.com/warrenmq/warren/server/servertest"
)

// diskBroker starts a broker whose free disk space alarm, with a limit of
// limit bytes, reads d, which shows room near the limit (so the broker
// reads it often).
func diskBroker(t *testing.T, limit int64) (*servertest.Broker, *servertest.Disk) {
	t.Helper()
	d := servertest.NewDisk(limit + 64<<20)
	return start(t, d.Alarm(limit)), d
}

// setDisk makes d show free bytes and waits for the alarm to be in state
// on.
func setDisk(t *testing.T, b *servertest.Broker, d *servertest.Disk, free int64, on bool) {
	t.Helper()
	d.Set(free)
	checkFor(t, waitTimeout, func() bool { return b.Server.Disk().Alarm == on })
}

// connState returns conn's state as the management API shows it:
// running, blocking or blocked.
func connState(t *testing.T, b *servertest.Broker, conn *amqp.Connection) string {
	t.Helper()
	port := conn.LocalAddr().(*net.TCPAddr).Port
	for _, c := range b.Server.Connections() {
		if c.PeerPort != port {
			continue
		}
		switch {
		case c.Blocked:
			return "blocked"
		case c.Blocking:
			return "blocking"
		}
		return "running"
	}
	t.Fatalf("connection from port %d not listed", port)
	return ""
}

// anyBlocked reports whether some connection is blocked by the alarm.
func anyBlocked(b *servertest.Broker) bool {
	for _, ci := range b.Server.Connections() {
		if ci.Blocked {
			return true
		}
	}
	return false
}

// While free disk space is below the limit, a connection that publishes is
// blocked, as RabbitMQ's: told so with connection.blocked "low on disk",
// and nothing more is read from it, the message it was publishing
// included, until the alarm clears. Consumers and connections that do not
// publish carry on meanwhile.
func TestDiskAlarmBlocksPublishers(t *testing.T) {
	t.Parallel()
	const limit = 50_000_000
	b, d := diskBroker(t, limit)
	pubConn, consConn, idleConn := dial(t, b.URL), dial(t, b.URL), dial(t, b.URL)
	blocked := pubConn.NotifyBlocked(make(chan amqp.Blocking, 4))
	consBlocked := consConn.NotifyBlocked(make(chan amqp.Blocking, 4))
	pub, confirms := confirmChannel(t, pubConn, 8)
	q := declareQueue(t, b, pub, nil)
	for _, body := range []string{"a", "b", "c"} {
		publishMsg(t, pub, "", q, amqp.Publishing{Body: []byte(body), DeliveryMode: amqp.Persistent})
		waitConfirm(t, confirms)
	}

	setDisk(t, b, d, 1000, true)
	if info := b.Server.Disk(); info.Limit != limit || info.Free != 1000 {
		t.Fatalf("Disk() = %+v, want limit %d and free 1000", info, limit)
	}
	for _, c := range []*amqp.Connection{pubConn, consConn, idleConn} {
		if s := connState(t, b, c); s != "blocking" {
			t.Fatalf("connection state %q during the alarm before any publish, want blocking", s)
		}
	}
	// A consumer drains the queue and acks; another connection declares.
	cons := mustChannel(t, consConn)
	cons.Qos(1, 0, false)
	msgs := consume(t, cons, q, false)
	for _, want := range []string{"a", "b", "c"} {
		m := recv(t, msgs)
		if string(m.Body) != want {
			t.Fatalf("got %q, want %q", m.Body, want)
		}
		if err := m.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	idle := mustChannel(t, idleConn)
	if _, err := idle.QueueDeclare("", false, true, true, false, nil); err != nil {
		t.Fatalf("declare during the alarm: %v", err)
	}

	// The publisher is blocked at its next publish.
	publishMsg(t, pub, "", q, amqp.Publishing{Body: []byte("during"), DeliveryMode: amqp.Persistent})
	select {
	case bl := <-blocked:
		if !bl.Active || bl.Reason != "low on disk" {
			t.Fatalf("got %+v, want connection.blocked with reason %q", bl, "low on disk")
		}
	case <-time.After(waitTimeout):
		t.Fatal("no connection.blocked after a publish during the alarm")
	}
	if s := connState(t, b, pubConn); s != "blocked" {
		t.Fatalf("publisher's state %q, want blocked", s)
	}
	// Its connection reads nothing more: a declare on it waits too.
	declared := make(chan error, 1)
	go func() {
		ch, err := pubConn.Channel()
		if err == nil {
			_, err = ch.QueueDeclarePassive(q, false, false, false, false, nil)
		}
		declared <- err
	}()
	// The message was not taken: the queue is empty and stays so while
	// the consumer's connection, which never published, runs on.
	if n := messageCount(t, idleConn, q); n != 0 {
		t.Fatalf("queue holds %d messages during the block, want 0", n)
	}
	if s := connState(t, b, consConn); s != "blocking" {
		t.Fatalf("consumer's state %q, want blocking", s)
	}
	select {
	case err := <-declared:
		t.Fatalf("a blocked connection answered a declare (err %v)", err)
	default:
	}

	setDisk(t, b, d, limit, false)
	select {
	case bl := <-blocked:
		if bl.Active {
			t.Fatalf("got %+v, want connection.unblocked", bl)
		}
	case <-time.After(waitTimeout):
		t.Fatal("no connection.unblocked after the alarm cleared")
	}
	if m := recv(t, msgs); string(m.Body) != "during" {
		t.Fatalf("got %q after the alarm, want the held publish", m.Body)
	}
	waitConfirm(t, confirms)
	select {
	case err := <-declared:
		if err != nil {
			t.Fatalf("declare after the alarm: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the blocked connection's declare never completed")
	}
	select {
	case bl := <-consBlocked:
		t.Fatalf("the consumer's connection, which never published, got %+v", bl)
	default:
	}
	if s := connState(t, b, pubConn); s != "running" {
		t.Fatalf("publisher's state %q after the alarm, want running", s)
	}
}

// The store's file keeps the pages of consumed messages for reuse rather
// than shrinking, so the alarm counts them as room: an alarm raised while
// a backlog fills the disk clears once the backlog is consumed, and the
// publishers go on.
func TestDiskAlarmClearsAsQueuesDrain(t *testing.T) {
	t.Parallel()
	const limit = 4 << 20
	b, d := diskBroker(t, limit)
	conn := dial(t, b.URL)
	pub, confirms := confirmChannel(t, conn, 4096)
	q := uniq(t, "q")
	if _, err := pub.QueueDeclare(q, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 1024)
	const n = 8000 // 8 MiB of bodies: twice the limit
	for range n {
		publishMsg(t, pub, "", q, amqp.Publishing{Body: body, DeliveryMode: amqp.Persistent})
	}
	for range n {
		waitConfirm(t, confirms)
	}
	if free := b.Server.StoreStats().FreeBytes; free >= limit {
		t.Fatalf("the store has %d bytes of free pages before the drain, want fewer than %d for this test", free, limit)
	}
	setDisk(t, b, d, 0, true)

	cons := mustChannel(t, dial(t, b.URL))
	msgs := consume(t, cons, q, false)
	for range n {
		if err := recv(t, msgs).Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	// The acks' deletions reach the file at the next checkpoints.
	checkFor(t, waitTimeout, func() bool { return !b.Server.Disk().Alarm })
	if free := b.Server.StoreStats().FreeBytes; free < limit {
		t.Fatalf("alarm cleared with %d bytes of free pages, below the limit %d", free, limit)
	}
	publishMsg(t, pub, "", q, amqp.Publishing{Body: body, DeliveryMode: amqp.Persistent})
	waitConfirm(t, confirms)
}

// A client that did not announce the connection.blocked capability is
// blocked all the same, without the notification. A block longer than two
// heartbeat intervals does not cost the connection (nothing is read from
// it, its heartbeats included, until the alarm clears), and the broker
// closing the connection (shutdown) ends a block.
func TestRawDiskAlarm(t *testing.T) {
	t.Parallel()
	const limit = 1 << 20
	b, d := diskBroker(t, limit)
	c := heartbeatClient(t, b.Addr)
	c.send(t, 1, &wire.QueueDeclare{Queue: "alarm-raw"})
	expectMethod[*wire.QueueDeclareOk](t, c, 1)
	setDisk(t, b, d, 0, true)

	publishX := frames(methodFrame(1, &wire.BasicPublish{RoutingKey: "alarm-raw"}), headerFrame(1, wire.ClassBasic, 1), rawFrame(wire.FrameBody, 1, []byte("x")))
	c.write(t, publishX)
	c.send(t, 1, &wire.QueueDeclare{Queue: "alarm-raw", Passive: true})
	checkFor(t, waitTimeout, func() bool { return anyBlocked(b) })
	// Seven of the broker's heartbeats, which it sends every half
	// interval, and none of the client's: 3.5 s, past the two intervals
	// after which a silent client is dropped.
	for i := range 7 {
		f, err := c.readFrame()
		if err != nil || f.Type != wire.FrameHeartbeat {
			t.Fatalf("frame %d while blocked: type %d, err %v; want a heartbeat", i+1, f.Type, err)
		}
	}
	setDisk(t, b, d, limit, false)
	// The next method is the passive declare's answer, counting the
	// message that waited: no connection.blocked or unblocked came before
	// it.
	ok := expectMethod[*wire.QueueDeclareOk](t, c, 1)
	if ok.MessageCount != 1 {
		t.Fatalf("passive declare after the alarm counts %d messages, want 1", ok.MessageCount)
	}

	c.send(t, 0, &wire.ConnectionClose{ReplyCode: 200})
	expectMethod[*wire.ConnectionCloseOk](t, c, 0)

	c = connect(t, b.Addr)
	openChannel(t, c, 1)
	setDisk(t, b, d, 0, true)
	c.write(t, publishX)
	checkFor(t, waitTimeout, func() bool { return anyBlocked(b) })
	stopped := make(chan struct{})
	go func() {
		b.Stop()
		close(stopped)
	}()
	c.expectConnectionClose(t, wire.ConnectionForced)
	c.send(t, 0, &wire.ConnectionCloseOk{})
	select {
	case <-stopped:
	case <-time.After(waitTimeout):
		t.Fatal("shutdown did not end with a blocked connection")
	}
}

// A client that goes away while blocked does not keep its connection (and
// its exclusive queues, its unacked messages) until the alarm clears: the
// broker's next heartbeat fails to go out, which ends the block, as in
// RabbitMQ.
func TestDiskAlarmPeerGone(t *testing.T) {
	t.Parallel()
	const limit = 1 << 20
	b, d := diskBroker(t, limit)
	c := heartbeatClient(t, b.Addr)
	c.send(t, 1, &wire.QueueDeclare{Queue: "alarm-gone", Exclusive: true})
	expectMethod[*wire.QueueDeclareOk](t, c, 1)
	setDisk(t, b, d, 0, true)
	c.write(t, frames(methodFrame(1, &wire.BasicPublish{RoutingKey: "alarm-gone"}), headerFrame(1, wire.ClassBasic, 1), rawFrame(wire.FrameBody, 1, []byte("x"))))
	checkFor(t, waitTimeout, func() bool { return anyBlocked(b) })
	c.nc.Close()
	checkFor(t, waitTimeout, func() bool { return len(b.Server.Connections()) == 0 })
	if !b.Server.Disk().Alarm {
		t.Fatal("the alarm cleared: the test did not test a block")
	}
	if _, err := b.Server.Queue("alarm-gone"); err == nil {
		t.Fatal("the gone client's exclusive queue is still there")
	}
}

// heartbeatClient connects a raw client that asks for heartbeats every
// second (and sends none), with channel 1 open.
func heartbeatClient(t *testing.T, addr string) *rawClient {
	t.Helper()
	c := dialRaw(t, addr)
	advance(t, c, stageTuning)
	c.send(t, 0, &wire.ConnectionTuneOk{ChannelMax: c.tune.ChannelMax, FrameMax: c.tune.FrameMax, Heartbeat: 1})
	open(t, c)
	openChannel(t, c, 1)
	return c
}
