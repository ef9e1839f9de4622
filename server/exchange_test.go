package server_test

import (
	"fmt"
	"slices"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestDirectExchangeRouting(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	x := declareExchange(t, b, ch, "direct", nil)
	qa, qb, qa2 := declareQueue(t, b, ch, nil), declareQueue(t, b, ch, nil), declareQueue(t, b, ch, nil)
	bindQueue(t, ch, qa, "a", x, nil)
	bindQueue(t, ch, qb, "b", x, nil)
	bindQueue(t, ch, qa2, "a", x, nil)
	bindQueue(t, ch, qa2, "b", x, nil)
	bindQueue(t, ch, qa2, "a", x, nil) // a repeated bind is idempotent

	p := newPublisher(t, conn)
	for _, key := range []string{"a", "b", "c", "A", "a"} {
		p.body(x, key, key)
	}
	p.wait()
	for q, want := range map[string][]string{qa: {"a", "a"}, qb: {"b"}, qa2: {"a", "b", "a"}} {
		if got := drainBodies(t, ch, q); !equalStrings(got, want) {
			t.Errorf("queue %s got %q, want %q", q, got, want)
		}
	}
}

func TestFanoutExchangeRouting(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	x := declareExchange(t, b, ch, "fanout", nil)
	q1, q2, unbound := declareQueue(t, b, ch, nil), declareQueue(t, b, ch, nil), declareQueue(t, b, ch, nil)
	bindQueue(t, ch, q1, "", x, nil)
	bindQueue(t, ch, q2, "ignored", x, nil)
	bindQueue(t, ch, q2, "twice", x, nil) // two bindings, one copy

	p := newPublisher(t, conn)
	p.body(x, "anything", "m1")
	p.body(x, "", "m2")
	p.wait()
	for _, q := range []string{q1, q2} {
		if got := drainBodies(t, ch, q); !equalStrings(got, []string{"m1", "m2"}) {
			t.Errorf("queue %s got %q, want [m1 m2]", q, got)
		}
	}
	if got := drainBodies(t, ch, unbound); len(got) != 0 {
		t.Errorf("unbound queue got %q", got)
	}
}

func TestTopicExchangeRouting(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	x := declareExchange(t, b, ch, "topic", nil)
	keys := []string{"a", "b", "a.b", "a.b.c", "a.x.b", "x.y.b", "a.b.c.d", "lazy",
		"lazy.orange.rabbit", "quick.orange.rabbit", "quick.orange.fox", "quick.brown.fox", ""}
	cases := []struct {
		pattern string
		want    []string
	}{
		{"*.orange.*", []string{"lazy.orange.rabbit", "quick.orange.rabbit", "quick.orange.fox"}},
		{"*.*.rabbit", []string{"lazy.orange.rabbit", "quick.orange.rabbit"}},
		{"lazy.#", []string{"lazy", "lazy.orange.rabbit"}}, // # matches zero words
		{"#", keys},
		{"a.#.b", []string{"a.b", "a.x.b"}},
		{"#.b", []string{"b", "a.b", "a.x.b", "x.y.b"}},
		{"a.#", []string{"a", "a.b", "a.b.c", "a.x.b", "a.b.c.d"}},
		{"a.*", []string{"a.b"}},
		{"*", []string{"a", "b", "lazy"}}, // an empty key has no word
		{"*.*", []string{"a.b"}},
		{"#.#", keys},
		{"a.*.#", []string{"a.b", "a.b.c", "a.x.b", "a.b.c.d"}},
		{"a.b.c", []string{"a.b.c"}},
		{"", []string{""}},
	}
	queues := make([]string, len(cases))
	for i, c := range cases {
		queues[i] = declareQueue(t, b, ch, nil)
		bindQueue(t, ch, queues[i], c.pattern, x, nil)
	}
	p := newPublisher(t, conn)
	for _, k := range keys {
		p.body(x, k, k)
	}
	p.wait()
	for i, c := range cases {
		if got := drainBodies(t, ch, queues[i]); !equalStrings(got, c.want) {
			t.Errorf("pattern %q got %q, want %q", c.pattern, got, c.want)
		}
	}
}

func TestHeadersExchangeRouting(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	x := declareExchange(t, b, ch, "headers", nil)
	bindings := []struct {
		name string
		args amqp.Table
	}{
		{"all", amqp.Table{"x-match": "all", "a": "1", "b": "2"}},
		{"any", amqp.Table{"x-match": "any", "a": "1", "b": "2"}},
		{"default-all", amqp.Table{"a": "1"}},
		{"all-with-x", amqp.Table{"x-match": "all-with-x", "x-k": "v", "a": "1"}},
		{"any-with-x", amqp.Table{"x-match": "any-with-x", "x-k": "v"}},
		{"all-ignores-x", amqp.Table{"x-match": "all", "x-k": "v"}},
		{"any-ignores-x", amqp.Table{"x-match": "any", "x-k": "v", "a": "1"}},
		{"int", amqp.Table{"n": int32(5)}},
		{"empty", amqp.Table{}},
	}
	messages := []struct {
		body    string
		headers amqp.Table
	}{
		{"ab", amqp.Table{"a": "1", "b": "2"}},
		{"a", amqp.Table{"a": "1"}},
		{"xa", amqp.Table{"x-k": "v", "a": "1"}},
		{"x", amqp.Table{"x-k": "v"}},
		{"none", nil},
		{"b-a-wrong", amqp.Table{"a": "2", "b": "2"}},
		{"n5", amqp.Table{"n": int32(5)}},
		{"n6", amqp.Table{"n": int32(6)}},
	}
	want := map[string][]string{
		"all":           {"ab"},
		"any":           {"ab", "a", "xa", "b-a-wrong"},
		"default-all":   {"ab", "a", "xa"},
		"all-with-x":    {"xa"},
		"any-with-x":    {"xa", "x"},
		"all-ignores-x": {"ab", "a", "xa", "x", "none", "b-a-wrong", "n5", "n6"},
		"any-ignores-x": {"ab", "a", "xa"},
		"int":           {"n5"},
		"empty":         {"ab", "a", "xa", "x", "none", "b-a-wrong", "n5", "n6"},
	}
	queues := map[string]string{}
	for _, bd := range bindings {
		queues[bd.name] = declareQueue(t, b, ch, nil)
		bindQueue(t, ch, queues[bd.name], "ignored", x, bd.args)
	}
	p := newPublisher(t, conn)
	for _, m := range messages {
		p.pub(x, "", amqp.Publishing{Headers: m.headers, Body: []byte(m.body)})
	}
	p.wait()
	for _, bd := range bindings {
		if got := drainBodies(t, ch, queues[bd.name]); !equalStrings(got, want[bd.name]) {
			t.Errorf("binding %s %v got %q, want %q", bd.name, bd.args, got, want[bd.name])
		}
	}
}

func TestHeadersBindingInvalidXMatch(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	err := ch.QueueBind(q, "", "amq.headers", false, amqp.Table{"x-match": "some"})
	expectClose(t, err, amqp.PreconditionFailed)
}

func TestPredeclaredExchanges(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	for _, x := range []struct{ name, kind string }{
		{"amq.direct", "direct"}, {"amq.fanout", "fanout"}, {"amq.topic", "topic"},
		{"amq.headers", "headers"}, {"amq.match", "headers"},
	} {
		if err := ch.ExchangeDeclarePassive(x.name, x.kind, true, false, false, false, nil); err != nil {
			t.Fatalf("passive declare %s: %v", x.name, err)
		}
	}
	q := declareQueue(t, b, ch, nil)
	bindQueue(t, ch, q, "k", "amq.direct", nil)
	bindQueue(t, ch, q, "", "amq.fanout", nil)
	bindQueue(t, ch, q, "t.*", "amq.topic", nil)
	bindQueue(t, ch, q, "", "amq.headers", amqp.Table{"h": "1"})
	bindQueue(t, ch, q, "", "amq.match", amqp.Table{"m": "1"})
	p := newPublisher(t, conn)
	p.body("amq.direct", "k", "direct")
	p.body("amq.direct", "other", "lost")
	p.body("amq.fanout", "x", "fanout")
	p.body("amq.topic", "t.1", "topic")
	p.pub("amq.headers", "", amqp.Publishing{Headers: amqp.Table{"h": "1"}, Body: []byte("headers")})
	p.pub("amq.match", "", amqp.Publishing{Headers: amqp.Table{"m": "1"}, Body: []byte("match")})
	p.body("", q, "default") // the default exchange routes by queue name
	p.body("", "no-such-queue", "lost")
	p.wait()
	want := []string{"direct", "fanout", "topic", "headers", "match", "default"}
	if got := drainBodies(t, ch, q); !equalStrings(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestDefaultExchangeRestrictions(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)

	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	err := ch.QueueBind(q, q, "", false, nil)
	expectCloseText(t, err, amqp.AccessRefused, "ACCESS_REFUSED - operation not permitted on the default exchange")

	ch = mustChannel(t, conn)
	err = ch.ExchangeDelete("", false, false)
	expectCloseText(t, err, amqp.AccessRefused, "ACCESS_REFUSED - operation not permitted on the default exchange")

	ch = mustChannel(t, conn)
	err = ch.ExchangeDeclarePassive("", "direct", true, false, false, false, nil)
	expectCloseText(t, err, amqp.AccessRefused, "ACCESS_REFUSED - operation not permitted on the default exchange")
}

func TestExchangeDeclarePassive(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	x := declareExchange(t, b, ch, "topic", nil)
	// passive ignores the other fields: a different type is fine
	if err := ch.ExchangeDeclarePassive(x, "fanout", true, true, false, false, nil); err != nil {
		t.Fatalf("passive declare of an existing exchange: %v", err)
	}
	missing := uniq(t, "missing")
	err := ch.ExchangeDeclarePassive(missing, "direct", false, false, false, false, nil)
	expectCloseText(t, err, amqp.NotFound, fmt.Sprintf("NOT_FOUND - no exchange '%s' in vhost '/'", missing))
	if err := ch.ExchangeDeclarePassive(x, "topic", false, false, false, false, nil); err != amqp.ErrClosed {
		t.Fatalf("channel still usable after 404: %v", err)
	}
}

func TestExchangeRedeclare(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	x := declareExchange(t, b, ch, "direct", nil)
	if err := ch.ExchangeDeclare(x, "direct", false, false, false, false, nil); err != nil {
		t.Fatalf("equivalent redeclare: %v", err)
	}

	err := ch.ExchangeDeclare(x, "fanout", false, false, false, false, nil)
	expectCloseText(t, err, amqp.PreconditionFailed, fmt.Sprintf("PRECONDITION_FAILED - inequivalent arg 'type' for exchange '%s' in vhost '/': received 'fanout' but current is 'direct'", x))
	if err := ch.ExchangeDeclarePassive(x, "direct", false, false, false, false, nil); err != amqp.ErrClosed {
		t.Fatalf("channel still usable after 406: %v", err)
	}

	ch = mustChannel(t, conn)
	err = ch.ExchangeDeclare(x, "direct", true, false, false, false, nil)
	expectCloseText(t, err, amqp.PreconditionFailed, fmt.Sprintf("PRECONDITION_FAILED - inequivalent arg 'durable' for exchange '%s' in vhost '/': received 'true' but current is 'false'", x))

	ch = mustChannel(t, conn)
	err = ch.ExchangeDeclare(x, "direct", false, true, false, false, nil)
	expectClose(t, err, amqp.PreconditionFailed)

	// the exchange is unchanged and the connection is fine
	ch = mustChannel(t, conn)
	if err := ch.ExchangeDeclare(x, "direct", false, false, false, false, nil); err != nil {
		t.Fatalf("equivalent redeclare after the failures: %v", err)
	}
}

func TestExchangeDeclareReservedName(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	err := ch.ExchangeDeclare("amq.foo", "direct", true, false, false, false, nil)
	expectCloseText(t, err, amqp.AccessRefused, "ACCESS_REFUSED - exchange name 'amq.foo' contains reserved prefix 'amq.*'")

	// an equivalent declare of a predeclared exchange is fine, as in RabbitMQ;
	// an inequivalent one is a 406 like any other
	ch = mustChannel(t, conn)
	if err := ch.ExchangeDeclare("amq.direct", "direct", true, false, false, false, nil); err != nil {
		t.Fatalf("equivalent declare of amq.direct: %v", err)
	}
	err = ch.ExchangeDeclare("amq.direct", "fanout", true, false, false, false, nil)
	expectCloseText(t, err, amqp.PreconditionFailed, "PRECONDITION_FAILED - inequivalent arg 'type' for exchange 'amq.direct' in vhost '/': received 'fanout' but current is 'direct'")

	for _, name := range []string{"amq.direct", "amq.foo"} {
		ch = mustChannel(t, conn)
		err = ch.ExchangeDelete(name, false, false)
		expectCloseText(t, err, amqp.AccessRefused, fmt.Sprintf("ACCESS_REFUSED - deletion of system exchange '%s' in vhost '/' not allowed", name))
	}
	ch = mustChannel(t, conn)
	if err := ch.ExchangeDeclarePassive("amq.direct", "direct", true, false, false, false, nil); err != nil {
		t.Fatalf("amq.direct gone after a refused delete: %v", err)
	}
}

func TestExchangeDeclareUnknownType(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	ch := mustChannel(t, conn)
	name := uniq(t, "x")
	cleanupRef(t, b, nil, []string{name})
	err := ch.ExchangeDeclare(name, "no-such-type", false, false, false, false, nil)
	expectCloseText(t, err, amqp.CommandInvalid, "COMMAND_INVALID - unknown exchange type 'no-such-type'")
	cerr := waitClose(t, closed)
	if cerr.Code != amqp.CommandInvalid {
		t.Fatalf("connection closed with %d %q, want 503", cerr.Code, cerr.Reason)
	}
	if !conn.IsClosed() {
		t.Fatal("connection still open after a 503")
	}
}

func TestExchangeDelete(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	x := declareExchange(t, b, ch, "fanout", nil)
	q := declareQueue(t, b, ch, nil)
	bindQueue(t, ch, q, "", x, nil)

	err := ch.ExchangeDelete(x, true, false)
	expectCloseText(t, err, amqp.PreconditionFailed, fmt.Sprintf("PRECONDITION_FAILED - exchange '%s' in vhost '/' in use", x))

	ch = mustChannel(t, conn)
	if err := ch.QueueUnbind(q, "", x, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDelete(x, true, false); err != nil {
		t.Fatalf("if-unused delete of an unbound exchange: %v", err)
	}
	exchangeGone(t, conn, x)

	// deleting a missing exchange succeeds, as in RabbitMQ 3.x
	if err := ch.ExchangeDelete(uniq(t, "missing"), false, false); err != nil {
		t.Fatalf("delete of a missing exchange: %v", err)
	}

	// deleting a bound exchange removes its bindings
	x2 := declareExchange(t, b, ch, "fanout", nil)
	bindQueue(t, ch, q, "", x2, nil)
	if err := ch.ExchangeDelete(x2, false, false); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare(x2, "fanout", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	p := newPublisher(t, conn)
	p.body(x2, "", "after")
	p.wait()
	if n := messageCount(t, conn, q); n != 0 {
		t.Fatalf("a recreated exchange kept the old bindings: queue holds %d", n)
	}
}

func TestAutoDeleteExchange(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	x := uniq(t, "x")
	cleanupRef(t, b, nil, []string{x})
	if err := ch.ExchangeDeclare(x, "direct", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	q := declareQueue(t, b, ch, nil)
	bindQueue(t, ch, q, "k1", x, nil)
	bindQueue(t, ch, q, "k2", x, nil)

	if err := ch.QueueUnbind(q, "k1", x, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclarePassive(x, "direct", false, true, false, false, nil); err != nil {
		t.Fatalf("auto-delete exchange gone while it still has a binding: %v", err)
	}
	if err := ch.QueueUnbind(q, "k2", x, nil); err != nil {
		t.Fatal(err)
	}
	exchangeGone(t, conn, x)

	// an auto-delete exchange goes too when its last bound queue is deleted
	if err := ch.ExchangeDeclare(x, "fanout", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	bindQueue(t, ch, q, "", x, nil)
	if _, err := ch.QueueDelete(q, false, false, false); err != nil {
		t.Fatal(err)
	}
	exchangeGone(t, conn, x)

	// and one that never had a binding stays
	if err := ch.ExchangeDeclare(x, "fanout", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclarePassive(x, "fanout", false, true, false, false, nil); err != nil {
		t.Fatalf("unbound auto-delete exchange removed: %v", err)
	}
}

func TestInternalExchange(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	internal := uniq(t, "internal")
	cleanupRef(t, b, nil, []string{internal})
	if err := ch.ExchangeDeclare(internal, "fanout", false, false, true, false, nil); err != nil {
		t.Fatal(err)
	}
	q := declareQueue(t, b, ch, nil)
	bindQueue(t, ch, q, "", internal, nil)

	// reachable through an exchange-to-exchange binding
	front := declareExchange(t, b, ch, "fanout", nil)
	if err := ch.ExchangeBind(internal, "", front, false, nil); err != nil {
		t.Fatal(err)
	}
	p := newPublisher(t, conn)
	p.body(front, "", "via front")
	p.wait()
	if got := drainBodies(t, ch, q); !equalStrings(got, []string{"via front"}) {
		t.Fatalf("got %q through the front exchange", got)
	}

	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	publish(t, ch, internal, "", "direct")
	cerr := waitClose(t, closed)
	want := fmt.Sprintf("ACCESS_REFUSED - cannot publish to internal exchange '%s' in vhost '/'", internal)
	if cerr.Code != amqp.AccessRefused || cerr.Reason != want {
		t.Fatalf("publish to internal exchange: %d %q, want 403 %q", cerr.Code, cerr.Reason, want)
	}
	if n := messageCount(t, conn, q); n != 0 {
		t.Fatalf("queue holds %d after the refused publish", n)
	}
}

func TestPublishToMissingExchange(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	missing := uniq(t, "missing")
	publish(t, ch, missing, "", "m")
	cerr := waitClose(t, closed)
	if want := fmt.Sprintf("NOT_FOUND - no exchange '%s' in vhost '/'", missing); cerr.Code != amqp.NotFound || cerr.Reason != want {
		t.Fatalf("got %d %q, want 404 %q", cerr.Code, cerr.Reason, want)
	}
}

func TestExchangeToExchangeBinding(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	src := declareExchange(t, b, ch, "topic", nil)
	dst := declareExchange(t, b, ch, "direct", nil)
	q := declareQueue(t, b, ch, nil)
	bindQueue(t, ch, q, "k.1", dst, nil)
	if err := ch.ExchangeBind(dst, "k.*", src, false, nil); err != nil {
		t.Fatal(err)
	}
	p := newPublisher(t, conn)
	p.body(src, "k.1", "routed")   // src matches k.*, dst matches k.1
	p.body(src, "k.2", "dropped")  // src matches, dst does not
	p.body(src, "other", "missed") // src does not match
	p.wait()
	if got := drainBodies(t, ch, q); !equalStrings(got, []string{"routed"}) {
		t.Fatalf("got %q, want [routed]", got)
	}

	if err := ch.ExchangeUnbind(dst, "k.*", src, false, nil); err != nil {
		t.Fatal(err)
	}
	p.body(src, "k.1", "after unbind")
	p.wait()
	if n := messageCount(t, conn, q); n != 0 {
		t.Fatalf("queue holds %d after exchange.unbind", n)
	}

	// unbinding what is not bound, even from or to a missing exchange, is fine
	missing := uniq(t, "missing")
	for _, u := range [][2]string{{dst, src}, {dst, missing}, {missing, src}} {
		if err := ch.ExchangeUnbind(u[0], "k.*", u[1], false, nil); err != nil {
			t.Fatalf("unbind %s from %s: %v", u[0], u[1], err)
		}
	}
	err := ch.ExchangeBind(dst, "", missing, false, nil)
	expectCloseText(t, err, amqp.NotFound, fmt.Sprintf("NOT_FOUND - no exchange '%s' in vhost '/'", missing))
	ch = mustChannel(t, conn)
	err = ch.ExchangeBind(missing, "", src, false, nil)
	expectCloseText(t, err, amqp.NotFound, fmt.Sprintf("NOT_FOUND - no exchange '%s' in vhost '/'", missing))
}

func TestExchangeBindingCycle(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	a := declareExchange(t, b, ch, "fanout", nil)
	bx := declareExchange(t, b, ch, "fanout", nil)
	if err := ch.ExchangeBind(bx, "", a, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeBind(a, "", bx, false, nil); err != nil {
		t.Fatal(err)
	}
	q := declareQueue(t, b, ch, nil)
	bindQueue(t, ch, q, "", a, nil)
	bindQueue(t, ch, q, "", bx, nil)

	p := newPublisher(t, conn)
	p.body(a, "", "to a")
	p.body(bx, "", "to b")
	p.wait()
	if got := drainBodies(t, ch, q); !equalStrings(got, []string{"to a", "to b"}) {
		t.Fatalf("got %q, want each message once", got)
	}
}

func TestAlternateExchange(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	ae := declareExchange(t, b, ch, "fanout", nil)
	x := declareExchange(t, b, ch, "direct", amqp.Table{"alternate-exchange": ae})
	q := declareQueue(t, b, ch, nil)
	aq := declareQueue(t, b, ch, nil)
	bindQueue(t, ch, q, "k", x, nil)
	bindQueue(t, ch, aq, "", ae, nil)

	pch, confirms := confirmChannel(t, conn, 10)
	returns := pch.NotifyReturn(make(chan amqp.Return, 10))
	for _, m := range []struct{ key, body string }{{"k", "routed"}, {"nope", "unroutable"}} {
		if err := pch.Publish(x, m.key, true, false, amqp.Publishing{Body: []byte(m.body)}); err != nil {
			t.Fatal(err)
		}
		// a return would precede the ack, so none is waiting once it is here
		waitConfirm(t, confirms)
		if len(returns) != 0 {
			t.Fatalf("publish of %q returned although the alternate exchange routed it", m.body)
		}
	}
	if got := drainBodies(t, ch, q); !equalStrings(got, []string{"routed"}) {
		t.Errorf("bound queue got %q", got)
	}
	if got := drainBodies(t, ch, aq); !equalStrings(got, []string{"unroutable"}) {
		t.Errorf("alternate queue got %q", got)
	}

	// redeclaring with a different alternate exchange is inequivalent
	err := ch.ExchangeDeclare(x, "direct", false, false, false, false, amqp.Table{"alternate-exchange": "other"})
	expectCloseText(t, err, amqp.PreconditionFailed, fmt.Sprintf("PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange '%s' in vhost '/': received 'other' but current is '%s'", x, ae))
	ch = mustChannel(t, conn)
	err = ch.ExchangeDeclare(x, "direct", false, false, false, false, nil)
	expectCloseText(t, err, amqp.PreconditionFailed, fmt.Sprintf("PRECONDITION_FAILED - inequivalent arg 'alternate-exchange' for exchange '%s' in vhost '/': received none but current is the value '%s' of type 'longstr'", x, ae))
	// other arguments are not compared
	ch = mustChannel(t, conn)
	if err := ch.ExchangeDeclare(x, "direct", false, false, false, false, amqp.Table{"alternate-exchange": ae, "x-other": int32(1)}); err != nil {
		t.Fatalf("redeclare with another argument: %v", err)
	}
	// and a new exchange's alternate exchange must be a string
	bad := uniq(t, "x")
	cleanupRef(t, b, nil, []string{bad})
	err = ch.ExchangeDeclare(bad, "direct", false, false, false, false, amqp.Table{"alternate-exchange": int32(1)})
	expectCloseText(t, err, amqp.PreconditionFailed, fmt.Sprintf("PRECONDITION_FAILED - invalid type 'signedint' for arg 'alternate-exchange' in exchange '%s' in vhost '/'", bad))

	// an alternate exchange that does not exist routes nowhere: returned
	ch = mustChannel(t, conn)
	x2 := declareExchange(t, b, ch, "direct", amqp.Table{"alternate-exchange": uniq(t, "missing")})
	if err := pch.Publish(x2, "k", true, false, amqp.Publishing{Body: []byte("lost")}); err != nil {
		t.Fatal(err)
	}
	waitConfirm(t, confirms)
	select {
	case r := <-returns:
		if r.ReplyCode != amqp.NoRoute || string(r.Body) != "lost" {
			t.Fatalf("return %d %q", r.ReplyCode, r.Body)
		}
	default:
		t.Fatal("no return for a message the missing alternate exchange could not route")
	}
}

func TestAlternateExchangeChain(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	last := declareExchange(t, b, ch, "fanout", nil)
	mid := declareExchange(t, b, ch, "direct", amqp.Table{"alternate-exchange": last})
	first := declareExchange(t, b, ch, "direct", amqp.Table{"alternate-exchange": mid})
	qMid, qLast := declareQueue(t, b, ch, nil), declareQueue(t, b, ch, nil)
	bindQueue(t, ch, qMid, "m", mid, nil)
	bindQueue(t, ch, qLast, "", last, nil)
	p := newPublisher(t, conn)
	p.body(first, "m", "to mid")
	p.body(first, "z", "to last")
	p.wait()
	if got := drainBodies(t, ch, qMid); !slices.Equal(got, []string{"to mid"}) {
		t.Errorf("mid queue got %q", got)
	}
	if got := drainBodies(t, ch, qLast); !slices.Equal(got, []string{"to last"}) {
		t.Errorf("last queue got %q", got)
	}
}
