package wire

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// fakeServer drives one side of a connection with this package's codec.
type fakeServer struct {
	conn net.Conn
	r    *Reader
	d    *Decoder
	buf  []byte
}

func (s *fakeServer) check(ok bool, format string, args ...any) {
	if !ok {
		panic(fmt.Errorf(format, args...))
	}
}

func (s *fakeServer) send(ch uint16, m Method) {
	var err error
	s.buf, err = AppendMethodFrame(s.buf[:0], ch, m)
	s.check(err == nil, "encode %s: %v", m.MethodName(), err)
	_, err = s.conn.Write(s.buf)
	s.check(err == nil, "write: %v", err)
}

func (s *fakeServer) write(b []byte) {
	_, err := s.conn.Write(b)
	s.check(err == nil, "write: %v", err)
}

func (s *fakeServer) frame(typ uint8) Frame {
	for {
		f, err := s.r.ReadFrame()
		s.check(err == nil, "read frame: %v", err)
		if f.Type == FrameHeartbeat {
			continue
		}
		s.check(f.Type == typ, "frame type %d, want %d", f.Type, typ)
		return f
	}
}

func (s *fakeServer) expect(ch uint16, want Method) Method {
	f := s.frame(FrameMethod)
	m, err := s.d.DecodeMethod(f.Payload)
	s.check(err == nil, "decode: %v", err)
	s.check(f.Channel == ch, "channel %d, want %d", f.Channel, ch)
	s.check(m.ClassID() == want.ClassID() && m.MethodID() == want.MethodID(), "got %s, want %s", m.MethodName(), want.MethodName())
	return m
}

// TestInteropAmqp091Client runs the rabbitmq/amqp091-go client against a
// scripted server built on this package: handshake, queue.declare with
// arguments, confirms, a publish with all properties and a multi-frame body,
// a delivery back to a consumer, and connection close.
func TestInteropAmqp091Client(t *testing.T) {
	cconn, sconn := net.Pipe()
	defer cconn.Close()
	defer sconn.Close()
	const frameMax = 4096
	body := bytes.Repeat([]byte("0123456789abcdef"), 700) // 11200 bytes: 3 body frames
	ts := time.Unix(1700000000, 0)

	serverDone := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				err, _ := r.(error)
				if err == nil {
					err = fmt.Errorf("%v", r)
				}
				serverDone <- err
				sconn.Close()
			}
		}()
		s := &fakeServer{conn: sconn, r: NewReader(sconn, frameMax), d: NewDecoder()}
		s.check(ReadProtocolHeader(s.r.r) == nil, "protocol header")
		s.send(0, &ConnectionStart{VersionMajor: 0, VersionMinor: 9, Mechanisms: "PLAIN", Locales: "en_US",
			ServerProperties: Table{"product": "warren", "capabilities": Table{
				"publisher_confirms": true, "basic.nack": true, "consumer_cancel_notify": true}}})
		so := s.expect(0, &ConnectionStartOk{}).(*ConnectionStartOk)
		s.check(so.Mechanism == "PLAIN" && so.Response == "\x00guest\x00guest", "start-ok %+v", so)
		caps, _ := so.ClientProperties["capabilities"].(Table)
		s.check(caps["publisher_confirms"] == true, "client capabilities %v", so.ClientProperties)
		s.check(so.ClientProperties["product"] != nil, "client product")
		s.send(0, &ConnectionTune{ChannelMax: 16, FrameMax: frameMax, Heartbeat: 0})
		to := s.expect(0, &ConnectionTuneOk{}).(*ConnectionTuneOk)
		s.check(to.FrameMax == frameMax && to.ChannelMax == 16, "tune-ok %+v", to)
		op := s.expect(0, &ConnectionOpen{}).(*ConnectionOpen)
		s.check(op.VirtualHost == "/", "vhost %q", op.VirtualHost)
		s.send(0, &ConnectionOpenOk{})

		s.expect(1, &ChannelOpen{})
		s.send(1, &ChannelOpenOk{})

		qd := s.expect(1, &QueueDeclare{}).(*QueueDeclare)
		s.check(qd.Queue == "q1" && qd.Durable && !qd.AutoDelete && !qd.Exclusive && !qd.NoWait && !qd.Passive, "queue.declare %+v", qd)
		s.check(TablesEqual(qd.Arguments, Table{"x-message-ttl": int32(1000), "x-queue-type": "classic"}), "arguments %#v", qd.Arguments)
		s.send(1, &QueueDeclareOk{Queue: "q1", MessageCount: 0, ConsumerCount: 0})

		s.expect(1, &ConfirmSelect{})
		s.send(1, &ConfirmSelectOk{})

		pub := s.expect(1, &BasicPublish{}).(*BasicPublish)
		s.check(pub.Exchange == "ex" && pub.RoutingKey == "rk" && pub.Mandatory && !pub.Immediate, "publish %+v", pub)
		hf := s.frame(FrameHeader)
		cls, size, raw, err := ParseContentHeader(hf.Payload)
		s.check(err == nil && cls == ClassBasic && size == uint64(len(body)), "header: %v %d %d", err, cls, size)
		raw = bytes.Clone(raw)
		var p Properties
		s.check(p.Decode(raw) == nil, "properties decode")
		want := Properties{ContentType: "text/plain", ContentEncoding: "utf-8",
			Headers:      Table{"h1": "v1", "n": int64(42), "nested": Table{"a": []any{int32(1), "b"}}},
			DeliveryMode: 2, Priority: 5, CorrelationID: "corr", ReplyTo: "reply", Expiration: "60000",
			MessageID: "mid", Timestamp: ts.UTC(), Type: "typ", UserID: "guest", AppID: "app",
			Flags: 0xFFF8}
		s.check(propsEqual(&p, &want), "properties\n got %#v\nwant %#v", p, want)
		s.check(PropsDeliveryMode(raw) == 2 && PropsHasHeaders(raw), "fast accessors")
		rt, ok := PropsReplyTo(raw)
		s.check(ok && rt == "reply", "reply-to")
		var got []byte
		for len(got) < len(body) {
			bf := s.frame(FrameBody)
			s.check(len(bf.Payload) <= frameMax-8, "body frame too big")
			got = append(got, bf.Payload...)
		}
		s.check(bytes.Equal(got, body), "body differs")
		s.send(1, &BasicAck{DeliveryTag: 1})

		bc := s.expect(1, &BasicConsume{}).(*BasicConsume)
		s.check(bc.Queue == "q1" && bc.ConsumerTag == "ctag" && !bc.NoAck, "consume %+v", bc)
		s.send(1, &BasicConsumeOk{ConsumerTag: "ctag"})
		var out []byte
		out, err = AppendMethodFrame(out, 1, &BasicDeliver{ConsumerTag: "ctag", DeliveryTag: 7, Redelivered: true, Exchange: "ex", RoutingKey: "rk"})
		s.check(err == nil, "deliver: %v", err)
		out = AppendHeaderFrame(out, 1, ClassBasic, uint64(len(body)), raw)
		out = AppendBodyFrames(out, 1, body, frameMax)
		s.write(out)

		ack := s.expect(1, &BasicAck{}).(*BasicAck)
		s.check(ack.DeliveryTag == 7 && !ack.Multiple, "ack %+v", ack)

		cl := s.expect(0, &ConnectionClose{}).(*ConnectionClose)
		s.check(cl.ReplyCode == ReplySuccess, "close %+v", cl)
		s.send(0, &ConnectionCloseOk{})
		serverDone <- nil
	}()

	conn, err := amqp.Open(cconn, amqp.Config{
		SASL:      []amqp.Authentication{&amqp.PlainAuth{Username: "guest", Password: "guest"}},
		Vhost:     "/",
		FrameSize: frameMax,
		Heartbeat: 0,
	})
	if err != nil {
		t.Fatalf("open: %v (server: %v)", err, serverErr(serverDone))
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("q1", true, false, false, false, amqp.Table{"x-message-ttl": int32(1000), "x-queue-type": "classic"}); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 1))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = ch.PublishWithContext(ctx, "ex", "rk", true, false, amqp.Publishing{
		Headers:     amqp.Table{"h1": "v1", "n": int64(42), "nested": amqp.Table{"a": []any{int32(1), "b"}}},
		ContentType: "text/plain", ContentEncoding: "utf-8", DeliveryMode: 2, Priority: 5,
		CorrelationId: "corr", ReplyTo: "reply", Expiration: "60000", MessageId: "mid",
		Timestamp: ts, Type: "typ", UserId: "guest", AppId: "app", Body: body,
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-confirms:
		if !c.Ack || c.DeliveryTag != 1 {
			t.Fatalf("confirm %+v", c)
		}
	case err := <-serverDone:
		t.Fatalf("server: %v", err)
	case <-ctx.Done():
		t.Fatal("timeout waiting for confirm")
	}
	deliveries, err := ch.Consume("q1", "ctag", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-deliveries:
		if d.ConsumerTag != "ctag" || d.DeliveryTag != 7 || !d.Redelivered || d.Exchange != "ex" || d.RoutingKey != "rk" ||
			!bytes.Equal(d.Body, body) || d.ContentType != "text/plain" || d.DeliveryMode != 2 || d.Priority != 5 ||
			d.ReplyTo != "reply" || !d.Timestamp.Equal(ts) || d.Headers["h1"] != "v1" || d.AppId != "app" {
			t.Fatalf("delivery %+v", d)
		}
		if err := d.Ack(false); err != nil {
			t.Fatal(err)
		}
	case err := <-serverDone:
		t.Fatalf("server: %v", err)
	case <-ctx.Done():
		t.Fatal("timeout waiting for delivery")
	}
	if err := conn.Close(); err != nil {
		t.Fatalf("close: %v (server: %v)", err, serverErr(serverDone))
	}
	if err := <-serverDone; err != nil {
		t.Fatal(err)
	}
}

func serverErr(c chan error) error {
	select {
	case err := <-c:
		return err
	case <-time.After(time.Second):
		return io.ErrNoProgress
	}
}
