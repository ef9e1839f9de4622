package server_test

// A raw AMQP 0-9-1 client for protocol-error tests: it writes whatever
// bytes a test wants and reads the broker's frames with internal/wire. All
// of the raw client logic of rawframe_test.go lives here.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/warrenmq/warren/internal/wire"
	"github.com/warrenmq/warren/server"
)

// rawTimeout bounds every read and write: it is a failure bound, never
// something a test waits for.
const rawTimeout = 10 * time.Second

// rawTarget returns the address to test: a fresh Warren started with
// modify, or the reference broker when WARREN_REF_URL is set (refURL in
// integration_helpers_test.go), to check that the expectations are
// RabbitMQ's. A test that needs Warren options (modify) is skipped against
// the reference broker.
func rawTarget(t testing.TB, modify ...func(*server.Options)) string {
	t.Helper()
	return start(t, modify...).Addr
}

// isReference reports whether the tests run against the reference broker.
func isReference() bool { return refURL != "" }

// rawClient is one raw connection.
type rawClient struct {
	nc   net.Conn
	br   *bufio.Reader
	r    *wire.Reader
	dec  *wire.Decoder
	logf func(format string, args ...any) // nil: quiet (fuzzing)
	tune wire.ConnectionTune              // the server's connection.tune
	// skipContent makes nextMethod skip header and body frames, for tests
	// that look only at methods.
	skipContent bool
}

// dialRaw connects to addr; the socket is closed when the test ends.
func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	c, err := dialRawErr(addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.nc.Close() })
	c.logf = t.Logf
	return c
}

func dialRawErr(addr string) (*rawClient, error) {
	nc, err := net.DialTimeout("tcp", addr, rawTimeout)
	if err != nil {
		return nil, err
	}
	return newRawClient(nc), nil
}

// newRawClient is a raw client on nc.
func newRawClient(nc net.Conn) *rawClient {
	br := bufio.NewReaderSize(nc, 64<<10)
	return &rawClient{nc: nc, br: br, r: wire.NewReader(br, 1<<24), dec: wire.NewDecoder()}
}

// ---- building frames ----

// rawFrame encodes one frame with any type, channel and payload.
func rawFrame(typ uint8, ch uint16, payload []byte) []byte {
	b := []byte{typ, byte(ch >> 8), byte(ch)}
	b = append(b, byte(len(payload)>>24), byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload)))
	b = append(b, payload...)
	return append(b, wire.FrameEnd)
}

// methodFrame encodes m on channel ch.
func methodFrame(ch uint16, m wire.Method) []byte {
	b, err := wire.AppendMethodFrame(nil, ch, m)
	if err != nil {
		panic(err)
	}
	return b
}

// methodPayload is m's method frame payload: class id, method id, arguments.
func methodPayload(m wire.Method) []byte {
	f := methodFrame(0, m)
	return f[7 : len(f)-1]
}

// headerFrame encodes a content header of class with bodySize and no
// properties.
func headerFrame(ch, class uint16, bodySize uint64) []byte {
	return wire.AppendHeaderFrame(nil, ch, class, bodySize, []byte{0, 0})
}

// ---- writing ----

func (c *rawClient) writeErr(b []byte) error {
	c.nc.SetWriteDeadline(time.Now().Add(rawTimeout))
	_, err := c.nc.Write(b)
	return err
}

// write writes raw bytes.
func (c *rawClient) write(t testing.TB, b []byte) {
	t.Helper()
	if err := c.writeErr(b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// send writes one method frame.
func (c *rawClient) send(t testing.TB, ch uint16, m wire.Method) {
	t.Helper()
	c.write(t, methodFrame(ch, m))
}

// ---- reading ----

// readFrame reads the next frame, within rawTimeout.
func (c *rawClient) readFrame() (wire.Frame, error) {
	c.nc.SetReadDeadline(time.Now().Add(rawTimeout))
	return c.r.ReadFrame()
}

// readBytes reads exactly n raw bytes (a protocol header), within
// rawTimeout; fewer are returned with the error that cut them short.
func (c *rawClient) readBytes(n int) ([]byte, error) {
	c.nc.SetReadDeadline(time.Now().Add(rawTimeout))
	b := make([]byte, n)
	k, err := io.ReadFull(c.br, b)
	return b[:k], err
}

// nextMethod reads up to the next method frame, skipping heartbeats (and
// content frames with skipContent). Any other frame is an error.
func (c *rawClient) nextMethod() (uint16, wire.Method, error) {
	for {
		f, err := c.readFrame()
		if err != nil {
			return 0, nil, err
		}
		switch f.Type {
		case wire.FrameHeartbeat:
			continue
		case wire.FrameHeader, wire.FrameBody:
			if c.skipContent {
				continue
			}
			return 0, nil, fmt.Errorf("unexpected frame type %d on channel %d", f.Type, f.Channel)
		case wire.FrameMethod:
			m, err := c.dec.DecodeMethod(f.Payload)
			if err != nil {
				return 0, nil, fmt.Errorf("undecodable method frame from the server: %w", err)
			}
			if c.logf != nil {
				c.logf("<- ch %d %s", f.Channel, describe(m))
			}
			return f.Channel, m, nil
		default:
			return 0, nil, fmt.Errorf("unexpected frame type %d on channel %d", f.Type, f.Channel)
		}
	}
}

// describe formats a method for logs, with the reply of a close.
func describe(m wire.Method) string {
	switch m := m.(type) {
	case *wire.ConnectionClose:
		return fmt.Sprintf("connection.close %d %q class %d method %d", m.ReplyCode, m.ReplyText, m.FailingClassID, m.FailingMethodID)
	case *wire.ChannelClose:
		return fmt.Sprintf("channel.close %d %q class %d method %d", m.ReplyCode, m.ReplyText, m.FailingClassID, m.FailingMethodID)
	case *wire.ConnectionTune:
		return fmt.Sprintf("connection.tune channel_max=%d frame_max=%d heartbeat=%d", m.ChannelMax, m.FrameMax, m.Heartbeat)
	}
	return m.MethodName()
}

// expectMethod reads the next method and fails unless it is a T on channel
// ch.
func expectMethod[T wire.Method](t testing.TB, c *rawClient, ch uint16) T {
	t.Helper()
	got, m, err := c.nextMethod()
	if err != nil {
		var zero T
		t.Fatalf("want %T on channel %d: %v", zero, ch, err)
	}
	mt, ok := m.(T)
	if !ok || got != ch {
		var zero T
		t.Fatalf("want %T on channel %d, got %s on channel %d", zero, ch, describe(m), got)
	}
	return mt
}

// expectConnectionClose reads a connection.close with code; it returns it
// for further checks (the failing class and method).
func (c *rawClient) expectConnectionClose(t testing.TB, code uint16) *wire.ConnectionClose {
	t.Helper()
	m := expectMethod[*wire.ConnectionClose](t, c, 0)
	if m.ReplyCode != code {
		t.Fatalf("connection.close: got %d %q, want %d", m.ReplyCode, m.ReplyText, code)
	}
	return m
}

// expectChannelClose reads a channel.close on ch with code.
func (c *rawClient) expectChannelClose(t testing.TB, ch, code uint16) *wire.ChannelClose {
	t.Helper()
	m := expectMethod[*wire.ChannelClose](t, c, ch)
	if m.ReplyCode != code {
		t.Fatalf("channel.close: got %d %q, want %d", m.ReplyCode, m.ReplyText, code)
	}
	return m
}

// expectFailing checks the failing class and method ids of a close.
func expectFailing(t testing.TB, gotClass, gotMethod, class, method uint16) {
	t.Helper()
	if gotClass != class || gotMethod != method {
		t.Errorf("failing method: got class %d method %d, want class %d method %d", gotClass, gotMethod, class, method)
	}
}

// closedErr reports whether err means the peer closed the socket.
func closedErr(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF)
}

// expectSocketClosed reads until the server closes the socket; any frame
// but a heartbeat, or no close within rawTimeout, fails.
func (c *rawClient) expectSocketClosed(t testing.TB) {
	t.Helper()
	for {
		f, err := c.readFrame()
		if closedErr(err) {
			return
		}
		if err != nil {
			t.Fatalf("want the socket closed: %v", err)
		}
		if f.Type == wire.FrameHeartbeat {
			continue
		}
		if f.Type == wire.FrameMethod {
			if m, err := c.dec.DecodeMethod(f.Payload); err == nil {
				t.Fatalf("want the socket closed, got %s on channel %d", describe(m), f.Channel)
			}
		}
		t.Fatalf("want the socket closed, got a frame of type %d on channel %d", f.Type, f.Channel)
	}
}

// expectProtocolHeader reads the 8-byte protocol header a server sends
// back to refuse a client's header.
func (c *rawClient) expectProtocolHeader(t testing.TB) {
	t.Helper()
	b, err := c.readBytes(8)
	if err != nil || string(b) != string(wire.ProtocolHeader) {
		t.Fatalf("want the protocol header %q back, got %q (%v)", wire.ProtocolHeader, b, err)
	}
}

// ---- expectations for table-driven cases ----

// expectation is what a case expects after it has written its bytes.
type expectation func(t *testing.T, c *rawClient)

// hardClose expects connection.close with code and the failing method,
// answers close-ok and expects the socket closed.
func hardClose(code, class, method uint16) expectation {
	return func(t *testing.T, c *rawClient) {
		t.Helper()
		m := c.expectConnectionClose(t, code)
		expectFailing(t, m.FailingClassID, m.FailingMethodID, class, method)
		c.writeErr(methodFrame(0, &wire.ConnectionCloseOk{})) // the server may be gone already
		c.expectSocketClosed(t)
	}
}

// silentClose expects the socket closed without connection.close.
func silentClose(t *testing.T, c *rawClient) {
	t.Helper()
	c.expectSocketClosed(t)
}

// reply expects a T on channel ch.
func reply[T wire.Method](ch uint16) expectation {
	return func(t *testing.T, c *rawClient) {
		t.Helper()
		expectMethod[T](t, c, ch)
	}
}

// ---- frames for the cases ----

// frames concatenates frames.
func frames(fs ...[]byte) []byte {
	var b []byte
	for _, f := range fs {
		b = append(b, f...)
	}
	return b
}

// frameHeader is only the 7-byte header of a frame claiming size payload
// bytes.
func frameHeader(typ uint8, ch uint16, size uint32) []byte {
	return []byte{typ, byte(ch >> 8), byte(ch), byte(size >> 24), byte(size >> 16), byte(size >> 8), byte(size)}
}

// badEnd replaces a frame's end byte.
func badEnd(f []byte) []byte {
	f = append([]byte(nil), f...)
	f[len(f)-1] = 0
	return f
}

// startOkSized is a start-ok (PLAIN guest/guest) frame whose payload is n
// bytes, padded in the client properties.
func startOkSized(n int) []byte {
	m := &wire.ConnectionStartOk{ClientProperties: wire.Table{"pad": ""}, Mechanism: "PLAIN", Response: plain("guest", "guest"), Locale: "en_US"}
	m.ClientProperties["pad"] = string(make([]byte, n-len(methodPayload(m))))
	if got := len(methodPayload(m)); got != n {
		panic(fmt.Sprintf("startOkSized: %d bytes, want %d", got, n))
	}
	return methodFrame(0, m)
}

// ---- how far a case runs the handshake first ----

type stage int

const (
	stageNone    stage = iota // connected, nothing sent
	stageStarted              // protocol header sent, connection.start read
	stageTuning               // start-ok sent, connection.tune read
	stageOpening              // tune-ok sent
	stageOpen                 // connection.open-ok read
	stageChannel              // channel 1 open
)

// advance runs the handshake up to s.
func advance(t testing.TB, c *rawClient, s stage) {
	t.Helper()
	if s >= stageStarted {
		greet(t, c)
	}
	if s >= stageTuning {
		login(t, c)
	}
	if s >= stageOpening {
		c.send(t, 0, tuneOk(c))
	}
	if s >= stageOpen {
		open(t, c)
	}
	if s >= stageChannel {
		openChannel(t, c, 1)
	}
}

// ---- the handshake ----

// greet writes the protocol header and reads connection.start.
func greet(t testing.TB, c *rawClient) *wire.ConnectionStart {
	t.Helper()
	c.write(t, wire.ProtocolHeader)
	return expectMethod[*wire.ConnectionStart](t, c, 0)
}

// clientProps are start-ok client properties; authClose sets the
// authentication_failure_close capability.
func clientProps(authClose bool) wire.Table {
	caps := wire.Table{"consumer_cancel_notify": true}
	if authClose {
		caps["authentication_failure_close"] = true
	}
	return wire.Table{"product": "warren rawclient_test", "capabilities": caps}
}

// plain is a PLAIN response.
func plain(user, pass string) string { return "\x00" + user + "\x00" + pass }

// login sends start-ok (PLAIN guest/guest) and reads connection.tune.
func login(t testing.TB, c *rawClient) *wire.ConnectionTune {
	t.Helper()
	c.send(t, 0, &wire.ConnectionStartOk{ClientProperties: clientProps(true), Mechanism: "PLAIN", Response: plain("guest", "guest"), Locale: "en_US"})
	tune := expectMethod[*wire.ConnectionTune](t, c, 0)
	c.tune = *tune
	return tune
}

// tuneOk accepts the server's channel_max and frame_max, with no
// heartbeat.
func tuneOk(c *rawClient) *wire.ConnectionTuneOk {
	return &wire.ConnectionTuneOk{ChannelMax: c.tune.ChannelMax, FrameMax: c.tune.FrameMax}
}

// open sends connection.open for "/" and reads open-ok.
func open(t testing.TB, c *rawClient) {
	t.Helper()
	c.send(t, 0, &wire.ConnectionOpen{VirtualHost: "/"})
	expectMethod[*wire.ConnectionOpenOk](t, c, 0)
}

// handshake runs the whole handshake: protocol header, start, start-ok
// PLAIN guest/guest, tune, tune-ok (the server's limits, no heartbeat),
// open, open-ok.
func handshake(t testing.TB, c *rawClient) {
	t.Helper()
	greet(t, c)
	login(t, c)
	c.send(t, 0, tuneOk(c))
	open(t, c)
}

// openChannel opens channel ch.
func openChannel(t testing.TB, c *rawClient, ch uint16) {
	t.Helper()
	c.send(t, ch, &wire.ChannelOpen{})
	expectMethod[*wire.ChannelOpenOk](t, c, ch)
}

// connect dials addr and runs the handshake.
func connect(t testing.TB, addr string) *rawClient {
	t.Helper()
	c := dialRaw(t, addr)
	handshake(t, c)
	return c
}

// handshakeErr is handshake for the fuzzer: errors instead of failures.
func handshakeErr(c *rawClient) error {
	if err := c.writeErr(wire.ProtocolHeader); err != nil {
		return err
	}
	step := func(send wire.Method, want func(wire.Method) bool) error {
		if send != nil {
			if err := c.writeErr(methodFrame(0, send)); err != nil {
				return err
			}
		}
		if want == nil {
			return nil
		}
		_, m, err := c.nextMethod()
		if err != nil {
			return err
		}
		if !want(m) {
			return fmt.Errorf("handshake: unexpected %s", describe(m))
		}
		return nil
	}
	is := func(name string) func(wire.Method) bool {
		return func(m wire.Method) bool { return m.MethodName() == name }
	}
	if err := step(nil, is("connection.start")); err != nil {
		return err
	}
	if err := step(&wire.ConnectionStartOk{ClientProperties: clientProps(true), Mechanism: "PLAIN", Response: plain("guest", "guest"), Locale: "en_US"}, is("connection.tune")); err != nil {
		return err
	}
	if err := step(&wire.ConnectionTuneOk{ChannelMax: 2047, FrameMax: 131072}, nil); err != nil {
		return err
	}
	return step(&wire.ConnectionOpen{VirtualHost: "/"}, is("connection.open-ok"))
}

// drainUntilClosed reads until the socket closes (io.EOF or a reset),
// answering a connection.close with close-ok. It fails on anything the
// raw client cannot parse or after rawTimeout.
func (c *rawClient) drainUntilClosed() error {
	for {
		f, err := c.readFrame()
		if closedErr(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if f.Type != wire.FrameMethod || f.Channel != 0 {
			continue
		}
		m, err := c.dec.DecodeMethod(f.Payload)
		if err != nil {
			return fmt.Errorf("undecodable method frame from the server: %w", err)
		}
		if _, ok := m.(*wire.ConnectionClose); ok {
			c.writeErr(methodFrame(0, &wire.ConnectionCloseOk{}))
		}
	}
}
