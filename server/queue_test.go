package server_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestServerNamedQueue(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(q.Name, "amq.gen-") || len(q.Name) <= len("amq.gen-") {
		t.Fatalf("server-named queue %q, want amq.gen-…", q.Name)
	}
	q2, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if q2.Name == q.Name {
		t.Fatalf("two server-named queues share the name %q", q.Name)
	}
	// an empty queue name means the channel's last declared queue (q2)
	if err := ch.QueueBind("", "k", "amq.direct", false, nil); err != nil {
		t.Fatal(err)
	}
	p := newPublisher(t, conn)
	p.body("", q.Name, "by name")
	p.body("amq.direct", "k", "bound")
	p.wait()
	if got := drainBodies(t, ch, q.Name); !equalStrings(got, []string{"by name"}) {
		t.Errorf("first queue got %q", got)
	}
	if got := drainBodies(t, ch, q2.Name); !equalStrings(got, []string{"bound"}) {
		t.Errorf("second queue got %q", got)
	}
}

func TestQueueDeclarePassive(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	// passive ignores the other fields
	if _, err := ch.QueueDeclarePassive(q, true, true, false, false, amqp.Table{"x-message-ttl": int32(5)}); err != nil {
		t.Fatalf("passive declare of an existing queue: %v", err)
	}
	missing := uniq(t, "missing")
	_, err := ch.QueueDeclarePassive(missing, false, false, false, false, nil)
	expectCloseText(t, err, amqp.NotFound, fmt.Sprintf("NOT_FOUND - no queue '%s' in vhost '/'", missing))
	if _, err := ch.QueueDeclarePassive(q, false, false, false, false, nil); err != amqp.ErrClosed {
		t.Fatalf("channel still usable after 404: %v", err)
	}
}

func TestQueueDeclareReservedName(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	_, err := ch.QueueDeclare("amq.x", false, false, false, false, nil)
	expectCloseText(t, err, amqp.AccessRefused, "ACCESS_REFUSED - queue name 'amq.x' contains reserved prefix 'amq.*'")
	ch = mustChannel(t, conn)
	_, err = ch.QueueDeclarePassive("amq.x", false, false, false, false, nil)
	expectClose(t, err, amqp.NotFound)
}

func TestQueueRedeclare(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, amqp.Table{"x-message-ttl": int32(60000), "x-custom": "a"})
	// other integer widths of the same value, and other non-equivalence
	// arguments, are equivalent
	if _, err := ch.QueueDeclare(q, false, false, false, false, amqp.Table{"x-message-ttl": int64(60000), "x-custom": "b"}); err != nil {
		t.Fatalf("equivalent redeclare: %v", err)
	}
	_, err := ch.QueueDeclare(q, true, false, false, false, amqp.Table{"x-message-ttl": int32(60000)})
	expectCloseText(t, err, amqp.PreconditionFailed, fmt.Sprintf("PRECONDITION_FAILED - inequivalent arg 'durable' for queue '%s' in vhost '/': received 'true' but current is 'false'", q))

	ch = mustChannel(t, conn)
	_, err = ch.QueueDeclare(q, false, false, false, false, amqp.Table{"x-message-ttl": int32(1000)})
	expectClose(t, err, amqp.PreconditionFailed)

	ch = mustChannel(t, conn)
	_, err = ch.QueueDeclare(q, false, false, false, false, nil)
	expectClose(t, err, amqp.PreconditionFailed)

	ch = mustChannel(t, conn)
	_, err = ch.QueueDeclare(q, false, true, false, false, amqp.Table{"x-message-ttl": int32(60000)})
	expectClose(t, err, amqp.PreconditionFailed)
}

func TestQueueDeclareInvalidArgs(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	for _, c := range []struct {
		args amqp.Table
		text string // after "PRECONDITION_FAILED - ", with Q for the queue name
	}{
		{amqp.Table{"x-message-ttl": int32(-1)}, "invalid arg 'x-message-ttl' for queue 'Q' in vhost '/': {value_negative,-1}"},
		{amqp.Table{"x-message-ttl": "1000"}, `invalid arg 'x-message-ttl' for queue 'Q' in vhost '/': "expected integer, got longstr"`},
		{amqp.Table{"x-message-ttl": float64(1)}, `invalid arg 'x-message-ttl' for queue 'Q' in vhost '/': "expected integer, got double"`},
		{amqp.Table{"x-max-length": int32(-1)}, "invalid arg 'x-max-length' for queue 'Q' in vhost '/': {value_negative,-1}"},
		{amqp.Table{"x-max-length-bytes": int16(-1)}, "invalid arg 'x-max-length-bytes' for queue 'Q' in vhost '/': {value_negative,-1}"},
		{amqp.Table{"x-expires": int32(0)}, "invalid arg 'x-expires' for queue 'Q' in vhost '/': {value_zero,0}"},
		{amqp.Table{"x-expires": true}, `invalid arg 'x-expires' for queue 'Q' in vhost '/': "expected integer, got bool"`},
		{amqp.Table{"x-max-priority": int32(300)}, "invalid arg 'x-max-priority' for queue 'Q' in vhost '/': {max_value_exceeded,300}"},
		{amqp.Table{"x-overflow": "drop-tail"}, "invalid arg 'x-overflow' for queue 'Q' in vhost '/': invalid_overflow"},
		{amqp.Table{"x-overflow": int32(1)}, "invalid arg 'x-overflow' for queue 'Q' in vhost '/': {unacceptable_type,signedint}"},
		{amqp.Table{"x-queue-mode": "weird"}, `invalid arg 'x-queue-mode' for queue 'Q' in vhost '/': "unsupported queue mode 'weird'"`},
		{amqp.Table{"x-queue-type": "weird"}, `invalid arg 'x-queue-type' for queue 'Q' in vhost '/': "unsupported queue type 'weird'"`},
		{amqp.Table{"x-single-active-consumer": "yes"}, "invalid arg 'x-single-active-consumer' for queue 'Q' in vhost '/': {unacceptable_type,longstr}"},
		{amqp.Table{"x-dead-letter-exchange": int8(4)}, "invalid type 'byte' for arg 'x-dead-letter-exchange' in queue 'Q' in vhost '/'"},
		{amqp.Table{"x-dead-letter-routing-key": "k"}, "invalid arg 'x-dead-letter-routing-key' for queue 'Q' in vhost '/': routing_key_but_no_dlx_defined"},
		{amqp.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": int64(4)}, "invalid arg 'x-dead-letter-routing-key' for queue 'Q' in vhost '/': {unacceptable_type,long}"},
	} {
		ch := mustChannel(t, conn)
		name := uniq(t, "q")
		cleanupRef(t, b, []string{name}, nil)
		_, err := ch.QueueDeclare(name, false, false, false, false, c.args)
		expectCloseText(t, err, amqp.PreconditionFailed, "PRECONDITION_FAILED - "+strings.ReplaceAll(c.text, "'Q'", "'"+name+"'"))
	}
}

func TestQueueRedeclareArgTexts(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, amqp.Table{"x-max-length": int64(5), "x-dead-letter-exchange": "a"})
	// a redeclare is only checked for equivalence: arguments RabbitMQ does
	// not compare are not validated either
	if _, err := ch.QueueDeclare(q, false, false, false, false, amqp.Table{"x-max-length": int32(5), "x-dead-letter-exchange": "a", "x-foo": true}); err != nil {
		t.Fatalf("equivalent redeclare: %v", err)
	}
	for _, c := range []struct {
		args amqp.Table
		text string
	}{
		{amqp.Table{"x-max-length": int64(6), "x-dead-letter-exchange": "a"}, "received '6' but current is '5'"},
		{amqp.Table{"x-max-length": "5", "x-dead-letter-exchange": "a"}, "received '5' but current is '5'"},
		{amqp.Table{"x-dead-letter-exchange": "a"}, "received none but current is the value '5' of type 'long'"},
		{amqp.Table{"x-max-length": int64(5), "x-dead-letter-exchange": "a", "x-expires": int32(0)}, "received the value '0' of type 'signedint' but current is none"},
	} {
		ch := mustChannel(t, conn)
		_, err := ch.QueueDeclare(q, false, false, false, false, c.args)
		arg := "x-max-length"
		if _, ok := c.args["x-expires"]; ok {
			arg = "x-expires"
		}
		expectCloseText(t, err, amqp.PreconditionFailed, fmt.Sprintf("PRECONDITION_FAILED - inequivalent arg '%s' for queue '%s' in vhost '/': %s", arg, q, c.text))
	}

	// durable is not compared for an exclusive queue
	ch = mustChannel(t, conn)
	eq := uniq(t, "excl")
	cleanupRef(t, b, []string{eq}, nil)
	if _, err := ch.QueueDeclare(eq, true, false, true, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(eq, false, false, true, false, nil); err != nil {
		t.Fatalf("exclusive queue redeclared non-durable: %v", err)
	}

	// even an equivalent redeclare of a server-named queue is refused
	sq, err := ch.QueueDeclare("", false, false, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ch.QueueDeclare(sq.Name, false, false, true, false, nil)
	expectCloseText(t, err, amqp.AccessRefused, fmt.Sprintf("ACCESS_REFUSED - queue name '%s' contains reserved prefix 'amq.*'", sq.Name))
}

func TestQueueDeclareOkCounts(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	p := newPublisher(t, conn)
	for i := range 3 {
		p.body("", q, fmt.Sprint(i))
	}
	p.wait()
	st, err := ch.QueueDeclare(q, false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Messages != 3 || st.Consumers != 0 {
		t.Fatalf("declare-ok: %d messages, %d consumers; want 3, 0", st.Messages, st.Consumers)
	}

	// an unacked delivery is not counted as a message
	cch := mustChannel(t, conn)
	if err := cch.Qos(1, 0, false); err != nil {
		t.Fatal(err)
	}
	msgs := consume(t, cch, q, false)
	recv(t, msgs)
	waitCount(t, conn, q, 2)
	st, err = ch.QueueDeclarePassive(q, false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Messages != 2 || st.Consumers != 1 {
		t.Fatalf("passive declare-ok: %d messages, %d consumers; want 2, 1", st.Messages, st.Consumers)
	}
}

func TestExclusiveQueue(t *testing.T) {
	b := start(t)
	owner := dial(t, b.URL)
	och := mustChannel(t, owner)
	q := uniq(t, "excl")
	cleanupRef(t, b, []string{q}, nil)
	if _, err := och.QueueDeclare(q, false, false, true, false, nil); err != nil {
		t.Fatal(err)
	}
	bindQueue(t, och, q, "bound", "amq.direct", nil)
	other := dial(t, b.URL)
	// unbinding what is not bound is fine even from another connection
	if err := mustChannel(t, other).QueueUnbind(q, "not-bound", "amq.direct", nil); err != nil {
		t.Fatalf("unbind of a missing binding from another connection: %v", err)
	}
	locked := fmt.Sprintf("RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '%s' in vhost '/'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.", q)
	for name, op := range map[string]func(*amqp.Channel) error{
		"declare": func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclare(q, false, false, true, false, nil)
			return err
		},
		"passive declare": func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclarePassive(q, false, false, true, false, nil)
			return err
		},
		"consume": func(ch *amqp.Channel) error {
			_, err := ch.Consume(q, "", false, false, false, false, nil)
			return err
		},
		"get": func(ch *amqp.Channel) error {
			_, _, err := ch.Get(q, false)
			return err
		},
		"bind":   func(ch *amqp.Channel) error { return ch.QueueBind(q, "k", "amq.direct", false, nil) },
		"unbind": func(ch *amqp.Channel) error { return ch.QueueUnbind(q, "bound", "amq.direct", nil) },
		"purge": func(ch *amqp.Channel) error {
			_, err := ch.QueuePurge(q, false)
			return err
		},
		"delete": func(ch *amqp.Channel) error {
			_, err := ch.QueueDelete(q, false, false, false)
			return err
		},
	} {
		err := op(mustChannel(t, other))
		if err == nil {
			t.Errorf("%s from another connection succeeded", name)
			continue
		}
		expectCloseText(t, err, amqp.ResourceLocked, locked)
	}

	// but anyone may publish to it
	p := newPublisher(t, other)
	p.body("", q, "from other")
	p.body("amq.direct", "bound", "via the binding the refused unbind left")
	p.wait()
	if got := drainBodies(t, och, q); !equalStrings(got, []string{"from other", "via the binding the refused unbind left"}) {
		t.Fatalf("owner got %q", got)
	}

	// the owner redeclaring it non-exclusive is refused too
	_, err := och.QueueDeclare(q, false, false, false, false, nil)
	expectClose(t, err, amqp.ResourceLocked)

	// the queue goes with its connection
	if err := owner.Close(); err != nil {
		t.Fatal(err)
	}
	queueGone(t, other, q)
}

func TestExclusiveQueueSurvivesChannelClose(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q, err := ch.QueueDeclare("", false, false, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	ch.Close()
	if n := messageCount(t, conn, q.Name); n != 0 {
		t.Fatalf("count %d", n)
	}
}

func TestAutoDeleteQueue(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := uniq(t, "autodel")
	cleanupRef(t, b, []string{q}, nil)
	if _, err := ch.QueueDeclare(q, false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	// never consumed: it stays
	if n := messageCount(t, conn, q); n != 0 {
		t.Fatalf("count %d", n)
	}
	if _, err := ch.Consume(q, "c1", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Consume(q, "c2", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Cancel("c1", false); err != nil {
		t.Fatal(err)
	}
	st, err := ch.QueueDeclarePassive(q, false, true, false, false, nil)
	if err != nil {
		t.Fatalf("auto-delete queue gone while a consumer is left: %v", err)
	}
	if st.Consumers != 1 {
		t.Fatalf("%d consumers after one cancel, want 1", st.Consumers)
	}
	if err := ch.Cancel("c2", false); err != nil {
		t.Fatal(err)
	}
	queueGone(t, conn, q)

	// closing the consumer's channel counts as cancelling
	ch = mustChannel(t, conn)
	if _, err := ch.QueueDeclare(q, false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	cch := mustChannel(t, conn)
	consume(t, cch, q, false)
	cch.Close()
	queueGone(t, conn, q)
}

func TestQueuePurge(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	p := newPublisher(t, conn)
	for i := range 5 {
		p.body("", q, fmt.Sprint(i))
	}
	p.wait()
	gch := mustChannel(t, conn)
	get(t, gch, q, false) // one unacked: purge leaves it alone
	n, err := ch.QueuePurge(q, false)
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Fatalf("purge-ok count %d, want 4", n)
	}
	if n := messageCount(t, conn, q); n != 0 {
		t.Fatalf("%d messages after purge", n)
	}
	gch.Close() // requeues the unacked one
	waitCount(t, conn, q, 1)
	if got := drainBodies(t, ch, q); !equalStrings(got, []string{"0"}) {
		t.Fatalf("after requeue got %q", got)
	}
}

func TestQueueDelete(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	p := newPublisher(t, conn)
	p.body("", q, "1")
	p.body("", q, "2")
	p.wait()

	_, err := ch.QueueDelete(q, false, true, false)
	expectCloseText(t, err, amqp.PreconditionFailed, fmt.Sprintf("PRECONDITION_FAILED - queue '%s' in vhost '/' not empty", q))

	ch = mustChannel(t, conn)
	cch := mustChannel(t, conn)
	if err := cch.Qos(1, 0, false); err != nil {
		t.Fatal(err)
	}
	consume(t, cch, q, false)
	_, err = ch.QueueDelete(q, true, false, false)
	expectCloseText(t, err, amqp.PreconditionFailed, fmt.Sprintf("PRECONDITION_FAILED - queue '%s' in vhost '/' in use", q))

	ch = mustChannel(t, conn)
	waitCount(t, conn, q, 1)
	n, err := ch.QueueDelete(q, false, false, false)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("delete-ok count %d, want 1 (the ready message)", n)
	}
	queueGone(t, conn, q)

	// a missing queue is deleted already
	if n, err := ch.QueueDelete(uniq(t, "missing"), false, false, false); err != nil || n != 0 {
		t.Fatalf("delete of a missing queue: %d, %v", n, err)
	}
}

func TestQueueDeleteCancelsConsumers(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	cch := mustChannel(t, conn)
	cancels := cch.NotifyCancel(make(chan string, 1))
	msgs, err := cch.Consume(q, "the-consumer", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDelete(q, false, false, false); err != nil {
		t.Fatal(err)
	}
	select {
	case tag := <-cancels:
		if tag != "the-consumer" {
			t.Fatalf("basic.cancel for %q", tag)
		}
	case <-time.After(waitTimeout):
		t.Fatal("no basic.cancel after the queue was deleted")
	}
	select {
	case _, ok := <-msgs:
		if ok {
			t.Fatal("delivery after cancel")
		}
	case <-time.After(waitTimeout):
		t.Fatal("deliveries channel not closed after basic.cancel")
	}
	// the channel is still open
	if _, err := cch.QueueDeclare("", false, true, true, false, nil); err != nil {
		t.Fatalf("channel unusable after a server cancel: %v", err)
	}
}

func TestQueueBindUnbindArguments(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	x := declareExchange(t, b, ch, "direct", nil)
	q := declareQueue(t, b, ch, nil)
	// bindings differing only in arguments are distinct, but a message
	// matching both is delivered once
	bindQueue(t, ch, q, "k", x, amqp.Table{"a": "1"})
	bindQueue(t, ch, q, "k", x, nil)
	p := newPublisher(t, conn)
	p.body(x, "k", "both")
	p.wait()
	if got := drainBodies(t, ch, q); !equalStrings(got, []string{"both"}) {
		t.Fatalf("got %q", got)
	}
	if err := ch.QueueUnbind(q, "k", x, nil); err != nil {
		t.Fatal(err)
	}
	p.body(x, "k", "args binding left")
	p.wait()
	if got := drainBodies(t, ch, q); !equalStrings(got, []string{"args binding left"}) {
		t.Fatalf("got %q", got)
	}
	if err := ch.QueueUnbind(q, "k", x, amqp.Table{"a": "1"}); err != nil {
		t.Fatal(err)
	}
	p.body(x, "k", "none left")
	p.wait()
	if n := messageCount(t, conn, q); n != 0 {
		t.Fatalf("%d messages after both unbinds", n)
	}
	// unbinding a binding that does not exist is fine, even with the
	// exchange or the queue missing, as in RabbitMQ 3.x
	if err := ch.QueueUnbind(q, "nope", x, nil); err != nil {
		t.Fatalf("unbind of a missing binding: %v", err)
	}
	if err := ch.QueueUnbind(q, "k", uniq(t, "missing"), nil); err != nil {
		t.Fatalf("unbind from a missing exchange: %v", err)
	}
	if err := ch.QueueUnbind(uniq(t, "missing"), "k", x, nil); err != nil {
		t.Fatalf("unbind of a missing queue: %v", err)
	}

	// headers bindings are told apart by their arguments
	hx := declareExchange(t, b, ch, "headers", nil)
	bindQueue(t, ch, q, "", hx, amqp.Table{"x-match": "any", "a": "1"})
	bindQueue(t, ch, q, "", hx, amqp.Table{"b": "2"})
	if err := ch.QueueUnbind(q, "", hx, amqp.Table{"x-match": "any", "a": "1"}); err != nil {
		t.Fatal(err)
	}
	p.pub(hx, "", amqp.Publishing{Headers: amqp.Table{"a": "1"}, Body: []byte("a")})
	p.pub(hx, "", amqp.Publishing{Headers: amqp.Table{"b": "2"}, Body: []byte("b")})
	p.wait()
	if got := drainBodies(t, ch, q); !equalStrings(got, []string{"b"}) {
		t.Fatalf("after unbinding the 'a' binding got %q", got)
	}
}

func TestQueueBindMissing(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	missing := uniq(t, "missing")
	err := ch.QueueBind(q, "k", missing, false, nil)
	expectCloseText(t, err, amqp.NotFound, fmt.Sprintf("NOT_FOUND - no exchange '%s' in vhost '/'", missing))
	ch = mustChannel(t, conn)
	err = ch.QueueBind(missing, "k", "amq.direct", false, nil)
	expectCloseText(t, err, amqp.NotFound, fmt.Sprintf("NOT_FOUND - no queue '%s' in vhost '/'", missing))
}

func TestQueueMessageTTL(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, amqp.Table{"x-message-ttl": int32(20)})
	keep := declareQueue(t, b, ch, nil)
	p := newPublisher(t, conn)
	p.body("", q, "expires")
	p.body("", keep, "stays")
	p.pub("", keep, amqp.Publishing{Expiration: "20", Body: []byte("expires too")})
	p.body("", keep, "stays too")
	p.wait()
	waitCount(t, conn, q, 0)
	// a message expires only at the head of its queue on RabbitMQ, so
	// read the live one ahead of the expired one first
	if got := get(t, ch, keep, true); string(got.Body) != "stays" {
		t.Fatalf("got %q", got.Body)
	}
	waitCount(t, conn, keep, 1)
	if got := drainBodies(t, ch, keep); !equalStrings(got, []string{"stays too"}) {
		t.Fatalf("got %q", got)
	}
}

func TestQueueMaxLengthDropHead(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	dlq := declareQueue(t, b, ch, nil)
	q := declareQueue(t, b, ch, amqp.Table{
		"x-max-length": int32(2), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq,
	})
	p := newPublisher(t, conn)
	for i := 1; i <= 5; i++ {
		p.body("", q, fmt.Sprint(i))
	}
	p.wait()
	if got := drainBodies(t, ch, q); !equalStrings(got, []string{"4", "5"}) {
		t.Fatalf("queue kept %q, want the newest two", got)
	}
	waitCount(t, conn, dlq, 3)
	for _, want := range []string{"1", "2", "3"} {
		d := get(t, ch, dlq, true)
		if string(d.Body) != want {
			t.Fatalf("dead-lettered %q, want %q", d.Body, want)
		}
		death := xDeath(t, d)[0]
		if death["reason"] != "maxlen" || death["queue"] != q {
			t.Fatalf("x-death %v", death)
		}
	}
}

func TestQueueMaxLengthRejectPublish(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, amqp.Table{"x-max-length": int32(1), "x-overflow": "reject-publish"})
	pch, confirms := confirmChannel(t, conn, 10)
	publish(t, pch, "", q, "first")
	if c := waitConfirm(t, confirms); c.DeliveryTag != 1 {
		t.Fatalf("confirm %d", c.DeliveryTag)
	}
	// mandatory: the message was routed, so it is nacked, not returned
	returns := pch.NotifyReturn(make(chan amqp.Return, 1))
	if err := pch.Publish("", q, true, false, amqp.Publishing{Body: []byte("second")}); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-confirms:
		if c.Ack || c.DeliveryTag != 2 {
			t.Fatalf("overflowing publish: ack=%v tag %d, want a nack of 2", c.Ack, c.DeliveryTag)
		}
	case <-time.After(waitTimeout):
		t.Fatal("no confirm")
	}
	if len(returns) != 0 {
		r := <-returns
		t.Fatalf("a routed message the queue rejected was returned: %d %q", r.ReplyCode, r.ReplyText)
	}
	if got := drainBodies(t, ch, q); !equalStrings(got, []string{"first"}) {
		t.Fatalf("got %q", got)
	}
}

// TestQueueMaxLengthRejectPublishDLX: reject-publish-dlx nacks what a
// full queue refuses, as reject-publish does, and dead-letters it with
// reason maxlen, as RabbitMQ 3.10 does.
func TestQueueMaxLengthRejectPublishDLX(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	dlq := declareQueue(t, b, ch, nil)
	q := declareQueue(t, b, ch, amqp.Table{
		"x-max-length": int32(1), "x-overflow": "reject-publish-dlx",
		"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq,
	})
	pch, confirms := confirmChannel(t, conn, 10)
	for i := range 3 {
		publishMsg(t, pch, "", q, amqp.Publishing{Body: []byte(fmt.Sprint(i)), Headers: amqp.Table{"n": int32(i)}})
	}
	for i := range 3 {
		select {
		case c := <-confirms:
			if c.DeliveryTag != uint64(i+1) || c.Ack != (i == 0) {
				t.Fatalf("confirm %d: ack=%v; want tag %d acked only if first", c.DeliveryTag, c.Ack, i+1)
			}
		case <-time.After(waitTimeout):
			t.Fatal("no confirm")
		}
	}
	if got := drainBodies(t, ch, q); !equalStrings(got, []string{"0"}) {
		t.Fatalf("queue kept %q, want the first", got)
	}
	waitCount(t, conn, dlq, 2)
	for i := 1; i <= 2; i++ {
		d := get(t, ch, dlq, true)
		if string(d.Body) != fmt.Sprint(i) || d.Headers["n"] != int32(i) {
			t.Fatalf("dead-lettered %q with headers %v, want %d", d.Body, d.Headers, i)
		}
		if death := xDeath(t, d)[0]; death["reason"] != "maxlen" || death["queue"] != q {
			t.Fatalf("x-death %v", death)
		}
	}
}

func TestQueueMessageTTLZero(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, amqp.Table{"x-message-ttl": int32(0)})
	plain := declareQueue(t, b, ch, nil)
	// with no consumer a TTL of 0 drops the message at once
	p := newPublisher(t, conn)
	p.body("", q, "dropped")
	p.pub("", plain, amqp.Publishing{Expiration: "0", Body: []byte("dropped too")})
	p.wait()
	waitCount(t, conn, q, 0)
	waitCount(t, conn, plain, 0)

	// but a consumer that can take it now gets it: "now or never"
	cch := mustChannel(t, conn)
	m1 := consume(t, cch, q, false)
	m2 := consume(t, cch, plain, false)
	p.body("", q, "now")
	p.pub("", plain, amqp.Publishing{Expiration: "0", Body: []byte("now too")})
	p.wait()
	if d := recv(t, m1); string(d.Body) != "now" {
		t.Fatalf("got %q", d.Body)
	}
	if d := recv(t, m2); string(d.Body) != "now too" || d.Expiration != "0" {
		t.Fatalf("got %q expiration %q", d.Body, d.Expiration)
	}
}

// xDeath returns a delivery's x-death header, failing if it is malformed.
func xDeath(t *testing.T, d amqp.Delivery) []amqp.Table {
	t.Helper()
	raw, ok := d.Headers["x-death"].([]any)
	if !ok {
		t.Fatalf("x-death header %T %v, want an array", d.Headers["x-death"], d.Headers["x-death"])
	}
	var out []amqp.Table
	for _, v := range raw {
		tb, ok := v.(amqp.Table)
		if !ok {
			t.Fatalf("x-death element %T, want a table", v)
		}
		out = append(out, tb)
	}
	return out
}

func TestDeadLetterOnReject(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	src := declareExchange(t, b, ch, "direct", nil)
	dlx := declareExchange(t, b, ch, "direct", nil)
	dlq := declareQueue(t, b, ch, nil)
	bindQueue(t, ch, dlq, "dead", dlx, nil)
	q := declareQueue(t, b, ch, amqp.Table{"x-dead-letter-exchange": dlx, "x-dead-letter-routing-key": "dead"})
	bindQueue(t, ch, q, "orig", src, nil)

	p := newPublisher(t, conn)
	p.pub(src, "orig", amqp.Publishing{Headers: amqp.Table{"h": "v"}, MessageId: "m1", Body: []byte("body")})
	p.wait()
	d := get(t, ch, q, false)
	if err := d.Reject(false); err != nil {
		t.Fatal(err)
	}
	waitCount(t, conn, dlq, 1)
	dl := get(t, ch, dlq, true)
	if string(dl.Body) != "body" || dl.MessageId != "m1" || dl.Headers["h"] != "v" {
		t.Fatalf("dead-lettered message changed: body %q id %q headers %v", dl.Body, dl.MessageId, dl.Headers)
	}
	if dl.Exchange != dlx || dl.RoutingKey != "dead" {
		t.Fatalf("dead-lettered via %q with key %q, want %q and \"dead\"", dl.Exchange, dl.RoutingKey, dlx)
	}
	deaths := xDeath(t, dl)
	if len(deaths) != 1 {
		t.Fatalf("x-death has %d entries, want 1", len(deaths))
	}
	death := deaths[0]
	if death["count"] != int64(1) || death["reason"] != "rejected" || death["queue"] != q || death["exchange"] != src {
		t.Fatalf("x-death %v", death)
	}
	keys, ok := death["routing-keys"].([]any)
	if !ok || len(keys) != 1 || keys[0] != "orig" {
		t.Fatalf("x-death routing-keys %#v, want [orig]", death["routing-keys"])
	}
	if _, ok := death["time"].(time.Time); !ok {
		t.Fatalf("x-death time %T, want a timestamp", death["time"])
	}
	if dl.Headers["x-first-death-queue"] != q || dl.Headers["x-first-death-reason"] != "rejected" || dl.Headers["x-first-death-exchange"] != src {
		t.Fatalf("x-first-death headers: %v", dl.Headers)
	}

	// nack without requeue dead-letters too; with requeue it does not
	p.body(src, "orig", "n1")
	p.body(src, "orig", "n2")
	p.body(src, "orig", "n3")
	p.wait()
	get(t, ch, q, false)
	get(t, ch, q, false)
	last := get(t, ch, q, false)
	if err := last.Nack(true, false); err != nil {
		t.Fatal(err)
	}
	waitCount(t, conn, dlq, 3)
	if got := drainBodies(t, ch, dlq); !equalStrings(got, []string{"n1", "n2", "n3"}) {
		t.Fatalf("dead-lettered %q", got)
	}
}

func TestDeadLetterCycleCounts(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	qa, qb := uniq(t, "qa"), uniq(t, "qb")
	cleanupRef(t, b, []string{qa, qb}, nil)
	// qa and qb dead-letter into each other through the default exchange
	if _, err := ch.QueueDeclare(qa, false, false, false, false, amqp.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": qb}); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(qb, false, false, false, false, amqp.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": qa}); err != nil {
		t.Fatal(err)
	}
	p := newPublisher(t, conn)
	p.body("", qa, "ping")
	p.wait()
	for _, from := range []string{qa, qb, qa} {
		waitCount(t, conn, from, 1)
		if err := get(t, ch, from, false).Reject(false); err != nil {
			t.Fatal(err)
		}
	}
	waitCount(t, conn, qb, 1)
	d := get(t, ch, qb, true)
	deaths := xDeath(t, d)
	if len(deaths) != 2 {
		t.Fatalf("x-death has %d entries, want 2: %v", len(deaths), deaths)
	}
	// the most recent death first: qa, now counted twice
	if deaths[0]["queue"] != qa || deaths[0]["count"] != int64(2) || deaths[1]["queue"] != qb || deaths[1]["count"] != int64(1) {
		t.Fatalf("x-death %v", deaths)
	}
	if d.Headers["x-first-death-queue"] != qa {
		t.Fatalf("x-first-death-queue %v", d.Headers["x-first-death-queue"])
	}
}

func TestDeadLetterExpired(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	dlq := declareQueue(t, b, ch, nil)
	q := declareQueue(t, b, ch, amqp.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq})
	p := newPublisher(t, conn)
	p.pub("", q, amqp.Publishing{Expiration: "5", Body: []byte("short-lived")})
	p.wait()
	waitCount(t, conn, dlq, 1)
	d := get(t, ch, dlq, true)
	if d.Expiration != "" {
		t.Fatalf("dead-lettered message kept expiration %q", d.Expiration)
	}
	death := xDeath(t, d)[0]
	if death["reason"] != "expired" || death["original-expiration"] != "5" || death["queue"] != q {
		t.Fatalf("x-death %v", death)
	}
	// no routing key override given: the original keys are used
	q2 := declareQueue(t, b, ch, amqp.Table{"x-dead-letter-exchange": "amq.fanout", "x-message-ttl": int32(5)})
	fq := declareQueue(t, b, ch, nil)
	bindQueue(t, ch, fq, "", "amq.fanout", nil)
	p.body("", q2, "ttl")
	p.wait()
	waitCount(t, conn, fq, 1)
	d = get(t, ch, fq, true)
	if d.RoutingKey != q2 || d.Exchange != "amq.fanout" {
		t.Fatalf("dead-lettered with exchange %q key %q, want amq.fanout and %q", d.Exchange, d.RoutingKey, q2)
	}
}

func TestDeadLetterCycleDropped(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	// qa and qb expire into each other through fanouts that also copy to
	// an audit queue each: qa → qb (+auditA) → qa (+auditB). The second
	// hop closes a cycle with no rejection in it, so RabbitMQ drops the
	// message there instead of bouncing it for ever.
	fa, fb := declareExchange(t, b, ch, "fanout", nil), declareExchange(t, b, ch, "fanout", nil)
	qa := declareQueue(t, b, ch, amqp.Table{"x-message-ttl": int32(50), "x-dead-letter-exchange": fa})
	qb := declareQueue(t, b, ch, amqp.Table{"x-message-ttl": int32(50), "x-dead-letter-exchange": fb})
	auditA, auditB := declareQueue(t, b, ch, nil), declareQueue(t, b, ch, nil)
	bindQueue(t, ch, qb, "", fa, nil)
	bindQueue(t, ch, auditA, "", fa, nil)
	bindQueue(t, ch, qa, "", fb, nil)
	bindQueue(t, ch, auditB, "", fb, nil)
	p := newPublisher(t, conn)
	p.body("", qa, "ping")
	p.wait()
	// A bouncing message is in qa or qb all the time and adds to the audit
	// counts every hop, so this state, read in this order, is never seen.
	checkFor(t, waitTimeout, func() bool {
		return messageCount(t, conn, auditA) == 1 && messageCount(t, conn, auditB) == 1 &&
			messageCount(t, conn, qa) == 0 && messageCount(t, conn, qb) == 0
	})
	d := get(t, ch, auditB, true)
	deaths := xDeath(t, d)
	if len(deaths) != 2 || deaths[0]["queue"] != qb || deaths[1]["queue"] != qa || deaths[0]["reason"] != "expired" {
		t.Fatalf("x-death %v", deaths)
	}
}

func TestQueueExpires(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, amqp.Table{"x-expires": int32(100)})
	// in use by a consumer, it stays: a passive declare after consume-ok
	// and a round trip after the lease would have run out still finds it
	cch := mustChannel(t, conn)
	if _, err := cch.Consume(q, "c", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	p := newPublisher(t, conn)
	p.body("", q, "kept")
	p.wait()
	if st, err := ch.QueueDeclarePassive(q, false, false, false, false, nil); err != nil || st.Consumers != 1 {
		t.Fatalf("passive declare: %v, %+v", err, st)
	}
	// unused, it goes, messages and all
	if err := cch.Cancel("c", false); err != nil {
		t.Fatal(err)
	}
	// polling with declare would renew the lease: publish mandatory until
	// the message comes back unroutable instead
	pch, confirms := confirmChannel(t, conn, 1)
	returns := pch.NotifyReturn(make(chan amqp.Return, 1))
	unroutable := func(q string) func() bool {
		return func() bool {
			if err := pch.Publish("", q, true, false, amqp.Publishing{Body: []byte("probe")}); err != nil {
				t.Fatal(err)
			}
			waitConfirm(t, confirms) // a return comes before the ack
			select {
			case r := <-returns:
				return r.RoutingKey == q
			default:
				return false
			}
		}
	}
	checkFor(t, waitTimeout, unroutable(q))
	queueGone(t, conn, q)

	// and one never used goes too
	q2 := declareQueue(t, b, ch, amqp.Table{"x-expires": int32(50)})
	checkFor(t, waitTimeout, unroutable(q2))
}

// TestPriorityQueue: x-max-priority delivers the highest priority first,
// in publish order within one; a priority above the maximum counts as the
// maximum and a message without one as 0; requeued messages go back to
// their place; drop-head drops the highest priority's head (as RabbitMQ
// 3.10 does), and a queue declared with 0 has no priorities.
func TestPriorityQueue(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, amqp.Table{"x-max-priority": int32(10)})
	p := newPublisher(t, conn)
	for _, pr := range []uint8{1, 5, 0, 9, 5, 20} {
		p.pub("", q, amqp.Publishing{Priority: pr, Body: []byte(fmt.Sprint(pr))})
	}
	p.body("", q, "none")
	p.wait()
	first, second := get(t, ch, q, false), get(t, ch, q, false)
	if string(first.Body) != "20" || string(second.Body) != "9" {
		t.Fatalf("got %q and %q first, want 20 and 9", first.Body, second.Body)
	}
	if err := second.Nack(true, true); err != nil { // both back
		t.Fatal(err)
	}
	// highest first, FIFO within a priority; 20 counts as the maximum, 10
	if got := drainBodies(t, ch, q); !equalStrings(got, []string{"20", "9", "5", "5", "1", "0", "none"}) {
		t.Fatalf("got %q", got)
	}

	dlq := declareQueue(t, b, ch, nil)
	capped := declareQueue(t, b, ch, amqp.Table{
		"x-max-priority": int32(5), "x-max-length": int32(2),
		"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq,
	})
	for _, pr := range []uint8{1, 5, 3} {
		p.pub("", capped, amqp.Publishing{Priority: pr, Body: []byte(fmt.Sprint(pr))})
	}
	p.wait()
	if got := drainBodies(t, ch, capped); !equalStrings(got, []string{"3", "1"}) {
		t.Fatalf("a full priority queue kept %q, want 3 and 1", got)
	}
	waitCount(t, conn, dlq, 1)
	if got := drainBodies(t, ch, dlq); !equalStrings(got, []string{"5"}) {
		t.Fatalf("dropped %q, want 5", got)
	}

	plain := declareQueue(t, b, ch, amqp.Table{"x-max-priority": int32(0)})
	for _, pr := range []uint8{0, 3, 1} {
		p.pub("", plain, amqp.Publishing{Priority: pr, Body: []byte(fmt.Sprint(pr))})
	}
	p.wait()
	if got := drainBodies(t, ch, plain); !equalStrings(got, []string{"0", "3", "1"}) {
		t.Fatalf("x-max-priority 0 gave %q, want publish order", got)
	}
}

// TestSingleActiveConsumer: on a queue declared with
// x-single-active-consumer, only the first consumer subscribed gets
// messages, even when a later one has a higher priority and the first has
// its prefetch full; basic.get still works; when the first one's
// connection closes, the next takes over with its unacked messages first,
// redelivered, then the rest, in queue order; an exclusive consumer is
// refused with 403, as RabbitMQ 3.10 does.
func TestSingleActiveConsumer(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, amqp.Table{"x-single-active-consumer": true})
	connA := dial(t, b.URL)
	chA := mustChannel(t, connA)
	if err := chA.Qos(2, 0, false); err != nil {
		t.Fatal(err)
	}
	mA, err := chA.Consume(q, "first", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	chB := mustChannel(t, conn)
	mB, err := chB.Consume(q, "second", false, false, false, false, amqp.Table{"x-priority": int32(10)})
	if err != nil {
		t.Fatal(err)
	}
	p := newPublisher(t, conn)
	for i := range 5 {
		p.body("", q, fmt.Sprint(i))
	}
	p.wait()
	if got := recvBodies(t, mA, 2); !equalStrings(got, []string{"0", "1"}) {
		t.Fatalf("first consumer got %q", got)
	}
	// Confirmed, so routed: three are ready, none went to the second.
	info, err := ch.QueueDeclarePassive(q, false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if info.Messages != 3 || info.Consumers != 2 {
		t.Fatalf("declare-ok: %d ready, %d consumers; want 3 and 2", info.Messages, info.Consumers)
	}
	expectNoBuffered(t, mB)
	if d := get(t, ch, q, false); string(d.Body) != "2" {
		t.Fatalf("basic.get got %q, want 2", d.Body)
	} else if err := d.Nack(false, true); err != nil {
		t.Fatal(err)
	}
	syncChannel(t, ch, q) // the nack is in before the close below

	if err := connA.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		d := recv(t, mB)
		if string(d.Body) != fmt.Sprint(i) || d.Redelivered != (i < 3) {
			t.Fatalf("second consumer's delivery %d: %q redelivered=%v", i, d.Body, d.Redelivered)
		}
		if err := d.Ack(false); err != nil {
			t.Fatal(err)
		}
	}

	_, err = mustChannel(t, conn).Consume(q, "x", false, true, false, false, nil)
	expectCloseText(t, err, amqp.AccessRefused, fmt.Sprintf("ACCESS_REFUSED - queue '%s' in vhost '/' in exclusive use", q))
}

// TestSingleActiveConsumerCancel: when the active consumer cancels, the
// next one subscribed takes over.
func TestSingleActiveConsumerCancel(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, amqp.Table{"x-single-active-consumer": true})
	c1, c2 := mustChannel(t, conn), mustChannel(t, conn)
	if _, err := c1.Consume(q, "first", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	m2, err := c2.Consume(q, "second", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := newPublisher(t, conn)
	for i := range 4 {
		p.body("", q, fmt.Sprint(i))
	}
	p.wait()
	waitCount(t, conn, q, 0)
	expectNoBuffered(t, m2)
	// the first consumer goes: the second takes over
	if err := c1.Cancel("first", false); err != nil {
		t.Fatal(err)
	}
	p.body("", q, "after")
	p.wait()
	if d := recv(t, m2); string(d.Body) != "after" {
		t.Fatalf("got %q", d.Body)
	}
}

// TestQuorumQueueDeclare: a quorum or stream queue must be durable and
// neither exclusive nor auto-delete; a quorum queue takes no
// x-max-priority and a classic one no x-delivery-limit; each refused with
// RabbitMQ 3.10's 406.
func TestQuorumQueueDeclare(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	for _, c := range []struct {
		durable, exclusive, autoDelete bool
		args                           amqp.Table
		want                           string // "" for accepted; else the text after "PRECONDITION_FAILED - "
	}{
		{true, false, false, amqp.Table{"x-queue-type": "quorum", "x-delivery-limit": int32(3)}, ""},
		{false, false, false, amqp.Table{"x-queue-type": "quorum"}, "invalid property 'non-durable' for queue 'Q' in vhost '/'"},
		{true, true, false, amqp.Table{"x-queue-type": "quorum"}, "invalid property 'exclusive-owner' for queue 'Q' in vhost '/'"},
		{true, false, true, amqp.Table{"x-queue-type": "quorum"}, "invalid property 'auto-delete' for queue 'Q' in vhost '/'"},
		{false, false, false, amqp.Table{"x-queue-type": "stream"}, "invalid property 'non-durable' for queue 'Q' in vhost '/'"},
		{true, false, false, amqp.Table{"x-queue-type": "quorum", "x-max-priority": int32(5)}, "invalid arg 'x-max-priority' for queue 'Q' in vhost '/' of queue type rabbit_quorum_queue"},
		{true, false, false, amqp.Table{"x-delivery-limit": int32(2)}, "invalid arg 'x-delivery-limit' for queue 'Q' in vhost '/' of queue type rabbit_classic_queue"},
	} {
		name := uniq(t, "qq")
		ch := mustChannel(t, conn)
		_, err := ch.QueueDeclare(name, c.durable, c.autoDelete, c.exclusive, false, c.args)
		if c.want == "" {
			if err != nil {
				t.Errorf("%v: %v", c.args, err)
			}
			cleanupRef(t, b, []string{name}, nil)
			continue
		}
		expectCloseText(t, err, amqp.PreconditionFailed, "PRECONDITION_FAILED - "+strings.ReplaceAll(c.want, "'Q'", "'"+name+"'"))
	}
}

// TestQuorumQueueDeliveryLimit: a quorum queue's deliveries carry
// x-delivery-count, the times the message was returned before; past
// x-delivery-limit returns it is dead-lettered with reason delivery_limit,
// its headers as published, as RabbitMQ 3.10 does.
func TestQuorumQueueDeliveryLimit(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	dlq := declareQueue(t, b, ch, nil)
	q := uniq(t, "quorum")
	if _, err := ch.QueueDeclare(q, true, false, false, false, amqp.Table{
		"x-queue-type": "quorum", "x-delivery-limit": int32(2),
		"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq,
	}); err != nil {
		t.Fatal(err)
	}
	cleanupRef(t, b, []string{q}, nil)
	p := newPublisher(t, conn)
	p.pub("", q, amqp.Publishing{Body: []byte("poison"), Headers: amqp.Table{"app": "x"}})
	p.wait()
	for i := range 3 {
		waitCount(t, conn, q, 1)
		d := get(t, ch, q, false)
		if n, ok := d.Headers["x-delivery-count"].(int64); !ok || n != int64(i) || d.Headers["app"] != "x" || d.Redelivered != (i > 0) {
			t.Fatalf("delivery %d: headers %v (%T), redelivered %v", i, d.Headers, d.Headers["x-delivery-count"], d.Redelivered)
		}
		if err := d.Nack(false, true); err != nil {
			t.Fatal(err)
		}
	}
	waitCount(t, conn, dlq, 1)
	waitCount(t, conn, q, 0)
	d := get(t, ch, dlq, true)
	if _, ok := d.Headers["x-delivery-count"]; ok || d.Headers["app"] != "x" {
		t.Fatalf("dead-lettered with headers %v", d.Headers)
	}
	if death := xDeath(t, d)[0]; death["reason"] != "delivery_limit" || death["queue"] != q {
		t.Fatalf("x-death %v", death)
	}

	// A no-ack consumer's deliveries carry no count; a no-ack get's do.
	p.body("", q, "a")
	p.body("", q, "b")
	p.wait()
	if d := get(t, ch, q, true); d.Headers["x-delivery-count"] != int64(0) {
		t.Fatalf("no-ack get: headers %v", d.Headers)
	}
	if d := recv(t, consume(t, ch, q, true)); d.Headers != nil && d.Headers["x-delivery-count"] != nil {
		t.Fatalf("no-ack consumer: headers %v", d.Headers)
	}
}
