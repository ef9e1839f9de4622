package server_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/warrenmq/warren/internal/wire"
	"github.com/warrenmq/warren/server"
)

func TestServerProperties(t *testing.T) {
	b := start(t)
	needWarren(t, b) // product and version are Warren's own
	conn := dial(t, b.URL)
	if conn.Properties["product"] != "Warren" || conn.Properties["version"] != server.Version {
		t.Fatalf("product %v version %v", conn.Properties["product"], conn.Properties["version"])
	}
	for _, k := range []string{"platform", "copyright", "information", "cluster_name"} {
		if s, _ := conn.Properties[k].(string); s == "" {
			t.Errorf("server property %q missing", k)
		}
	}
	caps, ok := conn.Properties["capabilities"].(amqp.Table)
	if !ok {
		t.Fatalf("capabilities %T", conn.Properties["capabilities"])
	}
	for _, c := range []string{
		"publisher_confirms", "exchange_exchange_bindings", "basic.nack", "consumer_cancel_notify",
		"connection.blocked", "authentication_failure_close", "per_consumer_qos", "direct_reply_to",
	} {
		if caps[c] != true {
			t.Errorf("capability %s = %v, want true", c, caps[c])
		}
	}
}

func TestNegotiatedTuning(t *testing.T) {
	b := start(t)
	// the offer itself, as connection.tune carries it
	rc := dialRaw(t, b.Addr)
	greet(t, rc)
	tune := login(t, rc)
	if tune.ChannelMax != 2047 || tune.FrameMax != 131072 || tune.Heartbeat != 60 {
		t.Fatalf("connection.tune offers channel_max %d frame_max %d heartbeat %d; want 2047, 131072, 60", tune.ChannelMax, tune.FrameMax, tune.Heartbeat)
	}
	// higher client values get the server's (amqp091-go turns a zero
	// heartbeat into its own 10 s default, so ask for more than 60 s)
	conn := dialConfig(t, b.URL, amqp.Config{Heartbeat: 120 * time.Second, ChannelMax: 0, FrameSize: 0})
	if conn.Config.ChannelMax != 2047 || conn.Config.FrameSize != 131072 || conn.Config.Heartbeat != 60*time.Second {
		t.Fatalf("negotiated channel_max %d frame_max %d heartbeat %v; want 2047, 131072, 60s",
			conn.Config.ChannelMax, conn.Config.FrameSize, conn.Config.Heartbeat)
	}
	// lower client values win
	conn = dialConfig(t, b.URL, amqp.Config{Heartbeat: 5 * time.Second, ChannelMax: 10, FrameSize: 4096})
	if conn.Config.ChannelMax != 10 || conn.Config.FrameSize != 4096 || conn.Config.Heartbeat != 5*time.Second {
		t.Fatalf("negotiated channel_max %d frame_max %d heartbeat %v; want 10, 4096, 5s",
			conn.Config.ChannelMax, conn.Config.FrameSize, conn.Config.Heartbeat)
	}
}

func TestSmallFrameMax(t *testing.T) {
	b := start(t)
	conn := dialConfig(t, b.URL, amqp.Config{FrameSize: 4096})
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	body := make([]byte, 3*4096+17)
	for i := range body {
		body[i] = byte(i)
	}
	// headers bigger than a frame cannot be sent; a body of many frames can
	p := newPublisher(t, conn)
	p.pub("", q, amqp.Publishing{Body: body})
	p.wait()
	d := get(t, ch, q, true)
	if !bytes.Equal(d.Body, body) {
		t.Fatalf("body of %d bytes came back as %d, or changed", len(body), len(d.Body))
	}
}

func TestChannelMax(t *testing.T) {
	b := start(t)
	conn := dialConfig(t, b.URL, amqp.Config{ChannelMax: 3})
	for i := 1; i <= 3; i++ {
		ch := mustChannel(t, conn)
		if _, err := ch.QueueDeclare("", false, true, true, false, nil); err != nil {
			t.Fatalf("channel %d: %v", i, err)
		}
	}
	if _, err := conn.Channel(); err == nil {
		t.Fatal("a fourth channel opened with channel_max 3")
	}
}

func TestWrongPassword(t *testing.T) {
	b := start(t)
	for _, u := range []string{withUser(t, b.URL, "guest", "wrong"), withUser(t, b.URL, "nobody", "guest")} {
		_, err := amqp.Dial(u)
		if err == nil {
			t.Fatalf("dial with bad credentials succeeded")
		}
		// amqp091-go does not ask for authentication_failure_close, so the
		// broker just closes the socket, which the client reports so
		if err != amqp.ErrCredentials {
			t.Fatalf("dial with bad credentials: %#v, want amqp.ErrCredentials", err)
		}
	}
	// the broker is fine afterwards
	dial(t, b.URL)
}

func TestWrongPasswordAuthenticationFailureClose(t *testing.T) {
	b := start(t)
	// a client that asks for authentication_failure_close is told why
	rc := dialRaw(t, b.Addr)
	greet(t, rc)
	rc.send(t, 0, &wire.ConnectionStartOk{
		Mechanism: "PLAIN", Response: "\x00guest\x00wrong", Locale: "en_US",
		ClientProperties: wire.Table{"capabilities": wire.Table{"authentication_failure_close": true}},
	})
	cl := expectMethod[*wire.ConnectionClose](t, rc, 0)
	if cl.ReplyCode != amqp.AccessRefused || cl.ReplyText != "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile." {
		t.Fatalf("connection.close %d %q", cl.ReplyCode, cl.ReplyText)
	}
}

func TestAMQPLAINAuth(t *testing.T) {
	b := start(t)
	conn := dialConfig(t, b.URL, amqp.Config{SASL: []amqp.Authentication{&amqp.AMQPlainAuth{Username: "guest", Password: "guest"}}})
	ch := mustChannel(t, conn)
	if _, err := ch.QueueDeclare("", false, true, true, false, nil); err != nil {
		t.Fatal(err)
	}
	_, err := amqp.DialConfig(b.URL, amqp.Config{SASL: []amqp.Authentication{&amqp.AMQPlainAuth{Username: "guest", Password: "nope"}}})
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.AccessRefused {
		t.Fatalf("AMQPLAIN with a wrong password: %v, want a 403", err)
	}
}

func TestOtherUsers(t *testing.T) {
	b := start(t, func(o *server.Options) {
		o.Users = map[string]string{"guest": "guest", "alice": "s3cret:/@"}
	})
	conn := dial(t, withUser(t, b.URL, "alice", "s3cret:/@"))
	ch := mustChannel(t, conn)
	if _, err := ch.QueueDeclare("", false, true, true, false, nil); err != nil {
		t.Fatal(err)
	}
}

func TestUnknownVhost(t *testing.T) {
	b := start(t)
	u := b.URL + "other"
	_, err := amqp.Dial(u)
	expectCloseText(t, err, amqp.NotAllowed, "NOT_ALLOWED - vhost other not found")
}

func TestShutdownClosesConnections(t *testing.T) {
	b := start(t)
	needWarren(t, b)
	conn := dial(t, b.URL)
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	msgs := consume(t, ch, q, false)
	publish(t, ch, "", q, "in flight")
	recv(t, msgs)

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := b.Server.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	cerr := waitClose(t, closed)
	if cerr.Code != amqp.ConnectionForced || cerr.Reason != "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'" || !cerr.Server {
		t.Fatalf("closed with %d %q server=%v, want 320 from the server", cerr.Code, cerr.Reason, cerr.Server)
	}
	if _, err := amqp.Dial(b.URL); err == nil {
		t.Fatal("dial after Shutdown succeeded")
	}
}

func TestConnectionCloseByClient(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	if err := conn.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	select {
	case err, ok := <-closed:
		if ok && err != nil {
			t.Fatalf("a client close reported %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("channel not closed with the connection")
	}
	if _, err := ch.QueueDeclare("", false, true, true, false, nil); err != amqp.ErrClosed {
		t.Fatalf("channel used after connection close: %v", err)
	}
}

func TestManyChannels(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	const n = 50
	var chans []*amqp.Channel
	for range n {
		c := mustChannel(t, conn)
		chans = append(chans, c)
		publish(t, c, "", q, "x")
	}
	for _, c := range chans {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	waitCount(t, conn, q, n)
}

func TestAbruptDisconnect(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	p := newPublisher(t, conn)
	p.body("", q, "unacked")
	p.wait()

	// a client that drops its socket without connection.close
	excl := uniq(t, "excl")
	cleanupRef(t, b, []string{excl}, nil)
	rc := rawDial(t, b.Addr)
	rc.send(t, 1, &wire.QueueDeclare{Queue: excl, Exclusive: true})
	expectMethod[*wire.QueueDeclareOk](t, rc, 1)
	rc.send(t, 1, &wire.BasicConsume{Queue: q, ConsumerTag: "c"})
	expectMethod[*wire.BasicConsumeOk](t, rc, 1)
	expectMethod[*wire.BasicDeliver](t, rc, 1)
	waitCount(t, conn, q, 0)
	if err := rc.nc.Close(); err != nil {
		t.Fatal(err)
	}
	// its exclusive queue goes and its unacked delivery comes back
	queueGone(t, conn, excl)
	waitCount(t, conn, q, 1)
	if d := get(t, ch, q, true); string(d.Body) != "unacked" || !d.Redelivered {
		t.Fatalf("got %q redelivered=%v", d.Body, d.Redelivered)
	}
}
