package server_test

// Direct reply-to (amq.rabbitmq.reply-to), through amqp091-go and through
// raw frames. Every expectation was checked against RabbitMQ 3.10 with
// WARREN_REF_URL.

import (
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/internal/wire"
)

const replyTo = "amq.rabbitmq.reply-to"

// replyClient is a channel consuming amq.rabbitmq.reply-to.
func replyClient(t *testing.T, conn *amqp.Connection) (*amqp.Channel, <-chan amqp.Delivery) {
	t.Helper()
	ch := mustChannel(t, conn)
	replies, err := ch.Consume(replyTo, "replies", true, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume %s: %v", replyTo, err)
	}
	return ch, replies
}

// request publishes a request with reply_to amq.rabbitmq.reply-to on ch and
// returns it as a server consuming q sees it.
func request(t *testing.T, ch *amqp.Channel, q string, requests <-chan amqp.Delivery, corr string) amqp.Delivery {
	t.Helper()
	if err := ch.Publish("", q, false, false, amqp.Publishing{ReplyTo: replyTo, CorrelationId: corr, Body: []byte("request " + corr)}); err != nil {
		t.Fatal(err)
	}
	return recv(t, requests)
}

func TestDirectReplyTo(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	srv := mustChannel(t, conn)
	q := declareQueue(t, b, srv, nil)
	requests := consume(t, srv, q, true)

	client, replies := replyClient(t, conn)
	req := request(t, client, q, requests, "c1")
	if !strings.HasPrefix(req.ReplyTo, replyTo+".") || len(req.ReplyTo) < len(replyTo)+17 {
		t.Fatalf("reply_to %q, want it rewritten to %s.<token>", req.ReplyTo, replyTo)
	}
	if req.CorrelationId != "c1" || string(req.Body) != "request c1" {
		t.Fatalf("request changed on the way: %+v", req)
	}
	// The token is a queue a passive declare finds while the consumer is
	// there; so is the pseudo-queue itself.
	for _, name := range []string{replyTo, req.ReplyTo} {
		st, err := srv.QueueDeclarePassive(name, false, false, false, false, nil)
		if err != nil || st.Name != name || st.Messages != 0 || st.Consumers != 1 {
			t.Fatalf("passive declare %s: %+v %v", name, st, err)
		}
	}

	// The reply goes straight to the consumer: exchange "", the token as
	// routing key, the replier's properties, no-ack.
	replier := mustChannel(t, conn)
	if err := replier.Publish("", req.ReplyTo, true, false, amqp.Publishing{CorrelationId: req.CorrelationId, Body: []byte("reply")}); err != nil {
		t.Fatal(err)
	}
	d := recv(t, replies)
	if string(d.Body) != "reply" || d.CorrelationId != "c1" || d.Exchange != "" || d.RoutingKey != req.ReplyTo || d.ConsumerTag != "replies" || d.Redelivered {
		t.Fatalf("reply %+v", d)
	}

	// Many requests on one channel share its token; replies interleave
	// with requests and come back in order.
	var tokens []string
	for i := range 50 {
		r := request(t, client, q, requests, string(rune('a'+i%26)))
		tokens = append(tokens, r.ReplyTo)
		if err := replier.Publish("", r.ReplyTo, false, false, amqp.Publishing{CorrelationId: r.CorrelationId}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 50 {
		if tokens[i] != req.ReplyTo {
			t.Fatalf("request %d got token %q, want the channel's %q", i, tokens[i], req.ReplyTo)
		}
		if d := recv(t, replies); d.CorrelationId != string(rune('a'+i%26)) {
			t.Fatalf("reply %d has correlation id %q", i, d.CorrelationId)
		}
	}

	// Another channel gets another token.
	other, _ := replyClient(t, conn)
	if r := request(t, other, q, requests, "o"); r.ReplyTo == req.ReplyTo || !strings.HasPrefix(r.ReplyTo, replyTo+".") {
		t.Fatalf("second channel's reply_to %q (first %q)", r.ReplyTo, req.ReplyTo)
	}
}

// A request needs a reply consumer on its own channel; consuming the
// pseudo-queue is no-ack only, and once per channel.
func TestDirectReplyToErrors(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	q := declareQueue(t, b, mustChannel(t, conn), nil)

	// The 406 closes the channel after the publish: wait for the close.
	noConsumer := func(ch *amqp.Channel) {
		t.Helper()
		closed := ch.NotifyClose(make(chan *amqp.Error, 1))
		if err := ch.Publish("", q, false, false, amqp.Publishing{ReplyTo: replyTo}); err != nil {
			t.Fatal(err)
		}
		cerr := waitClose(t, closed)
		if cerr.Code != amqp.PreconditionFailed || cerr.Reason != "PRECONDITION_FAILED - fast reply consumer does not exist" {
			t.Fatalf("got %d %q", cerr.Code, cerr.Reason)
		}
	}
	noConsumer(mustChannel(t, conn))
	// a reply consumer on another channel does not count
	replyClient(t, conn)
	noConsumer(mustChannel(t, conn))
	var err error

	ch := mustChannel(t, conn)
	_, err = ch.Consume(replyTo, "", false, false, false, false, nil)
	expectCloseText(t, err, amqp.PreconditionFailed, "PRECONDITION_FAILED - reply consumer cannot acknowledge")

	ch, _ = replyClient(t, conn)
	_, err = ch.Consume(replyTo, "", true, false, false, false, nil)
	expectCloseText(t, err, amqp.PreconditionFailed, "PRECONDITION_FAILED - reply consumer already set")

	// The pseudo-queue is not a queue for anything else.
	for name, op := range map[string]func(*amqp.Channel) error{
		"bind":  func(ch *amqp.Channel) error { return ch.QueueBind(replyTo, "k", "amq.direct", false, nil) },
		"get":   func(ch *amqp.Channel) error { _, _, err := ch.Get(replyTo, true); return err },
		"purge": func(ch *amqp.Channel) error { _, err := ch.QueuePurge(replyTo, false); return err },
		"consume a token": func(ch *amqp.Channel) error {
			_, err := ch.Consume(replyTo+".abc", "", true, false, false, false, nil)
			return err
		},
		"passive declare of an unknown token": func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclarePassive(replyTo+".abc", false, false, false, false, nil)
			return err
		},
	} {
		err := op(mustChannel(t, conn))
		if e := expectClose(t, err, amqp.NotFound); !strings.HasPrefix(e.Reason, "NOT_FOUND - no queue 'amq.rabbitmq.reply-to") {
			t.Errorf("%s: %q", name, e.Reason)
		}
	}
}

// A reply to a consumer that has gone (cancelled, channel closed), or to a
// token that names nobody, is unroutable: dropped, or returned with 312 if
// mandatory, and confirmed; the replier's channel carries on. The token
// does not reach anyone after its consumer is gone, even a new reply
// consumer on the same channel.
func TestDirectReplyToGone(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	srv := mustChannel(t, conn)
	q := declareQueue(t, b, srv, nil)
	requests := consume(t, srv, q, true)

	client, replies := replyClient(t, conn)
	token := request(t, client, q, requests, "1").ReplyTo

	replier, confirms := confirmChannel(t, conn, 10)
	returns := replier.NotifyReturn(make(chan amqp.Return, 10))
	unroutable := func(name, key string) {
		t.Helper()
		// not mandatory: dropped without a word
		if err := replier.Publish("", key, false, false, amqp.Publishing{Body: []byte(name)}); err != nil {
			t.Fatal(err)
		}
		if c := waitConfirm(t, confirms); !c.Ack {
			t.Fatalf("%s: nacked", name)
		}
		// mandatory: returned, then confirmed
		if err := replier.Publish("", key, true, false, amqp.Publishing{Body: []byte(name)}); err != nil {
			t.Fatal(err)
		}
		if c := waitConfirm(t, confirms); !c.Ack {
			t.Fatalf("%s: nacked", name)
		}
		select {
		case r := <-returns:
			if r.ReplyCode != amqp.NoRoute || string(r.Body) != name || r.RoutingKey != key {
				t.Fatalf("%s: return %d %q %q", name, r.ReplyCode, r.Body, r.RoutingKey)
			}
		default:
			t.Fatalf("%s: no basic.return before the confirm", name)
		}
		if len(returns) != 0 {
			t.Fatalf("%s: the non-mandatory reply was returned too", name)
		}
	}
	unroutable("forged", replyTo+".forged")
	unroutable("tampered", token+"x")
	unroutable("truncated", token[:len(token)-1])
	// a token of the right form that names nobody
	unroutable("unknown", replyTo+"."+strings.Repeat("A", len(token)-len(replyTo)-1))
	// the pseudo-queue itself, and the token through another exchange, are
	// not replies
	unroutable("bare", replyTo)
	if err := replier.Publish("amq.direct", token, true, false, amqp.Publishing{Body: []byte("amq.direct")}); err != nil {
		t.Fatal(err)
	}
	waitConfirm(t, confirms)
	if r := <-returns; string(r.Body) != "amq.direct" {
		t.Fatalf("return %q", r.Body)
	}
	expectNoBuffered(t, replies)

	if err := client.Cancel("replies", false); err != nil {
		t.Fatal(err)
	}
	for range replies { // closed by the cancel
	}
	unroutable("after cancel", token)
	// a new reply consumer on the same channel gets a new token
	replies2, err := client.Consume(replyTo, "replies2", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token2 := request(t, client, q, requests, "2").ReplyTo; token2 == token {
		t.Fatal("a new reply consumer reuses the cancelled one's token")
	}
	unroutable("old token", token)
	expectNoBuffered(t, replies2)

	client.Close()
	unroutable("after close", token)
	if _, err := srv.QueueDeclarePassive(token, false, false, false, false, nil); err == nil {
		t.Fatal("passive declare of a gone consumer's token succeeded")
	}
}

// Requests in a transaction are rewritten when published and sent at
// commit; a reply on a transactional channel is not held, as in RabbitMQ:
// it goes out at once.
func TestDirectReplyToTransactions(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	srv := mustChannel(t, conn)
	q := declareQueue(t, b, srv, nil)
	requests := consume(t, srv, q, true)

	client, replies := replyClient(t, conn)
	if err := client.Tx(); err != nil {
		t.Fatal(err)
	}
	if err := client.Publish("", q, false, false, amqp.Publishing{ReplyTo: replyTo, Body: []byte("req")}); err != nil {
		t.Fatal(err)
	}
	if err := client.TxCommit(); err != nil {
		t.Fatal(err)
	}
	req := recv(t, requests)
	if !strings.HasPrefix(req.ReplyTo, replyTo+".") {
		t.Fatalf("reply_to %q", req.ReplyTo)
	}
	replier := txChannel(t, conn)
	if err := replier.Publish("", req.ReplyTo, false, false, amqp.Publishing{Body: []byte("reply")}); err != nil {
		t.Fatal(err)
	}
	if d := recv(t, replies); string(d.Body) != "reply" {
		t.Fatalf("reply %q", d.Body)
	}
	if err := replier.TxRollback(); err != nil {
		t.Fatal(err)
	}
	expectNoBuffered(t, replies)
}

// ---- raw frames ----

// publishFrames is a basic.publish with properties and a body.
func publishFrames(ch uint16, exchange, key string, mandatory bool, props wire.Properties, body string) []byte {
	raw, err := props.AppendTo(nil)
	if err != nil {
		panic(err)
	}
	b := methodFrame(ch, &wire.BasicPublish{Exchange: exchange, RoutingKey: key, Mandatory: mandatory})
	b = wire.AppendHeaderFrame(b, ch, wire.ClassBasic, uint64(len(body)), raw)
	if body != "" {
		b = append(b, rawFrame(wire.FrameBody, ch, []byte(body))...)
	}
	return b
}

// expectContent reads a content header and body and returns the
// properties and the body.
func expectContent(t *testing.T, c *rawClient, ch uint16) (wire.Properties, string) {
	t.Helper()
	f, err := c.readFrame()
	if err != nil || f.Type != wire.FrameHeader || f.Channel != ch {
		t.Fatalf("want a content header on channel %d: %v %+v", ch, err, f)
	}
	_, size, raw, err := wire.ParseContentHeader(f.Payload)
	if err != nil {
		t.Fatal(err)
	}
	var p wire.Properties
	if err := p.Decode(raw); err != nil {
		t.Fatal(err)
	}
	var body []byte
	for uint64(len(body)) < size {
		f, err := c.readFrame()
		if err != nil || f.Type != wire.FrameBody {
			t.Fatalf("want a body frame: %v %+v", err, f)
		}
		body = append(body, f.Payload...)
	}
	return p, string(body)
}

func TestRawDirectReplyTo(t *testing.T) {
	t.Parallel()
	addr := rawTarget(t)
	c := dialRaw(t, addr)
	advance(t, c, stageChannel)
	q := uniq(t, "q")
	c.send(t, 1, &wire.QueueDeclare{Queue: q, AutoDelete: true})
	expectMethod[*wire.QueueDeclareOk](t, c, 1)

	// The 406 names basic.publish.
	c.write(t, publishFrames(1, "", q, false, wire.Properties{ReplyTo: replyTo}, "x"))
	cl := c.expectChannelClose(t, 1, wire.PreconditionFailed)
	if cl.ReplyText != "PRECONDITION_FAILED - fast reply consumer does not exist" {
		t.Fatalf("close text %q", cl.ReplyText)
	}
	expectFailing(t, cl.FailingClassID, cl.FailingMethodID, wire.ClassBasic, 40)
	c.send(t, 1, &wire.ChannelCloseOk{})

	// The rewrite: only reply_to changes; every other property is kept.
	openChannel(t, c, 2)
	c.send(t, 2, &wire.BasicConsume{Queue: replyTo, ConsumerTag: "r", NoAck: true})
	expectMethod[*wire.BasicConsumeOk](t, c, 2)
	props := wire.Properties{
		ContentType: "text/plain", Headers: wire.Table{"h": "v"}, DeliveryMode: 1, Priority: 3,
		CorrelationID: "corr", ReplyTo: replyTo, Expiration: "60000", MessageID: "id",
		Timestamp: time.Unix(1700000000, 0), Type: "t", UserID: "guest", AppID: "app",
	}
	c.write(t, publishFrames(2, "", q, false, props, "request"))
	c.send(t, 2, &wire.BasicGet{Queue: q, NoAck: true})
	expectMethod[*wire.BasicGetOk](t, c, 2)
	got, body := expectContent(t, c, 2)
	token := got.ReplyTo
	if body != "request" || !strings.HasPrefix(token, replyTo+".") {
		t.Fatalf("request %q with reply_to %q", body, token)
	}
	got.ReplyTo = replyTo
	want, _ := props.AppendTo(nil)
	if have, _ := got.AppendTo(nil); string(have) != string(want) {
		t.Fatalf("properties changed beyond reply_to:\n got %+v\nwant %+v", got, props)
	}

	// The reply, published on another channel, is delivered to r, with the
	// channel's next delivery tag (the get took 1).
	openChannel(t, c, 3)
	c.write(t, publishFrames(3, "", token, false, wire.Properties{CorrelationID: "corr"}, "reply"))
	d := expectMethod[*wire.BasicDeliver](t, c, 2)
	if d.ConsumerTag != "r" || d.DeliveryTag != 2 || d.Exchange != "" || d.RoutingKey != token || d.Redelivered {
		t.Fatalf("deliver %+v", d)
	}
	if p, body := expectContent(t, c, 2); body != "reply" || p.CorrelationID != "corr" {
		t.Fatalf("reply %q %+v", body, p)
	}

	// Silently dropped: a reply to a forged token, not mandatory. The
	// next thing on the wire is the answer to the declare that follows.
	c.write(t, publishFrames(3, "", replyTo+".forged", false, wire.Properties{}, "lost"))
	c.send(t, 3, &wire.QueueDeclare{Queue: q, Passive: true})
	expectMethod[*wire.QueueDeclareOk](t, c, 3)
	// Mandatory: basic.return 312.
	c.write(t, publishFrames(3, "", replyTo+".forged", true, wire.Properties{}, "back"))
	ret := expectMethod[*wire.BasicReturn](t, c, 3)
	if ret.ReplyCode != wire.NoRoute || ret.ReplyText != "NO_ROUTE" || ret.RoutingKey != replyTo+".forged" {
		t.Fatalf("return %+v", ret)
	}
	if _, body := expectContent(t, c, 3); body != "back" {
		t.Fatalf("returned %q", body)
	}

	// basic.consume of the pseudo-queue with acks: 406 naming basic.consume.
	openChannel(t, c, 4)
	c.send(t, 4, &wire.BasicConsume{Queue: replyTo})
	cl = c.expectChannelClose(t, 4, wire.PreconditionFailed)
	if cl.ReplyText != "PRECONDITION_FAILED - reply consumer cannot acknowledge" {
		t.Fatalf("close text %q", cl.ReplyText)
	}
	expectFailing(t, cl.FailingClassID, cl.FailingMethodID, wire.ClassBasic, 20)
}
