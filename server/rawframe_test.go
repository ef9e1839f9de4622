package server_test

// Protocol-error handling, byte for byte. Every expectation is what
// RabbitMQ 3.10 does with the same bytes; its reply text is quoted next to
// each case. Timing is not compared: RabbitMQ closes the socket 3 s after a
// refusal before tune-ok, or after a frame error, and waits up to 30 s for
// close-ok; Warren does at once, and waits CloseTimeout. Run against a
// reference broker with WARREN_REF_URL (integration_helpers_test.go).

import (
	"net"
	"testing"
	"time"

	"github.com/warrenmq/warren/internal/wire"
	"github.com/warrenmq/warren/server"
	"github.com/warrenmq/warren/server/servertest"
)

// rawCase writes send after running the handshake to stage, then checks
// expect.
type rawCase struct {
	name   string
	stage  stage
	send   []byte
	expect expectation
	// warrenOnly, if set, says why the case differs from RabbitMQ on
	// purpose; it is not run against the reference broker.
	warrenOnly string
}

func runRawCases(t *testing.T, cases []rawCase) {
	addr := rawTarget(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.warrenOnly != "" && isReference() {
				t.Skip(tc.warrenOnly)
			}
			c := dialRaw(t, addr)
			advance(t, c, tc.stage)
			c.write(t, tc.send)
			tc.expect(t, c)
		})
	}
}

func TestRawProtocolHeader(t *testing.T) {
	t.Parallel()
	refused := func(t *testing.T, c *rawClient) {
		c.expectProtocolHeader(t)
		c.expectSocketClosed(t)
	}
	runRawCases(t, []rawCase{
		// RabbitMQ takes the 0-9 header for 0-9-1: connection.start 0-9.
		{name: "amqp 0-9", send: []byte("AMQP\x01\x01\x00\x09"), expect: func(t *testing.T, c *rawClient) {
			m := expectMethod[*wire.ConnectionStart](t, c, 0)
			if m.VersionMajor != 0 || m.VersionMinor != 9 {
				t.Errorf("connection.start version %d-%d, want 0-9", m.VersionMajor, m.VersionMinor)
			}
		}},
		// RabbitMQ: "AMQP\x00\x00\x09\x01" back, socket closed.
		{name: "http", send: []byte("HTTP/1.1"), expect: refused},
		{name: "amqp 1-0", send: []byte("AMQP\x03\x01\x00\x00"), expect: refused},
		{name: "amqp 0-9-2", send: []byte("AMQP\x00\x00\x09\x02"), expect: refused},
		// RabbitMQ speaks 0-8 to this header; Warren does not.
		{name: "amqp 0-8", send: []byte("AMQP\x01\x01\x08\x00"), expect: refused, warrenOnly: "RabbitMQ speaks AMQP 0-8"},
		// RabbitMQ: socket closed, nothing written.
		{name: "short", send: []byte("AMQP"), expect: func(t *testing.T, c *rawClient) {
			c.nc.(*net.TCPConn).CloseWrite()
			c.expectSocketClosed(t)
		}},
	})
}

func TestRawFrameErrors(t *testing.T) {
	t.Parallel()
	pub := methodFrame(1, &wire.BasicPublish{RoutingKey: "nowhere"})
	qos := methodFrame(1, &wire.BasicQos{})
	runRawCases(t, []rawCase{
		// Frame size. RabbitMQ checks it from the header, without reading
		// the payload: only the 7-byte header is sent.

		// RabbitMQ: "FRAME_ERROR - type 1, all octets = <<>>:
		// {frame_too_large,1073741824,131064}", class 0 method 0.
		{name: "1 GiB frame", stage: stageOpen, send: frameHeader(wire.FrameMethod, 0, 1<<30), expect: hardClose(wire.FrameError, 0, 0)},
		{name: "1 GiB frame on a channel", stage: stageChannel, send: frameHeader(wire.FrameBody, 1, 1<<30), expect: hardClose(wire.FrameError, 0, 0)},
		// RabbitMQ: the same close once tune-ok is in, before open.
		{name: "1 GiB frame before open", stage: stageOpening, send: frameHeader(wire.FrameMethod, 0, 1<<30), expect: hardClose(wire.FrameError, 0, 0)},
		// Before tune-ok RabbitMQ closes the socket without connection.close.
		{name: "1 GiB frame before start-ok", stage: stageStarted, send: frameHeader(wire.FrameMethod, 0, 1<<30), expect: silentClose},
		{name: "1 GiB frame before tune-ok", stage: stageTuning, send: frameHeader(wire.FrameMethod, 0, 1<<30), expect: silentClose},
		// RabbitMQ takes a payload of up to frame_max bytes (its
		// FRAME_SIZE_FUDGE): 4096 before tune-ok, 131072 after.
		{name: "payload 4097 before tune-ok", stage: stageStarted, send: frameHeader(wire.FrameMethod, 0, 4097), expect: silentClose},
		{name: "payload 4096 before tune-ok", stage: stageStarted, send: startOkSized(4096), expect: reply[*wire.ConnectionTune](0)},
		// RabbitMQ: "FRAME_ERROR - type 3, all octets = <<>>:
		// {frame_too_large,131073,131064}".
		{name: "payload frame_max+1", stage: stageChannel, send: frames(pub, headerFrame(1, wire.ClassBasic, 131073), frameHeader(wire.FrameBody, 1, 131073)), expect: hardClose(wire.FrameError, 0, 0)},
		{name: "payload frame_max", stage: stageChannel, send: frames(pub, headerFrame(1, wire.ClassBasic, 131072), rawFrame(wire.FrameBody, 1, make([]byte, 131072)), qos), expect: reply[*wire.BasicQosOk](1)},

		// RabbitMQ: "FRAME_ERROR - type 1, all octets = <<...>>:
		// {invalid_frame_end_marker,0}".
		{name: "bad frame end", stage: stageChannel, send: badEnd(methodFrame(1, &wire.QueueDeclare{Queue: "q"})), expect: hardClose(wire.FrameError, 0, 0)},
		{name: "bad frame end of a large body frame", stage: stageChannel, send: frames(pub, headerFrame(1, wire.ClassBasic, 40000), rawFrame(wire.FrameBody, 1, make([]byte, 20000)), badEnd(rawFrame(wire.FrameBody, 1, make([]byte, 20000)))), expect: hardClose(wire.FrameError, 0, 0)},
		{name: "bad frame end before start-ok", stage: stageStarted, send: badEnd(startOkSized(100)), expect: silentClose},
		// RabbitMQ: "FRAME_ERROR - type 7, all octets = <<>>: unknown_frame";
		// the frame is read whole, so close-ok after it is understood.
		{name: "frame type 7", stage: stageChannel, send: rawFrame(7, 1, nil), expect: hardClose(wire.FrameError, 0, 0)},
		{name: "frame type 4 with payload", stage: stageOpen, send: rawFrame(4, 0, []byte{1, 2, 3}), expect: hardClose(wire.FrameError, 0, 0)},
		{name: "frame type 7 before open", stage: stageOpening, send: rawFrame(7, 0, nil), expect: hardClose(wire.FrameError, 0, 0)},

		// RabbitMQ: "UNEXPECTED_FRAME - type 8, all octets = <<>>".
		{name: "heartbeat on channel 1", stage: stageChannel, send: rawFrame(wire.FrameHeartbeat, 1, nil), expect: hardClose(wire.UnexpectedFrame, 0, 0)},
		{name: "heartbeat on an unopened channel", stage: stageOpen, send: rawFrame(wire.FrameHeartbeat, 3, nil), expect: hardClose(wire.UnexpectedFrame, 0, 0)},
		{name: "heartbeat on channel 1 before start-ok", stage: stageStarted, send: rawFrame(wire.FrameHeartbeat, 1, nil), expect: silentClose},
		// RabbitMQ: "FRAME_ERROR - type 8, all octets = <<1>>: unknown_frame".
		{name: "heartbeat with a payload", stage: stageOpen, send: rawFrame(wire.FrameHeartbeat, 0, []byte{1}), expect: hardClose(wire.FrameError, 0, 0)},
		// RabbitMQ: a heartbeat on channel 0 is fine at any time.
		{name: "heartbeat before start-ok", stage: stageStarted, send: frames(rawFrame(wire.FrameHeartbeat, 0, nil), startOkSized(100)), expect: reply[*wire.ConnectionTune](0)},
	})
}

func TestRawChannelErrors(t *testing.T) {
	t.Parallel()
	runRawCases(t, []rawCase{
		// RabbitMQ: "CHANNEL_ERROR - expected 'channel.open'", class 50 method 10.
		{name: "method on an unopened channel", stage: stageOpen, send: methodFrame(5, &wire.QueueDeclare{Queue: "q"}), expect: hardClose(wire.ChannelError, 50, 10)},
		// RabbitMQ: "CHANNEL_ERROR - expected 'channel.open'", class 20 method 40.
		{name: "channel.close on an unopened channel", stage: stageOpen, send: methodFrame(4, &wire.ChannelClose{}), expect: hardClose(wire.ChannelError, 20, 40)},
		// RabbitMQ: "CHANNEL_ERROR - second 'channel.open' seen", class 20 method 10.
		{name: "second channel.open", stage: stageChannel, send: methodFrame(1, &wire.ChannelOpen{}), expect: hardClose(wire.ChannelError, 20, 10)},
		// RabbitMQ limits how many channels are open, not their ids:
		// channel.open-ok.
		{name: "channel 2048", stage: stageOpen, send: methodFrame(2048, &wire.ChannelOpen{}), expect: reply[*wire.ChannelOpenOk](2048)},
		{name: "channel 65535", stage: stageOpen, send: methodFrame(65535, &wire.ChannelOpen{}), expect: reply[*wire.ChannelOpenOk](65535)},
		// RabbitMQ: "NOT_ALLOWED - vhost nope not found", class 10 method 40.
		{name: "unknown vhost", stage: stageOpening, send: methodFrame(0, &wire.ConnectionOpen{VirtualHost: "nope"}), expect: hardClose(wire.NotAllowed, 10, 40)},
		// RabbitMQ: "NOT_IMPLEMENTED - active=false", class 20 method 20.
		{name: "channel.flow active=false", stage: stageChannel, send: methodFrame(1, &wire.ChannelFlow{Active: false}), expect: hardClose(wire.NotImplemented, 20, 20)},
	})
}

func TestRawChannelMax(t *testing.T) {
	t.Parallel()
	addr := rawTarget(t)
	c := dialRaw(t, addr)
	advance(t, c, stageTuning)
	c.send(t, 0, &wire.ConnectionTuneOk{ChannelMax: 2, FrameMax: c.tune.FrameMax})
	open(t, c)
	openChannel(t, c, 5)
	openChannel(t, c, 6)
	// RabbitMQ: "NOT_ALLOWED - number of channels opened (2) has reached
	// the negotiated channel_max (2)", class 0 method 0.
	c.send(t, 7, &wire.ChannelOpen{})
	hardClose(wire.NotAllowed, 0, 0)(t, c)
}

func TestRawMethodOrder(t *testing.T) {
	t.Parallel()
	startOk := methodFrame(0, &wire.ConnectionStartOk{ClientProperties: clientProps(true), Mechanism: "PLAIN", Response: plain("guest", "guest"), Locale: "en_US"})
	tuneOkFrame := methodFrame(0, &wire.ConnectionTuneOk{ChannelMax: 2047, FrameMax: 131072})
	unexpected := func(m wire.Method) expectation { // RabbitMQ: "CHANNEL_ERROR - unexpected method in connection state ..."
		return hardClose(wire.ChannelError, m.ClassID(), m.MethodID())
	}
	runRawCases(t, []rawCase{
		// Before tune-ok RabbitMQ closes the socket without a word
		// ("unexpected method in connection state tuning/starting" in its log).
		{name: "connection.open before tune-ok", stage: stageTuning, send: methodFrame(0, &wire.ConnectionOpen{VirtualHost: "/"}), expect: silentClose},
		{name: "tune-ok before start-ok", stage: stageStarted, send: tuneOkFrame, expect: silentClose},
		{name: "start-ok twice", stage: stageTuning, send: startOk, expect: silentClose},
		{name: "connection.close before start-ok", stage: stageStarted, send: methodFrame(0, &wire.ConnectionClose{ReplyCode: 200}), expect: silentClose},
		{name: "connection.close before tune-ok", stage: stageTuning, send: methodFrame(0, &wire.ConnectionClose{ReplyCode: 200}), expect: silentClose},
		// After tune-ok, connection.close with CHANNEL_ERROR "unexpected
		// method in connection state opening".
		{name: "tune-ok twice", stage: stageOpening, send: tuneOkFrame, expect: unexpected(&wire.ConnectionTuneOk{})},
		{name: "connection.close before open", stage: stageOpening, send: methodFrame(0, &wire.ConnectionClose{ReplyCode: 200}), expect: unexpected(&wire.ConnectionClose{})},
		{name: "basic.publish on channel 0 before open", stage: stageOpening, send: methodFrame(0, &wire.BasicPublish{}), expect: unexpected(&wire.BasicPublish{})},
		// RabbitMQ: "UNEXPECTED_FRAME - type 1, all octets = <<0,20,0,10,0>>".
		{name: "channel.open before open", stage: stageOpening, send: methodFrame(1, &wire.ChannelOpen{}), expect: hardClose(wire.UnexpectedFrame, 0, 0)},
		// Once open, "CHANNEL_ERROR - unexpected method in connection
		// state running", with the method's ids.
		{name: "basic.publish on channel 0", stage: stageOpen, send: methodFrame(0, &wire.BasicPublish{RoutingKey: "x"}), expect: unexpected(&wire.BasicPublish{})},
		{name: "basic.deliver on channel 0", stage: stageOpen, send: methodFrame(0, &wire.BasicDeliver{}), expect: unexpected(&wire.BasicDeliver{})},
		{name: "connection.start from the client", stage: stageOpen, send: methodFrame(0, &wire.ConnectionStart{VersionMinor: 9}), expect: unexpected(&wire.ConnectionStart{})},
		{name: "start-ok after open", stage: stageOpen, send: startOk, expect: unexpected(&wire.ConnectionStartOk{})},
		{name: "tune-ok after open", stage: stageOpen, send: tuneOkFrame, expect: unexpected(&wire.ConnectionTuneOk{})},
		{name: "connection.open twice", stage: stageOpen, send: methodFrame(0, &wire.ConnectionOpen{VirtualHost: "/"}), expect: unexpected(&wire.ConnectionOpen{})},
		{name: "secure-ok after open", stage: stageOpen, send: methodFrame(0, &wire.ConnectionSecureOk{Response: "x"}), expect: unexpected(&wire.ConnectionSecureOk{})},
		{name: "unsolicited close-ok", stage: stageOpen, send: methodFrame(0, &wire.ConnectionCloseOk{}), expect: unexpected(&wire.ConnectionCloseOk{})},
		{name: "connection.blocked from the client", stage: stageOpen, send: methodFrame(0, &wire.ConnectionBlocked{Reason: "x"}), expect: unexpected(&wire.ConnectionBlocked{})},
		{name: "connection.unblocked from the client", stage: stageOpen, send: methodFrame(0, &wire.ConnectionUnblocked{}), expect: unexpected(&wire.ConnectionUnblocked{})},
		// RabbitMQ: connection.update-secret-ok.
		{name: "update-secret", stage: stageOpen, send: methodFrame(0, &wire.ConnectionUpdateSecret{NewSecret: "x", Reason: "y"}), expect: reply[*wire.ConnectionUpdateSecretOk](0)},
	})
}

func TestRawContent(t *testing.T) {
	t.Parallel()
	pub := methodFrame(1, &wire.BasicPublish{RoutingKey: "nowhere"})
	qos := methodFrame(1, &wire.BasicQos{})
	declare := methodFrame(1, &wire.QueueDeclare{Queue: "q"})
	runRawCases(t, []rawCase{
		// RabbitMQ: "UNEXPECTED_FRAME - expected method frame, got non
		// method frame instead", class 0 method 0.
		{name: "header without publish", stage: stageChannel, send: headerFrame(1, wire.ClassBasic, 3), expect: hardClose(wire.UnexpectedFrame, 0, 0)},
		{name: "body without publish", stage: stageChannel, send: rawFrame(wire.FrameBody, 1, []byte("abc")), expect: hardClose(wire.UnexpectedFrame, 0, 0)},
		{name: "header on an unopened channel", stage: stageOpen, send: headerFrame(3, wire.ClassBasic, 3), expect: hardClose(wire.UnexpectedFrame, 0, 0)},
		// RabbitMQ: "UNEXPECTED_FRAME - type 2, all octets = <<...>>".
		{name: "header on channel 0", stage: stageOpen, send: headerFrame(0, wire.ClassBasic, 3), expect: hardClose(wire.UnexpectedFrame, 0, 0)},
		// RabbitMQ: "UNEXPECTED_FRAME - expected content header for class
		// 60, got non content header frame instead", class 60 method 40.
		{name: "method for the header", stage: stageChannel, send: frames(pub, declare), expect: hardClose(wire.UnexpectedFrame, 60, 40)},
		{name: "header weight 1", stage: stageChannel, send: frames(pub, rawFrame(wire.FrameHeader, 1, []byte{0, 60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0})), expect: hardClose(wire.UnexpectedFrame, 60, 40)},
		// RabbitMQ: "UNEXPECTED_FRAME - expected content header for class
		// 60, got one for class 50 instead", class 60 method 40.
		{name: "header for class 50", stage: stageChannel, send: frames(pub, headerFrame(1, 50, 3)), expect: hardClose(wire.UnexpectedFrame, 60, 40)},
		// RabbitMQ: "UNEXPECTED_FRAME - expected content body, got non
		// content body frame instead", class 60 method 40.
		{name: "method for the body", stage: stageChannel, send: frames(pub, headerFrame(1, wire.ClassBasic, 3), declare), expect: hardClose(wire.UnexpectedFrame, 60, 40)},
		{name: "second header", stage: stageChannel, send: frames(pub, headerFrame(1, wire.ClassBasic, 3), headerFrame(1, wire.ClassBasic, 3)), expect: hardClose(wire.UnexpectedFrame, 60, 40)},
		// A body longer than declared: RabbitMQ says nothing, the message
		// never completes, and the next method is out of sequence (the
		// same 505 as above).
		{name: "body longer than declared", stage: stageChannel, send: frames(pub, headerFrame(1, wire.ClassBasic, 5), rawFrame(wire.FrameBody, 1, []byte("0123456789")), rawFrame(wire.FrameBody, 1, []byte("0123")), qos), expect: hardClose(wire.UnexpectedFrame, 60, 40)},
		// The same with frames large enough to be read straight into the
		// message (20,000 bytes declared, 20,001 sent).
		{name: "large body longer than declared", stage: stageChannel, send: frames(pub, headerFrame(1, wire.ClassBasic, 20000), rawFrame(wire.FrameBody, 1, make([]byte, 20001)), qos), expect: hardClose(wire.UnexpectedFrame, 60, 40)},
		// Empty body frames are fine: basic.qos-ok.
		{name: "empty body frame", stage: stageChannel, send: frames(pub, headerFrame(1, wire.ClassBasic, 3), rawFrame(wire.FrameBody, 1, nil), rawFrame(wire.FrameBody, 1, []byte("abc")), qos), expect: reply[*wire.BasicQosOk](1)},
		// RabbitMQ: "NOT_IMPLEMENTED - immediate=true", class 60 method 40.
		{name: "immediate", stage: stageChannel, send: frames(methodFrame(1, &wire.BasicPublish{RoutingKey: "x", Immediate: true}), headerFrame(1, wire.ClassBasic, 0)), expect: hardClose(wire.NotImplemented, 60, 40)},
	})
}

// TestRawServerMethods sends methods only a server sends.
func TestRawServerMethods(t *testing.T) {
	t.Parallel()
	qos := methodFrame(1, &wire.BasicQos{})
	unimplemented := func(m wire.Method) expectation { // RabbitMQ: "COMMAND_INVALID - unimplemented method"
		return hardClose(wire.CommandInvalid, m.ClassID(), m.MethodID())
	}
	runRawCases(t, []rawCase{
		// RabbitMQ takes in the content of basic.deliver, get-ok and
		// return, then refuses the method.
		{name: "basic.deliver", stage: stageChannel, send: frames(methodFrame(1, &wire.BasicDeliver{ConsumerTag: "x", DeliveryTag: 1}), headerFrame(1, wire.ClassBasic, 3), rawFrame(wire.FrameBody, 1, []byte("abc"))), expect: unimplemented(&wire.BasicDeliver{})},
		{name: "basic.get-ok", stage: stageChannel, send: frames(methodFrame(1, &wire.BasicGetOk{DeliveryTag: 1}), headerFrame(1, wire.ClassBasic, 0)), expect: unimplemented(&wire.BasicGetOk{})},
		{name: "basic.return", stage: stageChannel, send: frames(methodFrame(1, &wire.BasicReturn{ReplyCode: 312}), headerFrame(1, wire.ClassBasic, 0)), expect: unimplemented(&wire.BasicReturn{})},
		// RabbitMQ: "UNEXPECTED_FRAME - expected content header for class
		// 60, got non content header frame instead", class 60 method 60.
		{name: "basic.deliver without content", stage: stageChannel, send: frames(methodFrame(1, &wire.BasicDeliver{ConsumerTag: "x", DeliveryTag: 1}), qos), expect: hardClose(wire.UnexpectedFrame, 60, 60)},
		{name: "basic.get-empty", stage: stageChannel, send: methodFrame(1, &wire.BasicGetEmpty{}), expect: unimplemented(&wire.BasicGetEmpty{})},
		{name: "channel.open-ok", stage: stageChannel, send: methodFrame(1, &wire.ChannelOpenOk{}), expect: unimplemented(&wire.ChannelOpenOk{})},
		{name: "channel.flow-ok", stage: stageChannel, send: methodFrame(1, &wire.ChannelFlowOk{Active: true}), expect: unimplemented(&wire.ChannelFlowOk{})},
		{name: "channel.close-ok on an open channel", stage: stageChannel, send: methodFrame(1, &wire.ChannelCloseOk{}), expect: unimplemented(&wire.ChannelCloseOk{})},
		{name: "queue.declare-ok", stage: stageChannel, send: methodFrame(1, &wire.QueueDeclareOk{Queue: "x"}), expect: unimplemented(&wire.QueueDeclareOk{})},
		{name: "basic.qos-ok", stage: stageChannel, send: methodFrame(1, &wire.BasicQosOk{}), expect: unimplemented(&wire.BasicQosOk{})},
		{name: "basic.consume-ok", stage: stageChannel, send: methodFrame(1, &wire.BasicConsumeOk{ConsumerTag: "x"}), expect: unimplemented(&wire.BasicConsumeOk{})},
		{name: "tx.select-ok", stage: stageChannel, send: methodFrame(1, &wire.TxSelectOk{}), expect: unimplemented(&wire.TxSelectOk{})},
	})
}

func TestRawMalformedMethods(t *testing.T) {
	t.Parallel()
	runRawCases(t, []rawCase{
		// RabbitMQ's reader crashes on ids it does not know and drops the
		// socket without connection.close. Warren's rule is that bad input
		// always gets a close, so once the connection is open it answers
		// 503 COMMAND_INVALID with the ids; before that, the handshake
		// rule (close the socket, send nothing) applies, as in RabbitMQ.
		{name: "unknown class", stage: stageChannel, send: rawFrame(wire.FrameMethod, 1, []byte{0, 99, 0, 1}), expect: hardClose(wire.CommandInvalid, 99, 1), warrenOnly: "RabbitMQ drops the socket"},
		{name: "unknown method", stage: stageChannel, send: rawFrame(wire.FrameMethod, 1, []byte{0, 60, 0x03, 0xe7}), expect: hardClose(wire.CommandInvalid, 60, 999), warrenOnly: "RabbitMQ drops the socket"},
		{name: "unknown class on channel 0", stage: stageOpen, send: rawFrame(wire.FrameMethod, 0, []byte{0, 99, 0, 1}), expect: hardClose(wire.CommandInvalid, 99, 1), warrenOnly: "RabbitMQ drops the socket"},
		{name: "unknown class before start-ok", stage: stageStarted, send: rawFrame(wire.FrameMethod, 0, []byte{0, 99, 0, 1}), expect: silentClose},
		{name: "unknown class before open", stage: stageOpening, send: rawFrame(wire.FrameMethod, 0, []byte{0, 99, 0, 1}), expect: silentClose},
		// RabbitMQ: "FRAME_ERROR - cannot decode <<0>>", class 50 method 10.
		{name: "truncated arguments", stage: stageChannel, send: rawFrame(wire.FrameMethod, 1, []byte{0, 50, 0, 10, 0}), expect: hardClose(wire.FrameError, 50, 10)},
		// RabbitMQ: "FRAME_ERROR - cannot decode <<0,0,0,0,0,0,0,1,2,3>>",
		// class 60 method 10.
		{name: "trailing bytes", stage: stageChannel, send: rawFrame(wire.FrameMethod, 1, append(methodPayload(&wire.BasicQos{}), 1, 2, 3)), expect: hardClose(wire.FrameError, 60, 10)},
		// RabbitMQ: "FRAME_ERROR - type 1, all octets = <<0,50>>: unknown_frame".
		{name: "payload shorter than the ids", stage: stageChannel, send: rawFrame(wire.FrameMethod, 1, []byte{0, 50}), expect: hardClose(wire.FrameError, 0, 0)},
		// On channel 0 RabbitMQ fails to handle the decoding error:
		// "INTERNAL_ERROR", class 0 method 0; before open, a silent close.
		{name: "truncated connection.close", stage: stageOpen, send: rawFrame(wire.FrameMethod, 0, []byte{0, 10, 0, 50, 0}), expect: hardClose(wire.InternalError, 0, 0)},
		{name: "truncated connection.open", stage: stageOpening, send: rawFrame(wire.FrameMethod, 0, []byte{0, 10, 0, 40, 5}), expect: silentClose},
		{name: "truncated start-ok", stage: stageStarted, send: rawFrame(wire.FrameMethod, 0, []byte{0, 10, 0, 11, 0, 0}), expect: silentClose},
	})
}

// TestRawChannelClosing: once the server has sent channel.close, the
// channel ignores everything but close and close-ok (and channel.open,
// which is a second open), and close-ok frees its id.
func TestRawChannelClosing(t *testing.T) {
	t.Parallel()
	addr := rawTarget(t)
	// closed opens channels 1 and 2 and has the server close 1 with
	// "NOT_FOUND - no queue 'missing-queue' in vhost '/'", class 60 method 70.
	closed := func(t *testing.T) *rawClient {
		c := connect(t, addr)
		openChannel(t, c, 1)
		openChannel(t, c, 2)
		c.send(t, 1, &wire.BasicGet{Queue: "missing-queue"})
		m := c.expectChannelClose(t, 1, wire.NotFound)
		expectFailing(t, m.FailingClassID, m.FailingMethodID, 60, 70)
		return c
	}
	t.Run("ignored until close-ok", func(t *testing.T) {
		t.Parallel()
		c := closed(t)
		c.write(t, frames(
			methodFrame(1, &wire.QueueDeclare{Exclusive: true}),
			methodFrame(1, &wire.BasicQos{}),
			methodFrame(1, &wire.BasicGet{Queue: "missing-queue"}),
			methodFrame(2, &wire.BasicQos{}), // the other channel still works
		))
		expectMethod[*wire.BasicQosOk](t, c, 2)
		c.send(t, 1, &wire.ChannelCloseOk{})
		c.send(t, 1, &wire.ChannelOpen{})
		expectMethod[*wire.ChannelOpenOk](t, c, 1) // and nothing before it
		c.send(t, 1, &wire.BasicQos{})
		expectMethod[*wire.BasicQosOk](t, c, 1)
	})
	// RabbitMQ: channel.close-ok; the channel still waits for close-ok.
	t.Run("close crossing", func(t *testing.T) {
		t.Parallel()
		c := closed(t)
		c.send(t, 1, &wire.ChannelClose{ReplyCode: 200})
		expectMethod[*wire.ChannelCloseOk](t, c, 1)
		c.send(t, 1, &wire.ChannelCloseOk{})
		openChannel(t, c, 1)
	})
	// RabbitMQ: "CHANNEL_ERROR - second 'channel.open' seen", class 20 method 10.
	t.Run("open before close-ok", func(t *testing.T) {
		t.Parallel()
		c := closed(t)
		c.send(t, 1, &wire.ChannelOpen{})
		hardClose(wire.ChannelError, 20, 10)(t, c)
	})
}

// TestRawConnectionClosing: once the server has sent connection.close it
// drops everything but close-ok, which makes it close the socket.
func TestRawConnectionClosing(t *testing.T) {
	t.Parallel()
	addr := rawTarget(t)
	closing := func(t *testing.T) *rawClient {
		c := connect(t, addr)
		openChannel(t, c, 1)
		c.send(t, 1, &wire.ChannelOpen{}) // "CHANNEL_ERROR - second 'channel.open' seen"
		c.expectConnectionClose(t, wire.ChannelError)
		return c
	}
	t.Run("close-ok", func(t *testing.T) {
		t.Parallel()
		c := closing(t)
		c.write(t, frames(
			methodFrame(2, &wire.ChannelOpen{}),
			methodFrame(1, &wire.QueueDeclare{Exclusive: true}),
			methodFrame(0, &wire.ConnectionOpen{VirtualHost: "/"}),
			methodFrame(0, &wire.ConnectionTuneOk{ChannelMax: 1, FrameMax: 4096}),
			rawFrame(wire.FrameHeartbeat, 1, nil),
			headerFrame(1, wire.ClassBasic, 3),
			rawFrame(wire.FrameBody, 1, []byte("abc")),
			rawFrame(wire.FrameMethod, 1, []byte{0, 50, 0, 10, 0}),
			methodFrame(0, &wire.ConnectionCloseOk{}),
		))
		c.expectSocketClosed(t) // and nothing before
	})
	// RabbitMQ: connection.close-ok, then it waits for close-ok.
	t.Run("close crossing", func(t *testing.T) {
		t.Parallel()
		c := closing(t)
		c.send(t, 0, &wire.ConnectionClose{ReplyCode: 200})
		expectMethod[*wire.ConnectionCloseOk](t, c, 0)
		c.send(t, 0, &wire.ConnectionCloseOk{})
		c.expectSocketClosed(t)
	})
}

func TestRawAuthentication(t *testing.T) {
	t.Parallel()
	startOk := func(authClose bool, mechanism, response string) []byte {
		return methodFrame(0, &wire.ConnectionStartOk{ClientProperties: clientProps(authClose), Mechanism: mechanism, Response: response, Locale: "en_US"})
	}
	amqplain := func(user, pass string) string {
		b, err := wire.AppendTable(nil, wire.Table{"LOGIN": user, "PASSWORD": pass})
		if err != nil {
			t.Fatal(err)
		}
		return string(b[4:]) // a table without its length
	}
	// RabbitMQ: "ACCESS_REFUSED - Login was refused using authentication
	// mechanism PLAIN. For details see the broker logfile.", class 0
	// method 0, then the socket closes without waiting for close-ok.
	refused := func(t *testing.T, c *rawClient) {
		m := c.expectConnectionClose(t, wire.AccessRefused)
		expectFailing(t, m.FailingClassID, m.FailingMethodID, 0, 0)
		c.expectSocketClosed(t)
	}
	runRawCases(t, []rawCase{
		{name: "wrong password", stage: stageStarted, send: startOk(true, "PLAIN", plain("guest", "wrong")), expect: refused},
		{name: "unknown user", stage: stageStarted, send: startOk(true, "PLAIN", plain("nobody", "guest")), expect: refused},
		{name: "wrong password AMQPLAIN", stage: stageStarted, send: startOk(true, "AMQPLAIN", amqplain("guest", "wrong")), expect: refused},
		{name: "AMQPLAIN", stage: stageStarted, send: startOk(true, "AMQPLAIN", amqplain("guest", "guest")), expect: reply[*wire.ConnectionTune](0)},
		// Without authentication_failure_close: socket closed, no close.
		{name: "wrong password without the capability", stage: stageStarted, send: startOk(false, "PLAIN", plain("guest", "wrong")), expect: silentClose},
		// RabbitMQ: socket closed, no close, capability or not.
		{name: "unknown mechanism", stage: stageStarted, send: startOk(true, "FOO", plain("guest", "guest")), expect: silentClose},
		{name: "malformed PLAIN response", stage: stageStarted, send: startOk(true, "PLAIN", "garbage"), expect: silentClose},
	})
}

func TestRawTune(t *testing.T) {
	t.Parallel()
	tuneOk := func(channelMax uint16, frameMax uint32) []byte {
		return methodFrame(0, &wire.ConnectionTuneOk{ChannelMax: channelMax, FrameMax: frameMax})
	}
	runRawCases(t, []rawCase{
		// RabbitMQ refuses values out of [4096, its maximum], 0 ("no
		// limit") included, by closing the socket without connection.close
		// ("negotiated channel_max = 0 (no limit) is higher than the
		// maximum allowed value (2047)" in its log).
		{name: "frame_max 100", stage: stageTuning, send: tuneOk(2047, 100), expect: silentClose},
		{name: "frame_max 200000", stage: stageTuning, send: tuneOk(2047, 200000), expect: silentClose},
		{name: "frame_max 0", stage: stageTuning, send: tuneOk(2047, 0), expect: silentClose},
		{name: "channel_max 0", stage: stageTuning, send: tuneOk(0, 131072), expect: silentClose},
		{name: "channel_max 3000", stage: stageTuning, send: tuneOk(3000, 131072), expect: silentClose},
		// frame_max 4096 holds a payload of 4096 but not 4097: "FRAME_ERROR -
		// type 3, all octets = <<>>: {frame_too_large,4097,4088}".
		{name: "frame_max 4096", stage: stageTuning, send: frames(tuneOk(2047, 4096), methodFrame(0, &wire.ConnectionOpen{VirtualHost: "/"}), methodFrame(1, &wire.ChannelOpen{}),
			methodFrame(1, &wire.BasicPublish{RoutingKey: "nowhere"}), headerFrame(1, wire.ClassBasic, 4096+4097), rawFrame(wire.FrameBody, 1, make([]byte, 4096)), frameHeader(wire.FrameBody, 1, 4097)),
			expect: func(t *testing.T, c *rawClient) {
				expectMethod[*wire.ConnectionOpenOk](t, c, 0)
				expectMethod[*wire.ChannelOpenOk](t, c, 1)
				hardClose(wire.FrameError, 0, 0)(t, c)
			}},
	})
}

// TestRawClientClose: connection.close from the client gets close-ok and
// the socket closes (RabbitMQ waits for the client to close first, for
// the heartbeat interval at most, 1 s here).
func TestRawClientClose(t *testing.T) {
	t.Parallel()
	c := dialRaw(t, rawTarget(t))
	advance(t, c, stageTuning)
	c.send(t, 0, &wire.ConnectionTuneOk{ChannelMax: c.tune.ChannelMax, FrameMax: c.tune.FrameMax, Heartbeat: 1})
	open(t, c)
	openChannel(t, c, 1)
	c.send(t, 0, &wire.ConnectionClose{ReplyCode: 200, ReplyText: "bye"})
	expectMethod[*wire.ConnectionCloseOk](t, c, 0)
	c.expectSocketClosed(t)
}

func TestRawHandshakeTimeout(t *testing.T) {
	t.Parallel()
	addr := rawTarget(t, func(o *server.Options) { o.HandshakeTimeout = 200 * time.Millisecond })
	t.Run("after the header", func(t *testing.T) {
		t.Parallel()
		c := dialRaw(t, addr)
		greet(t, c)
		c.expectSocketClosed(t)
	})
	t.Run("before the header", func(t *testing.T) {
		t.Parallel()
		c := dialRaw(t, addr)
		c.write(t, []byte("AMQP"))
		c.expectSocketClosed(t)
	})
	t.Run("after tune-ok", func(t *testing.T) {
		t.Parallel()
		c := dialRaw(t, addr)
		advance(t, c, stageOpening)
		c.expectSocketClosed(t)
	})
}

func TestRawHeartbeat(t *testing.T) {
	t.Parallel()
	addr := rawTarget(t)
	withHeartbeat := func(t *testing.T) *rawClient {
		c := dialRaw(t, addr)
		advance(t, c, stageTuning)
		c.send(t, 0, &wire.ConnectionTuneOk{ChannelMax: c.tune.ChannelMax, FrameMax: c.tune.FrameMax, Heartbeat: 1})
		open(t, c)
		return c
	}
	// RabbitMQ closes the socket of a client silent for about two
	// heartbeat intervals, without connection.close.
	t.Run("silent client", func(t *testing.T) {
		t.Parallel()
		withHeartbeat(t).expectSocketClosed(t)
	})
	// RabbitMQ sends heartbeats to an idle client, for as long as it
	// stays (the client answers each with its own, so it is not silent).
	t.Run("server heartbeats", func(t *testing.T) {
		t.Parallel()
		c := withHeartbeat(t)
		for i := range 4 {
			f, err := c.readFrame()
			if err != nil {
				t.Fatalf("want heartbeat %d: %v", i+1, err)
			}
			if f.Type != wire.FrameHeartbeat || f.Channel != 0 || len(f.Payload) != 0 {
				t.Fatalf("want heartbeat %d, got a frame of type %d on channel %d, %d bytes", i+1, f.Type, f.Channel, len(f.Payload))
			}
			c.write(t, rawFrame(wire.FrameHeartbeat, 0, nil))
		}
	})
}

// FuzzServerFrames writes fuzzed bytes after a valid handshake: the server
// must not panic or hang. Once the client has closed its side, the server
// must close the socket within rawTimeout, whatever it answered.
func FuzzServerFrames(f *testing.F) {
	pub := methodFrame(1, &wire.BasicPublish{RoutingKey: "q"})
	open1 := methodFrame(1, &wire.ChannelOpen{})
	for _, seed := range [][]byte{
		nil,
		open1,
		frames(open1, methodFrame(1, &wire.QueueDeclare{Queue: "q"}), pub, headerFrame(1, wire.ClassBasic, 3), rawFrame(wire.FrameBody, 1, []byte("abc")), methodFrame(1, &wire.BasicGet{Queue: "q"})),
		frames(open1, methodFrame(1, &wire.ConfirmSelect{}), pub, headerFrame(1, wire.ClassBasic, 5), rawFrame(wire.FrameBody, 1, []byte("0123456789")), pub),
		frames(open1, methodFrame(1, &wire.TxSelect{}), pub, headerFrame(1, wire.ClassBasic, 0), methodFrame(1, &wire.TxCommit{})),
		frames(open1, methodFrame(1, &wire.BasicConsume{Queue: "q"}), methodFrame(1, &wire.BasicAck{DeliveryTag: 1})),
		frames(open1, methodFrame(1, &wire.BasicGet{Queue: "missing"}), methodFrame(1, &wire.QueueDeclare{}), methodFrame(1, &wire.ChannelCloseOk{}), open1),
		frames(open1, methodFrame(1, &wire.BasicDeliver{}), headerFrame(1, 60, 0)),
		frames(open1, methodFrame(1, &wire.ChannelOpen{}), methodFrame(0, &wire.ConnectionCloseOk{})),
		methodFrame(0, &wire.ConnectionClose{ReplyCode: 200}),
		frameHeader(wire.FrameMethod, 0, 1<<30),
		rawFrame(7, 1, []byte{1, 2, 3}),
		rawFrame(wire.FrameHeartbeat, 1, nil),
		rawFrame(wire.FrameMethod, 1, []byte{0, 50, 0, 10, 0}),
		badEnd(open1),
	} {
		f.Add(seed)
	}
	b := servertest.Start(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := dialRawErr(b.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.nc.Close()
		if err := handshakeErr(c); err != nil {
			t.Fatalf("handshake: %v", err)
		}
		c.writeErr(data) // the server may have closed already
		c.nc.(*net.TCPConn).CloseWrite()
		if err := c.drainUntilClosed(); err != nil {
			t.Fatalf("the server did not close the connection: %v", err)
		}
	})
}
