package server_test

import (
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/internal/wire"
)

// A reply text longer than a shortstr holds is cut, not dropped: the client
// still gets its channel.close (here a 405 naming a 250-byte queue).
func TestLongReplyTextStillCloses(t *testing.T) {
	b := start(t)
	owner := mustChannel(t, dial(t, b.URL))
	name := strings.Repeat("q", 250)
	if _, err := owner.QueueDeclare(name, false, false, true, false, nil); err != nil {
		t.Fatal(err)
	}
	other := mustChannel(t, dial(t, b.URL))
	declared := make(chan error, 1)
	go func() {
		_, err := other.QueueDeclarePassive(name, false, false, true, false, nil)
		declared <- err
	}()
	var err error
	select {
	case err = <-declared:
	case <-time.After(10 * time.Second): // a failure bound
		t.Fatal("no reply to the passive declare: the channel.close was lost")
	}
	ae := expectClose(t, err, amqp.ResourceLocked)
	if len(ae.Reason) > 255 || !strings.HasPrefix(ae.Reason, "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'qqq") {
		t.Fatalf("reply text (%d bytes) %q", len(ae.Reason), ae.Reason)
	}
}

// A TTL too large to add to the clock means "never expires", not "already
// expired".
func TestHugeTTLsDoNotExpireAtOnce(t *testing.T) {
	b := start(t)
	ch := mustChannel(t, dial(t, b.URL))
	q := declareQueue(t, b, ch, amqp.Table{"x-message-ttl": int64(1) << 62})
	publishMsg(t, ch, "", q, amqp.Publishing{Body: []byte("queue ttl")})
	publishMsg(t, ch, "", q, amqp.Publishing{Body: []byte("message ttl"), Expiration: "9223372036854"})
	for _, want := range []string{"queue ttl", "message ttl"} {
		var d amqp.Delivery
		checkFor(t, 10*time.Second, func() bool {
			var ok bool
			var err error
			d, ok, err = ch.Get(q, true)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		})
		if string(d.Body) != want {
			t.Fatalf("got %q, want %q", d.Body, want)
		}
	}
}

// basic.recover frees a full global prefetch: a consumer on another queue
// that was refused while the channel was full gets its messages.
func TestRecoverFreesGlobalPrefetch(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	qa, qb := declareQueue(t, b, ch, nil), declareQueue(t, b, ch, nil)
	p := newPublisher(t, conn)
	p.body("", qa, "a")
	p.wait()
	if err := ch.Qos(1, 0, true); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := ch.Get(qa, false); err != nil || !ok {
		t.Fatalf("get from %s: ok=%v err=%v", qa, ok, err)
	}
	msgs, err := ch.Consume(qb, "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.body("", qb, "b")
	p.wait()
	if err := ch.Recover(true); err != nil {
		t.Fatal(err)
	}
	if got := recvBodies(t, msgs, 1); got[0] != "b" {
		t.Fatalf("consumer got %q, want b", got)
	}
}

// Confirms settled before a client's channel.close go out before its
// close-ok, never after it on a closed (or reopened) channel.
func TestConfirmsPrecedeChannelCloseOk(t *testing.T) {
	b := start(t)
	c := rawDial(t, b.Addr)
	c.send(t, 1, &wire.ConfirmSelect{})
	expectMethod[*wire.ConfirmSelectOk](t, c, 1)
	q := uniq(t, "q")
	c.send(t, 1, &wire.QueueDeclare{Queue: q, AutoDelete: true})
	expectMethod[*wire.QueueDeclareOk](t, c, 1)
	burst, err := wire.AppendMethodFrame(nil, 1, &wire.BasicPublish{RoutingKey: q})
	if err != nil {
		t.Fatal(err)
	}
	burst = wire.AppendHeaderFrame(burst, 1, wire.ClassBasic, 1, []byte{0, 0})
	burst = wire.AppendBodyFrames(burst, 1, []byte("x"), 131072)
	burst, _ = wire.AppendMethodFrame(burst, 1, &wire.ChannelClose{ReplyCode: 200, ReplyText: "bye"})
	c.write(t, burst)
	if ack := expectMethod[*wire.BasicAck](t, c, 1); ack.DeliveryTag != 1 {
		t.Fatalf("ack for tag %d, want 1", ack.DeliveryTag)
	}
	expectMethod[*wire.ChannelCloseOk](t, c, 1)
	c.send(t, 0, &wire.ConnectionClose{ReplyCode: 200})
	expectMethod[*wire.ConnectionCloseOk](t, c, 0)
}
