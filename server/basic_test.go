package server_test

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/warrenmq/warren/internal/wire"
	"github.com/warrenmq/warren/server"
)

func TestMandatoryUnroutableReturned(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	x := declareExchange(t, b, ch, "direct", nil)
	returns := ch.NotifyReturn(make(chan amqp.Return, 4))
	msg := amqp.Publishing{ContentType: "text/plain", MessageId: "id-1", Headers: amqp.Table{"h": int32(7)}, Body: []byte("come back")}
	if err := ch.Publish(x, "nowhere", true, false, msg); err != nil {
		t.Fatal(err)
	}
	var r amqp.Return
	select {
	case r = <-returns:
	case <-time.After(waitTimeout):
		t.Fatal("no basic.return")
	}
	if r.ReplyCode != amqp.NoRoute || r.ReplyText != "NO_ROUTE" || r.Exchange != x || r.RoutingKey != "nowhere" {
		t.Fatalf("return %d %q exchange %q key %q", r.ReplyCode, r.ReplyText, r.Exchange, r.RoutingKey)
	}
	if string(r.Body) != "come back" || r.ContentType != "text/plain" || r.MessageId != "id-1" || r.Headers["h"] != int32(7) {
		t.Fatalf("returned message changed: %+v", r)
	}

	// the default exchange returns too, and a non-mandatory publish does not
	if err := ch.Publish("", uniq(t, "no-queue"), false, false, amqp.Publishing{Body: []byte("dropped")}); err != nil {
		t.Fatal(err)
	}
	if err := ch.Publish("", "no-queue-either", true, false, amqp.Publishing{Body: []byte("returned")}); err != nil {
		t.Fatal(err)
	}
	select {
	case r = <-returns:
		if string(r.Body) != "returned" || r.Exchange != "" {
			t.Fatalf("return of %q from %q", r.Body, r.Exchange)
		}
	case <-time.After(waitTimeout):
		t.Fatal("no basic.return from the default exchange")
	}
}

func TestImmediateRefused(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	if err := ch.Publish("", q, false, true, amqp.Publishing{Body: []byte("now")}); err != nil {
		t.Fatal(err)
	}
	cerr := waitClose(t, closed)
	if cerr.Code != amqp.NotImplemented || cerr.Reason != "NOT_IMPLEMENTED - immediate=true" {
		t.Fatalf("connection closed with %d %q, want 540 NOT_IMPLEMENTED - immediate=true", cerr.Code, cerr.Reason)
	}
}

func TestServerGeneratedConsumerTag(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)

	rc := rawDial(t, b.Addr)
	tags := map[string]bool{}
	for range 2 {
		rc.send(t, 1, &wire.BasicConsume{Queue: q})
		ok := expectMethod[*wire.BasicConsumeOk](t, rc, 1)
		if !strings.HasPrefix(ok.ConsumerTag, "amq.ctag-") || len(ok.ConsumerTag) <= len("amq.ctag-") {
			t.Fatalf("server consumer tag %q, want amq.ctag-…", ok.ConsumerTag)
		}
		tags[ok.ConsumerTag] = true
	}
	if len(tags) != 2 {
		t.Fatalf("the server handed out the same tag twice: %v", tags)
	}
	st, err := ch.QueueDeclarePassive(q, false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Consumers != 2 {
		t.Fatalf("%d consumers, want 2", st.Consumers)
	}
}

func TestConsumeNoAck(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	p := newPublisher(t, conn)
	for i := range 3 {
		p.body("", q, fmt.Sprint(i))
	}
	p.wait()
	cch := mustChannel(t, conn)
	msgs, err := cch.Consume(q, "noack", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		d := recv(t, msgs)
		if string(d.Body) != fmt.Sprint(i) || d.ConsumerTag != "noack" || d.Redelivered || d.DeliveryTag != uint64(i+1) {
			t.Fatalf("delivery %d: body %q tag %q redelivered %v delivery tag %d", i, d.Body, d.ConsumerTag, d.Redelivered, d.DeliveryTag)
		}
	}
	// nothing is outstanding: closing the channel requeues nothing
	cch.Close()
	if n := messageCount(t, conn, q); n != 0 {
		t.Fatalf("%d messages back after closing a no-ack consumer's channel", n)
	}
}

func TestExclusiveConsumer(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	inUse := fmt.Sprintf("ACCESS_REFUSED - queue '%s' in vhost '/' in exclusive use", q)

	c1 := mustChannel(t, conn)
	consume(t, c1, q, false)
	c2 := mustChannel(t, conn)
	_, err := c2.Consume(q, "", false, true, false, false, nil)
	expectCloseText(t, err, amqp.AccessRefused, inUse)

	// and the other way round
	c1.Close()
	c3 := mustChannel(t, conn)
	if _, err := c3.Consume(q, "excl", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	c4 := mustChannel(t, conn)
	_, err = c4.Consume(q, "", false, false, false, false, nil)
	expectCloseText(t, err, amqp.AccessRefused, inUse)

	// once the exclusive consumer cancels, anyone may consume
	if err := c3.Cancel("excl", false); err != nil {
		t.Fatal(err)
	}
	c5 := mustChannel(t, conn)
	consume(t, c5, q, false)
}

func TestDuplicateConsumerTag(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	if _, err := ch.Consume(q, "dup", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	// the same tag on another channel is fine
	other := mustChannel(t, conn)
	if _, err := other.Consume(q, "dup", false, false, false, false, nil); err != nil {
		t.Fatalf("same tag on another channel: %v", err)
	}
	_, err := ch.Consume(q, "dup", false, false, false, false, nil)
	expectCloseText(t, err, amqp.NotAllowed, "NOT_ALLOWED - attempt to reuse consumer tag 'dup'")
	cerr := waitClose(t, closed)
	if cerr.Code != amqp.NotAllowed {
		t.Fatalf("connection closed with %d, want 530", cerr.Code)
	}
}

func TestConsumeMissingQueue(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	missing := uniq(t, "missing")
	_, err := ch.Consume(missing, "", false, false, false, false, nil)
	expectCloseText(t, err, amqp.NotFound, fmt.Sprintf("NOT_FOUND - no queue '%s' in vhost '/'", missing))
}

func TestCancel(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	cch := mustChannel(t, conn)
	msgs, err := cch.Consume(q, "c", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := newPublisher(t, conn)
	p.body("", q, "before")
	p.wait()
	if got := recv(t, msgs); string(got.Body) != "before" {
		t.Fatalf("got %q", got.Body)
	}
	if err := cch.Cancel("c", false); err != nil {
		t.Fatal(err)
	}
	select {
	case _, ok := <-msgs:
		if ok {
			t.Fatal("delivery after cancel")
		}
	case <-time.After(waitTimeout):
		t.Fatal("deliveries channel not closed by cancel")
	}
	p.body("", q, "after")
	p.wait()
	if n := messageCount(t, conn, q); n != 1 {
		t.Fatalf("%d messages left after cancel, want 1", n)
	}

	// nowait cancel, then cancelling an unknown tag, which is not an error
	msgs, err = cch.Consume(q, "c2", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := recv(t, msgs)
	if err := cch.Cancel("c2", true); err != nil {
		t.Fatal(err)
	}
	if err := cch.Cancel("never-existed", false); err != nil {
		t.Fatalf("cancel of an unknown tag: %v", err)
	}
	// the cancelled consumer's delivery may still be acked
	if err := d.Ack(false); err != nil {
		t.Fatal(err)
	}
	if _, err := cch.QueueDeclarePassive(q, false, false, false, false, nil); err != nil {
		t.Fatalf("channel closed after acking a cancelled consumer's delivery: %v", err)
	}
	waitCount(t, conn, q, 0)
}

func TestGet(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	if _, ok, err := ch.Get(q, false); err != nil || ok {
		t.Fatalf("get on an empty queue: ok=%v err=%v", ok, err)
	}
	p := newPublisher(t, conn)
	for i := 1; i <= 3; i++ {
		p.body("amq.direct", "", "unrouted")
		p.body("", q, fmt.Sprint(i))
	}
	p.wait()
	for i := 1; i <= 3; i++ {
		d := get(t, ch, q, false)
		if string(d.Body) != fmt.Sprint(i) || d.MessageCount != uint32(3-i) || d.DeliveryTag != uint64(i) || d.Redelivered || d.Exchange != "" || d.RoutingKey != q {
			t.Fatalf("get %d: body %q count %d tag %d redelivered %v exchange %q key %q", i, d.Body, d.MessageCount, d.DeliveryTag, d.Redelivered, d.Exchange, d.RoutingKey)
		}
	}
	if _, ok, err := ch.Get(q, false); err != nil || ok {
		t.Fatalf("get on a drained queue: ok=%v err=%v", ok, err)
	}
	if err := ch.Nack(2, false, true); err != nil {
		t.Fatal(err)
	}
	d := get(t, ch, q, true)
	if string(d.Body) != "2" || !d.Redelivered || d.DeliveryTag != 4 || d.MessageCount != 0 {
		t.Fatalf("requeued get: body %q redelivered %v tag %d count %d", d.Body, d.Redelivered, d.DeliveryTag, d.MessageCount)
	}
	if err := ch.Ack(3, true); err != nil {
		t.Fatal(err)
	}
	ch.Close()
	if n := messageCount(t, conn, q); n != 0 {
		t.Fatalf("%d messages back after acking everything", n)
	}
}

func TestAckMultiple(t *testing.T) {
	_, conn, ch, q, _ := numberedQueue(t, 5)
	cch := mustChannel(t, conn)
	msgs := consume(t, cch, q, false)
	var ds []amqp.Delivery
	for range 5 {
		ds = append(ds, recv(t, msgs))
	}
	if err := ds[2].Ack(true); err != nil { // 1, 2, 3
		t.Fatal(err)
	}
	if err := ds[4].Ack(false); err != nil { // 5
		t.Fatal(err)
	}
	cch.Close() // 4 goes back
	waitCount(t, conn, q, 1)
	d := get(t, ch, q, true)
	if string(d.Body) != "4" || !d.Redelivered {
		t.Fatalf("left %q redelivered=%v, want 4 redelivered", d.Body, d.Redelivered)
	}
}

func TestNackRejectRequeueOrder(t *testing.T) {
	_, conn, _, q, _ := numberedQueue(t, 8)
	cch := mustChannel(t, conn)
	if err := cch.Qos(5, 0, false); err != nil {
		t.Fatal(err)
	}
	msgs := consume(t, cch, q, false)
	var ds []amqp.Delivery
	for range 5 {
		ds = append(ds, recv(t, msgs))
	}
	if err := ds[1].Nack(false, true); err != nil { // 2
		t.Fatal(err)
	}
	if err := ds[3].Reject(true); err != nil { // 4
		t.Fatal(err)
	}
	// the requeued messages come back before 6, redelivered, with new tags
	for i, want := range []string{"2", "4"} {
		d := recv(t, msgs)
		if string(d.Body) != want || !d.Redelivered || d.DeliveryTag != uint64(6+i) {
			t.Fatalf("next delivery %q redelivered=%v tag %d, want %s redelivered with tag %d", d.Body, d.Redelivered, d.DeliveryTag, want, 6+i)
		}
	}
	if err := cch.Ack(0, true); err != nil { // everything so far
		t.Fatal(err)
	}
	for _, want := range []string{"6", "7", "8"} {
		d := recv(t, msgs)
		if string(d.Body) != want || d.Redelivered {
			t.Fatalf("delivery %q redelivered=%v, want %s", d.Body, d.Redelivered, want)
		}
	}
}

func TestRequeueKeepsOriginalPosition(t *testing.T) {
	_, conn, ch, q, _ := numberedQueue(t, 6)
	for range 5 {
		get(t, ch, q, false)
	}
	// requeued in reverse order, they still come back in publish order
	if err := ch.Nack(4, false, true); err != nil {
		t.Fatal(err)
	}
	if err := ch.Nack(2, false, true); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"2", "4", "6"} {
		d := get(t, ch, q, false)
		if string(d.Body) != want || d.Redelivered != (want != "6") || d.MessageCount != uint32(2-i) {
			t.Fatalf("get %q redelivered=%v count %d, want %s", d.Body, d.Redelivered, d.MessageCount, want)
		}
	}
	ch.Close() // all eight deliveries' messages back, in order
	ch = mustChannel(t, conn)
	waitCount(t, conn, q, 6)
	if got := drainBodies(t, ch, q); !equalStrings(got, []string{"1", "2", "3", "4", "5", "6"}) {
		t.Fatalf("after channel close got %q", got)
	}
}

func TestUnknownDeliveryTag(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	if err := ch.Ack(99, false); err != nil {
		t.Fatal(err)
	}
	cerr := waitClose(t, closed)
	if cerr.Code != amqp.PreconditionFailed || cerr.Reason != "PRECONDITION_FAILED - unknown delivery tag 99" {
		t.Fatalf("got %d %q", cerr.Code, cerr.Reason)
	}
	if conn.IsClosed() {
		t.Fatal("a 406 closed the connection")
	}
}

func TestDoubleAck(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	publish(t, ch, "", q, "m")
	waitCount(t, conn, q, 1)
	d := get(t, ch, q, false)
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	if err := d.Ack(false); err != nil {
		t.Fatal(err)
	}
	if err := d.Ack(false); err != nil {
		t.Fatal(err)
	}
	cerr := waitClose(t, closed)
	if cerr.Code != amqp.PreconditionFailed || cerr.Reason != fmt.Sprintf("PRECONDITION_FAILED - unknown delivery tag %d", d.DeliveryTag) {
		t.Fatalf("got %d %q", cerr.Code, cerr.Reason)
	}
	// the first ack stood
	if n := messageCount(t, conn, q); n != 0 {
		t.Fatalf("%d messages back", n)
	}
}

func TestAckMultipleUnknownTag(t *testing.T) {
	for _, c := range []struct {
		name string
		tag  uint64
		pre  bool // ack tag 2 alone first
	}{{"beyond", 99, false}, {"already acked", 2, true}} {
		t.Run(c.name, func(t *testing.T) {
			_, conn, ch, q, _ := numberedQueue(t, 3)
			for range 3 {
				get(t, ch, q, false)
			}
			if c.pre {
				if err := ch.Ack(2, false); err != nil {
					t.Fatal(err)
				}
			}
			closed := ch.NotifyClose(make(chan *amqp.Error, 1))
			// RabbitMQ wants the tag itself outstanding, multiple or not
			if err := ch.Ack(c.tag, true); err != nil {
				t.Fatal(err)
			}
			cerr := waitClose(t, closed)
			if cerr.Code != amqp.PreconditionFailed || cerr.Reason != fmt.Sprintf("PRECONDITION_FAILED - unknown delivery tag %d", c.tag) {
				t.Fatalf("got %d %q", cerr.Code, cerr.Reason)
			}
			// the failed ack acked nothing: all but a separately acked 2 are back
			want := 3
			if c.pre {
				want = 2
			}
			waitCount(t, conn, q, want)
		})
	}
}

func TestNoAckDeliveryCannotBeAcked(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	publish(t, ch, "", q, "m")
	waitCount(t, conn, q, 1)
	d := get(t, ch, q, true)
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	if err := ch.Ack(d.DeliveryTag, false); err != nil {
		t.Fatal(err)
	}
	cerr := waitClose(t, closed)
	if cerr.Code != amqp.PreconditionFailed {
		t.Fatalf("got %d %q", cerr.Code, cerr.Reason)
	}
}

func TestUnackedRequeuedOnClose(t *testing.T) {
	for _, how := range []string{"channel", "connection"} {
		t.Run(how, func(t *testing.T) {
			b, conn, ch, q, _ := numberedQueue(t, 4)

			cconn := dial(t, b.URL)
			cch := mustChannel(t, cconn)
			msgs := consume(t, cch, q, false)
			got := recvBodies(t, msgs, 4)
			if !equalStrings(got, []string{"1", "2", "3", "4"}) {
				t.Fatalf("consumed %q", got)
			}
			waitCount(t, conn, q, 0)
			if how == "channel" {
				cch.Close()
			} else {
				cconn.Close()
			}
			waitCount(t, conn, q, 4)
			for i := 1; i <= 4; i++ {
				d := get(t, ch, q, true)
				if string(d.Body) != fmt.Sprint(i) || !d.Redelivered {
					t.Fatalf("got %q redelivered=%v, want %d redelivered", d.Body, d.Redelivered, i)
				}
			}
		})
	}
}

func TestQosPerConsumer(t *testing.T) {
	_, conn, _, q, _ := numberedQueue(t, 10)

	cch := mustChannel(t, conn)
	if err := cch.Qos(2, 0, false); err != nil {
		t.Fatal(err)
	}
	m1 := consume(t, cch, q, false)
	first := recv(t, m1)
	recv(t, m1)
	waitCount(t, conn, q, 8)
	expectNoBuffered(t, m1)
	// a second consumer on the same channel gets its own two
	m2 := consume(t, cch, q, false)
	recvBodies(t, m2, 2)
	waitCount(t, conn, q, 6)
	expectNoBuffered(t, m1)

	// acking one of the first consumer's frees exactly one slot, its own
	if err := first.Ack(false); err != nil {
		t.Fatal(err)
	}
	if d := recv(t, m1); string(d.Body) != "5" {
		t.Fatalf("after the ack the first consumer got %q, want 5", d.Body)
	}
	waitCount(t, conn, q, 5)
	expectNoBuffered(t, m1)
	expectNoBuffered(t, m2)

	// a no-ack consumer is not limited
	nch := mustChannel(t, conn)
	if err := nch.Qos(1, 0, false); err != nil {
		t.Fatal(err)
	}
	m3 := consume(t, nch, q, true)
	recvBodies(t, m3, 5)
	waitCount(t, conn, q, 0)
}

func TestQosGlobal(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q1, q2 := declareQueue(t, b, ch, nil), declareQueue(t, b, ch, nil)
	p := newPublisher(t, conn)
	for i := 1; i <= 5; i++ {
		p.body("", q1, fmt.Sprint("a", i))
		p.body("", q2, fmt.Sprint("b", i))
	}
	p.wait()

	cch := mustChannel(t, conn)
	if err := cch.Qos(3, 0, true); err != nil {
		t.Fatal(err)
	}
	m1 := consume(t, cch, q1, false)
	recvBodies(t, m1, 3)
	waitCount(t, conn, q1, 2)
	// the channel's three are taken: a second consumer gets nothing
	m2 := consume(t, cch, q2, false)
	waitCount(t, conn, q2, 5)
	expectNoBuffered(t, m1)
	expectNoBuffered(t, m2)
	// three acks let three more through, to either consumer
	if err := cch.Ack(3, true); err != nil {
		t.Fatal(err)
	}
	var got int
	checkFor(t, waitTimeout, func() bool {
		got = 10 - messageCount(t, conn, q1) - messageCount(t, conn, q2)
		return got >= 6
	})
	n := 0
	for range 3 {
		select {
		case <-m1:
		case <-m2:
		case <-time.After(waitTimeout):
			t.Fatal("no delivery after the acks")
		}
		n++
	}
	if got != 6 {
		t.Fatalf("%d delivered in all, want 6", got)
	}
	expectNoBuffered(t, m1)
	expectNoBuffered(t, m2)
}

func TestQosPrefetchSize(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	ch := mustChannel(t, conn)
	err := ch.Qos(1, 1000, false)
	expectCloseText(t, err, amqp.NotImplemented, "NOT_IMPLEMENTED - prefetch_size!=0 (1000)")
	cerr := waitClose(t, closed)
	if cerr.Code != amqp.NotImplemented {
		t.Fatalf("connection closed with %d", cerr.Code)
	}
}

func TestRoundRobin(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	c1, c2 := mustChannel(t, conn), mustChannel(t, conn)
	m1, m2 := consume(t, c1, q, true), consume(t, c2, q, true)
	p := newPublisher(t, conn)
	for i := 1; i <= 6; i++ {
		p.body("", q, fmt.Sprint(i))
	}
	p.wait()
	got1, got2 := recvBodies(t, m1, 3), recvBodies(t, m2, 3)
	if !equalStrings(got1, []string{"1", "3", "5"}) || !equalStrings(got2, []string{"2", "4", "6"}) {
		t.Fatalf("consumers got %q and %q, want alternating", got1, got2)
	}
}

func TestRecover(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	p := newPublisher(t, conn)
	p.body("", q, "1")
	p.body("", q, "2")
	p.wait()
	cch := mustChannel(t, conn)
	msgs := consume(t, cch, q, false)
	first := recv(t, msgs)
	recv(t, msgs)
	if err := first.Ack(false); err != nil {
		t.Fatal(err)
	}
	if err := cch.Recover(true); err != nil {
		t.Fatal(err)
	}
	d := recv(t, msgs)
	if string(d.Body) != "2" || !d.Redelivered || d.DeliveryTag != 3 {
		t.Fatalf("after recover got %q redelivered=%v tag %d, want 2 redelivered with tag 3", d.Body, d.Redelivered, d.DeliveryTag)
	}
	if err := d.Ack(false); err != nil {
		t.Fatal(err)
	}
	cch.Close()
	if n := messageCount(t, conn, q); n != 0 {
		t.Fatalf("%d messages left", n)
	}
}

func TestConfirmAcksEveryPublish(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	const n = 2000
	pch, confirms := confirmChannel(t, conn, n)
	for i := range n {
		publish(t, pch, "", q, fmt.Sprint(i))
	}
	// unroutable publishes are confirmed too
	publish(t, pch, "amq.direct", "nowhere", "unroutable")
	for i := 1; i <= n+1; i++ {
		c := waitConfirm(t, confirms)
		if c.DeliveryTag != uint64(i) {
			t.Fatalf("confirm %d, want %d", c.DeliveryTag, i)
		}
	}
	if n2 := messageCount(t, conn, q); n2 != n {
		t.Fatalf("queue holds %d, want %d", n2, n)
	}
}

func TestConfirmMultipleCoalesced(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)

	rc := rawDial(t, b.Addr)
	rc.send(t, 1, &wire.ConfirmSelect{})
	expectMethod[*wire.ConfirmSelectOk](t, rc, 1)
	// many publishes in one write, as a pipelining client sends them
	const n = 200
	var buf []byte
	props, err := (&wire.Properties{}).AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		buf, _ = wire.AppendMethodFrame(buf, 1, &wire.BasicPublish{RoutingKey: q})
		buf = wire.AppendHeaderFrame(buf, 1, wire.ClassBasic, 3, props)
		buf = wire.AppendBodyFrames(buf, 1, []byte("msg"), 131072)
	}
	if _, err := rc.nc.Write(buf); err != nil {
		t.Fatal(err)
	}
	var next uint64 = 1
	frames, multiples := 0, 0
	for next <= n {
		ack := expectMethod[*wire.BasicAck](t, rc, 1)
		frames++
		switch {
		case ack.Multiple && ack.DeliveryTag >= next:
			multiples++
		case !ack.Multiple && ack.DeliveryTag == next:
		default:
			t.Fatalf("ack %d multiple=%v, expected the next from %d", ack.DeliveryTag, ack.Multiple, next)
		}
		next = ack.DeliveryTag + 1
	}
	if next != n+1 {
		t.Fatalf("acks ran to %d, want %d", next-1, n)
	}
	if multiples == 0 || frames >= n {
		t.Fatalf("%d publishes confirmed by %d acks, %d with multiple=true: no coalescing", n, frames, multiples)
	}
	t.Logf("%d publishes confirmed by %d acks", n, frames)
}

func TestConfirmReturnBeforeAck(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	pch, confirms := confirmChannel(t, conn, 10)
	returns := pch.NotifyReturn(make(chan amqp.Return, 10))
	if err := pch.Publish("amq.direct", "nowhere", true, false, amqp.Publishing{Body: []byte("r")}); err != nil {
		t.Fatal(err)
	}
	c := waitConfirm(t, confirms)
	if c.DeliveryTag != 1 {
		t.Fatalf("confirm %d", c.DeliveryTag)
	}
	// amqp091-go hands frames over in arrival order: the return must be here
	select {
	case r := <-returns:
		if r.ReplyCode != amqp.NoRoute || string(r.Body) != "r" {
			t.Fatalf("return %d %q", r.ReplyCode, r.Body)
		}
	default:
		t.Fatal("the ack arrived before the basic.return")
	}
}

func TestConfirmAndTxExclusive(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := txChannel(t, conn)
	err := ch.Confirm(false)
	expectCloseText(t, err, amqp.PreconditionFailed, "PRECONDITION_FAILED - cannot switch from tx to confirm mode")

	ch = mustChannel(t, conn)
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	err = ch.Tx()
	expectCloseText(t, err, amqp.PreconditionFailed, "PRECONDITION_FAILED - cannot switch from confirm to tx mode")

	for name, op := range map[string]func(*amqp.Channel) error{"commit": (*amqp.Channel).TxCommit, "rollback": (*amqp.Channel).TxRollback} {
		ch = mustChannel(t, conn)
		err = op(ch)
		if err == nil {
			t.Fatalf("tx.%s without tx.select succeeded", name)
		}
		expectCloseText(t, err, amqp.PreconditionFailed, "PRECONDITION_FAILED - channel is not transactional")
	}
}

func TestTxPublish(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	tch := txChannel(t, conn)
	publish(t, tch, "", q, "1")
	publish(t, tch, "", q, "2")
	// a synchronous round trip on the same channel: both publishes were
	// handled, and are held
	if _, err := tch.QueueDeclarePassive(q, false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if n := messageCount(t, conn, q); n != 0 {
		t.Fatalf("%d uncommitted messages visible", n)
	}
	if err := tch.TxCommit(); err != nil {
		t.Fatal(err)
	}
	waitCount(t, conn, q, 2)

	publish(t, tch, "", q, "3")
	if err := tch.TxRollback(); err != nil {
		t.Fatal(err)
	}
	publish(t, tch, "", q, "4")
	if err := tch.TxCommit(); err != nil {
		t.Fatal(err)
	}
	waitCount(t, conn, q, 3)
	if got := drainBodies(t, ch, q); !equalStrings(got, []string{"1", "2", "4"}) {
		t.Fatalf("got %q, want the rolled-back publish missing", got)
	}

	// closing a channel with an open transaction discards it
	publish(t, tch, "", q, "5")
	tch.Close()
	p := newPublisher(t, conn)
	p.body("", q, "6")
	p.wait()
	if got := drainBodies(t, ch, q); !equalStrings(got, []string{"6"}) {
		t.Fatalf("got %q after closing with an open transaction", got)
	}
}

func TestTxAcks(t *testing.T) {
	_, conn, ch, q, _ := numberedQueue(t, 3)

	tch := txChannel(t, conn)
	for range 3 {
		get(t, tch, q, false)
	}
	if err := tch.Ack(1, false); err != nil {
		t.Fatal(err)
	}
	if err := tch.TxRollback(); err != nil {
		t.Fatal(err)
	}
	// a rolled-back ack never happened; a committed one did
	if err := tch.Ack(2, false); err != nil {
		t.Fatal(err)
	}
	if err := tch.Reject(3, true); err != nil {
		t.Fatal(err)
	}
	if n := messageCount(t, conn, q); n != 0 {
		t.Fatalf("an uncommitted reject requeued: %d ready", n)
	}
	if err := tch.TxCommit(); err != nil {
		t.Fatal(err)
	}
	waitCount(t, conn, q, 1)
	tch.Close() // 1 is still unacked: back it goes
	waitCount(t, conn, q, 2)
	if got := drainBodies(t, ch, q); !equalStrings(got, []string{"1", "3"}) {
		t.Fatalf("got %q, want 1 (rolled-back ack) and 3 (committed reject)", got)
	}
}

func TestTxErrorsAtOnce(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	p := newPublisher(t, conn)
	p.body("", q, "m")
	p.wait()

	// RabbitMQ checks an acknowledgement when it arrives, not at commit
	for name, ack := range map[string]func(*amqp.Channel){
		"unknown tag": func(tch *amqp.Channel) { tch.Ack(99, false) },
		"double ack":  func(tch *amqp.Channel) { tch.Ack(1, false); tch.Ack(1, false) },
		"multiple":    func(tch *amqp.Channel) { tch.Ack(1, true); tch.Ack(1, false) },
	} {
		tch := txChannel(t, conn)
		get(t, tch, q, false)
		closed := tch.NotifyClose(make(chan *amqp.Error, 1))
		ack(tch)
		// a round trip shows whether the channel is still open, without
		// committing
		_, err := tch.QueueDeclarePassive(q, false, false, false, false, nil)
		if err == nil {
			t.Fatalf("%s: channel still open before commit", name)
		}
		cerr := waitClose(t, closed)
		if cerr.Code != amqp.PreconditionFailed || !strings.HasPrefix(cerr.Reason, "PRECONDITION_FAILED - unknown delivery tag ") {
			t.Fatalf("%s: got %d %q", name, cerr.Code, cerr.Reason)
		}
		waitCount(t, conn, q, 1) // nothing was acked
	}

	// and a publish to a missing or internal exchange when it arrives
	internal := uniq(t, "internal")
	cleanupRef(t, b, nil, []string{internal})
	if err := ch.ExchangeDeclare(internal, "fanout", false, false, true, false, nil); err != nil {
		t.Fatal(err)
	}
	missing := uniq(t, "missing")
	for x, code := range map[string]int{missing: amqp.NotFound, internal: amqp.AccessRefused} {
		tch := txChannel(t, conn)
		closed := tch.NotifyClose(make(chan *amqp.Error, 1))
		publish(t, tch, x, "", "m")
		if _, err := tch.QueueDeclarePassive(q, false, false, false, false, nil); err == nil {
			t.Fatalf("publish to %s: channel still open before commit", x)
		}
		if cerr := waitClose(t, closed); cerr.Code != code {
			t.Fatalf("publish to %s: got %d %q, want %d", x, cerr.Code, cerr.Reason, code)
		}
	}
}

func TestTxMandatoryReturnedAtCommit(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	tch := mustChannel(t, conn)
	returns := tch.NotifyReturn(make(chan amqp.Return, 1))
	if err := tch.Tx(); err != nil {
		t.Fatal(err)
	}
	if err := tch.Publish("amq.direct", "nowhere", true, false, amqp.Publishing{Body: []byte("r")}); err != nil {
		t.Fatal(err)
	}
	if err := tch.TxCommit(); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-returns:
		if string(r.Body) != "r" || r.ReplyCode != amqp.NoRoute {
			t.Fatalf("return %d %q", r.ReplyCode, r.Body)
		}
	default:
		t.Fatal("no basic.return before tx.commit-ok")
	}
}

func TestPropertiesRoundTrip(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	ts := time.Unix(1714979289, 0) // local time, as amqp091-go decodes timestamps
	headers := amqp.Table{
		"bool":    true,
		"false":   false,
		"byte":    byte(200),
		"int8":    int8(-100),
		"int16":   int16(-30000),
		"int32":   int32(-2000000000),
		"int64":   int64(-9000000000000000000),
		"uint16":  uint16(60000),
		"uint32":  uint32(4000000000),
		"float32": float32(1.5),
		"float64": float64(-2.25),
		"decimal": amqp.Decimal{Scale: 2, Value: 12345},
		"string":  "héllo",
		"bytes":   []byte{0, 1, 2, 255},
		"time":    ts,
		"nil":     nil,
		"array":   []any{int32(1), "two", []any{true}, amqp.Table{"in": "array"}},
		"table":   amqp.Table{"nested": amqp.Table{"deep": int64(1)}},
		"empty":   "",
	}
	pub := amqp.Publishing{
		Headers: headers, ContentType: "application/json", ContentEncoding: "gzip",
		DeliveryMode: amqp.Persistent, Priority: 7, CorrelationId: "corr", ReplyTo: "reply.queue",
		Expiration: "600000", MessageId: "msg-1", Timestamp: ts, Type: "kind", UserId: "guest",
		AppId: "app", Body: []byte("props"),
	}
	p := newPublisher(t, conn)
	p.pub("", q, pub)
	p.wait()
	for _, via := range []string{"get", "consume"} {
		var d amqp.Delivery
		if via == "get" {
			d = get(t, ch, q, false)
			if err := d.Nack(false, true); err != nil {
				t.Fatal(err)
			}
		} else {
			d = recv(t, consume(t, ch, q, true))
		}
		got := amqp.Publishing{
			Headers: d.Headers, ContentType: d.ContentType, ContentEncoding: d.ContentEncoding,
			DeliveryMode: d.DeliveryMode, Priority: d.Priority, CorrelationId: d.CorrelationId, ReplyTo: d.ReplyTo,
			Expiration: d.Expiration, MessageId: d.MessageId, Timestamp: d.Timestamp, Type: d.Type, UserId: d.UserId,
			AppId: d.AppId, Body: d.Body,
		}
		if s1, s2 := fmt.Sprintf("%#v", got), fmt.Sprintf("%#v", pub); s1 != s2 {
			t.Errorf("via %s the properties changed:\n got %s\nwant %s", via, s1, s2)
		}
	}
}

func TestPropertiesRawClusterID(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	// cluster-id, the fourteenth property, is not exposed by amqp091-go
	want := wire.Properties{ContentType: "t", ClusterID: "cluster", AppID: "app", Priority: 1}
	want.Flags = wire.FlagContentType | wire.FlagClusterID | wire.FlagAppID | wire.FlagPriority
	props, err := want.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	rc := rawDial(t, b.Addr)
	buf, _ := wire.AppendMethodFrame(nil, 1, &wire.BasicPublish{RoutingKey: q})
	buf = wire.AppendHeaderFrame(buf, 1, wire.ClassBasic, 1, props)
	buf = wire.AppendBodyFrames(buf, 1, []byte("x"), 131072)
	buf, _ = wire.AppendMethodFrame(buf, 1, &wire.BasicGet{Queue: q, NoAck: true})
	if _, err := rc.nc.Write(buf); err != nil {
		t.Fatal(err)
	}
	expectMethod[*wire.BasicGetOk](t, rc, 1)
	f, err := rc.readFrame()
	if err != nil || f.Type != wire.FrameHeader {
		t.Fatalf("frame %v type %d, want the content header", err, f.Type)
	}
	_, size, raw, err := wire.ParseContentHeader(f.Payload)
	if err != nil {
		t.Fatal(err)
	}
	var got wire.Properties
	if err := got.Decode(raw); err != nil {
		t.Fatal(err)
	}
	if size != 1 || got.ClusterID != "cluster" || got.ContentType != "t" || got.AppID != "app" || got.Priority != 1 || got.Flags != want.Flags {
		t.Fatalf("got size %d props %+v, want %+v", size, got, want)
	}
}

func TestBodySizes(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	fm := conn.Config.FrameSize
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	sizes := []int{0, 1, fm - 9, fm - 8, fm - 7, 2*(fm-8) - 1, 2 * (fm - 8), 2*(fm-8) + 1, 1 << 20, 16 << 20}
	p := newPublisher(t, conn)
	bodies := make([][]byte, len(sizes))
	for i, n := range sizes {
		body := make([]byte, n)
		for j := range body {
			body[j] = byte(j*7 + i)
		}
		bodies[i] = body
		p.pub("", q, amqp.Publishing{Body: body})
	}
	p.wait()
	msgs := consume(t, ch, q, true)
	for i := range sizes {
		d := recv(t, msgs)
		if !bytes.Equal(d.Body, bodies[i]) {
			t.Fatalf("body of %d bytes came back as %d bytes, or changed", sizes[i], len(d.Body))
		}
	}
}

// Bodies of 32 KiB and more are held in memory the broker does not zero
// first (makeBody): every byte a consumer gets must be one the publisher
// sent, with small frames (the body grows frame by frame), large ones
// (read straight into the body) and bodies past the 1 MiB reserved at
// once, after other large messages have come and gone so that the
// memory reused holds their bytes.
func TestLargeBodiesExact(t *testing.T) {
	b := start(t)
	sizes := []int{32<<10 - 1, 32 << 10, 32<<10 + 1, 64 << 10, 64<<10 + 4089, 1<<20 + 3, 2<<20 + 5}
	for _, frameSize := range []int{4096, 128 << 10} {
		t.Run(fmt.Sprintf("frame%d", frameSize), func(t *testing.T) {
			conn := dialConfig(t, b.URL, amqp.Config{FrameSize: frameSize})
			ch := mustChannel(t, conn)
			q := declareQueue(t, b, ch, nil)
			msgs := consume(t, ch, q, true)
			p := newPublisher(t, conn)
			for round := range 3 {
				bodies := make([][]byte, len(sizes))
				for i, n := range sizes {
					body := make([]byte, n)
					for j := range body {
						body[j] = byte(j*31+i*7+round) | 1 // never 0, as zeroed memory would be
					}
					bodies[i] = body
					p.pub("", q, amqp.Publishing{Body: body})
				}
				p.wait()
				for i, want := range bodies {
					d := recv(t, msgs)
					if !bytes.Equal(d.Body, want) {
						t.Fatalf("round %d: body of %d bytes came back as %d bytes, or changed", round, sizes[i], len(d.Body))
					}
				}
				runtime.GC() // the bodies' memory goes back for reuse
			}
		})
	}
}

func TestMaxMessageSize(t *testing.T) {
	b := start(t, func(o *server.Options) { o.MaxMessageSize = 1024 })
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	p := newPublisher(t, conn)
	p.pub("", q, amqp.Publishing{Body: make([]byte, 1024)})
	p.wait()
	waitCount(t, conn, q, 1)

	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	publishMsg(t, ch, "", q, amqp.Publishing{Body: make([]byte, 1025)})
	cerr := waitClose(t, closed)
	if cerr.Code != amqp.PreconditionFailed || cerr.Reason != "PRECONDITION_FAILED - message size 1025 is larger than configured max size 1024" {
		t.Fatalf("got %d %q", cerr.Code, cerr.Reason)
	}
	if conn.IsClosed() {
		t.Fatal("the connection closed")
	}
	// the connection and other channels carry on
	if n := messageCount(t, conn, q); n != 1 {
		t.Fatalf("%d messages, want 1", n)
	}
	// a large message spanning body frames is refused the same way
	ch = mustChannel(t, conn)
	closed = ch.NotifyClose(make(chan *amqp.Error, 1))
	publishMsg(t, ch, "", q, amqp.Publishing{Body: make([]byte, 300000)})
	if cerr := waitClose(t, closed); cerr.Code != amqp.PreconditionFailed {
		t.Fatalf("got %d %q", cerr.Code, cerr.Reason)
	}
	p2 := newPublisher(t, conn)
	p2.body("", q, "small")
	p2.wait()
	waitCount(t, conn, q, 2)
}

func TestConcurrentPublishConsume(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	const publishers, perPublisher, consumers = 4, 500, 3

	got := make(chan string, publishers*perPublisher)
	for range consumers {
		cconn := dial(t, b.URL)
		cch := mustChannel(t, cconn)
		if err := cch.Qos(50, 0, false); err != nil {
			t.Fatal(err)
		}
		msgs := consume(t, cch, q, false)
		go func() {
			for d := range msgs {
				got <- string(d.Body)
				d.Ack(false)
			}
		}()
	}
	errs := make(chan error, publishers)
	for p := range publishers {
		pconn := dial(t, b.URL)
		go func() {
			pch, err := pconn.Channel()
			if err != nil {
				errs <- err
				return
			}
			if err := pch.Confirm(false); err != nil {
				errs <- err
				return
			}
			confirms := pch.NotifyPublish(make(chan amqp.Confirmation, perPublisher))
			for i := range perPublisher {
				if err := pch.Publish("", q, false, false, amqp.Publishing{Body: []byte(fmt.Sprintf("%d-%d", p, i))}); err != nil {
					errs <- err
					return
				}
			}
			for range perPublisher {
				if c := <-confirms; !c.Ack {
					errs <- fmt.Errorf("nack %d", c.DeliveryTag)
					return
				}
			}
			errs <- nil
		}()
	}
	for range publishers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for range publishers * perPublisher {
		var body string
		select {
		case body = <-got:
		case <-time.After(waitTimeout):
			t.Fatalf("%d of %d messages consumed", len(seen), publishers*perPublisher)
		}
		if seen[body] {
			t.Fatalf("%s delivered twice", body)
		}
		seen[body] = true
	}
	waitCount(t, conn, q, 0)
}

func TestSlowConsumerBackpressure(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	// a consumer that does not read: its socket fills and the broker must
	// hold the rest back, then resume once it reads again
	cconn := dial(t, b.URL)
	cch := mustChannel(t, cconn)
	msgs := consume(t, cch, q, true)
	const n, size = 200, 64 << 10
	p := newPublisher(t, conn)
	for i := range n {
		body := bytes.Repeat([]byte{byte(i)}, size)
		p.pub("", q, amqp.Publishing{Body: body})
	}
	p.wait()
	for i := range n {
		d := recv(t, msgs)
		if len(d.Body) != size || d.Body[0] != byte(i) || d.Body[size-1] != byte(i) {
			t.Fatalf("delivery %d: %d bytes starting %d, want %d bytes of %d", i, len(d.Body), d.Body[0], size, byte(i))
		}
	}
	waitCount(t, conn, q, 0)
}

func TestConsumerPriorities(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	low, high := mustChannel(t, conn), mustChannel(t, conn)
	mLow, err := low.Consume(q, "low", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := high.Qos(2, 0, false); err != nil {
		t.Fatal(err)
	}
	mHigh, err := high.Consume(q, "high", false, false, false, false, amqp.Table{"x-priority": int32(10)})
	if err != nil {
		t.Fatal(err)
	}
	p := newPublisher(t, conn)
	for i := range 5 {
		p.body("", q, fmt.Sprint(i))
	}
	p.wait()
	// the high-priority consumer takes what it can (two, its prefetch),
	// the low one the rest
	if got := recvBodies(t, mHigh, 2); !equalStrings(got, []string{"0", "1"}) {
		t.Fatalf("high-priority consumer got %q", got)
	}
	if got := recvBodies(t, mLow, 3); !equalStrings(got, []string{"2", "3", "4"}) {
		t.Fatalf("low-priority consumer got %q", got)
	}
}
