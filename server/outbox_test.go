package server

import (
	"bytes"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warrenmq/warren/internal/wire"
	"github.com/warrenmq/warren/queue"
)

// writers starts an outbox's writer goroutines and counts them.
type writers struct {
	wg      sync.WaitGroup
	started atomic.Int32
}

func (w *writers) spawn(f func()) {
	w.started.Add(1)
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		f()
	}()
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return server, client
}

// TestOutboxWriterOnDemand: the writer goroutine exits once the
// connection is idle, and what is queued later (a method, a heartbeat)
// starts a new one and goes out.
func TestOutboxWriterOnDemand(t *testing.T) {
	nc, client := tcpPair(t)
	var w writers
	o := newOutbox(nc, w.spawn)
	o.linger = 20 * time.Millisecond
	r := wire.NewReader(client, wire.FrameMinSize)
	dec := wire.NewDecoder()
	client.SetReadDeadline(time.Now().Add(time.Minute))
	expectAck := func(tag uint64) {
		t.Helper()
		f, err := r.ReadFrame()
		if err != nil {
			t.Fatalf("want ack %d: %v", tag, err)
		}
		if m, err := dec.DecodeMethod(f.Payload); err != nil {
			t.Fatalf("want ack %d: %v", tag, err)
		} else if a, ok := m.(*wire.BasicAck); !ok || a.DeliveryTag != tag {
			t.Fatalf("got %s, want ack %d", m.MethodName(), tag)
		}
	}
	waitIdle := func() {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); o.running.Load(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the writer of an idle connection is still running after a minute")
			}
		}
	}

	o.sendMethod(1, &wire.BasicAck{DeliveryTag: 1})
	expectAck(1)
	waitIdle()
	o.sendMethod(1, &wire.BasicAck{DeliveryTag: 2})
	expectAck(2)
	if n := w.started.Load(); n != 2 {
		t.Fatalf("%d writers started for two sends an idle spell apart, want 2", n)
	}

	// Heartbeats keep coming while the connection is otherwise idle; the
	// first comes from a writer the heartbeat timer starts.
	waitIdle()
	o.signal() // nothing to write: no writer starts
	if n := w.started.Load(); n != 2 {
		t.Fatalf("%d writers started, want still 2: a signal with nothing to write started one", n)
	}
	o.setHeartbeat(200 * time.Millisecond)
	for i := range 3 {
		f, err := r.ReadFrame()
		if err != nil {
			t.Fatalf("heartbeat %d: %v", i+1, err)
		}
		if f.Type != wire.FrameHeartbeat || f.Channel != 0 {
			t.Fatalf("heartbeat %d: got a frame of type %d on channel %d", i+1, f.Type, f.Channel)
		}
	}
	if n := w.started.Load(); n < 3 {
		t.Fatalf("%d writers started, want a third for the heartbeats", n)
	}
	o.close()
	w.wg.Wait()
	for {
		// (a heartbeat may have been queued before the close)
		f, err := r.ReadFrame()
		if err != nil {
			break
		}
		if f.Type != wire.FrameHeartbeat {
			t.Fatalf("a frame of type %d after close, want the socket closed", f.Type)
		}
	}
	n := w.started.Load()
	o.sendMethod(1, &wire.BasicAck{DeliveryTag: 3})
	if w.started.Load() != n {
		t.Fatal("a send after close started a writer")
	}
}

// TestWriteNowOrder: frames queued by writeNow callers (the commit loop)
// and by sendMethod callers (the writer's) all arrive, whole and each
// sender's in order, while the peer reads nothing until both are done, so
// that writeNow's single non-blocking write goes out partly or not at all
// and the writer finishes it.
func TestWriteNowOrder(t *testing.T) {
	nc, client := tcpPair(t)
	var w writers
	o := newOutbox(nc, w.spawn)
	if o.rw == nil {
		t.Fatal("a TCP connection's outbox has no raw socket: writeNow would never write")
	}

	// About 30 MB of frames from each sender: far more than the socket
	// buffers hold while the client does not read. writeNow alone first,
	// so that its writes fill the socket and one goes out in part, then
	// both at once.
	const n = 100_000
	tag := strings.Repeat("t", 250)
	nowAcks := func(from, to uint64) {
		for i := from; i <= to; i++ {
			o.queueMethod(1, &wire.BasicDeliver{ConsumerTag: tag, DeliveryTag: i})
			if i%7 == 0 {
				o.writeNow()
			}
		}
		o.writeNow()
	}
	nowAcks(1, n/2)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		nowAcks(n/2+1, n)
	}()
	go func() {
		defer wg.Done()
		for i := uint64(1); i <= n; i++ {
			o.sendMethod(2, &wire.BasicDeliver{ConsumerTag: tag, DeliveryTag: i})
		}
	}()
	wg.Wait()

	r := wire.NewReader(client, wire.FrameMinSize)
	dec := wire.NewDecoder()
	next := map[uint16]uint64{1: 1, 2: 1}
	client.SetReadDeadline(time.Now().Add(time.Minute))
	for next[1] <= n || next[2] <= n {
		f, err := r.ReadFrame()
		if err != nil {
			t.Fatalf("after deliveries up to %d and %d: %v", next[1]-1, next[2]-1, err)
		}
		m, err := dec.DecodeMethod(f.Payload)
		if err != nil {
			t.Fatalf("channel %d, after delivery %d: %v", f.Channel, next[f.Channel]-1, err)
		}
		d, ok := m.(*wire.BasicDeliver)
		if !ok || d.DeliveryTag != next[f.Channel] || d.ConsumerTag != tag {
			t.Fatalf("channel %d: got %#v, want delivery %d", f.Channel, m, next[f.Channel])
		}
		next[f.Channel]++
	}
	o.close()
	w.wg.Wait()
	if f, err := r.ReadFrame(); err == nil {
		t.Fatalf("an extra frame after all deliveries: channel %d", f.Channel)
	}
}

// TestOutboxLargeBodies: deliveries whose bodies the outbox writes from
// the message (refMin and up, one frame or several) and small ones it
// copies, with methods queued between them and writeNow calls (which
// leave segmented output to the writer), all arrive whole and in order.
func TestOutboxLargeBodies(t *testing.T) {
	t.Run("mixed sizes, 32 KiB frames", func(t *testing.T) {
		testOutboxBodies(t, 32<<10, []int{10, refMin - 1, refMin, 32<<10 - 8, 100_000, 0})
	})
	t.Run("64 KiB bodies, 128 KiB frames", func(t *testing.T) {
		testOutboxBodies(t, 128<<10, []int{64 << 10})
	})
}

func testOutboxBodies(t *testing.T, frameMax uint32, sizes []int) {
	nc, client := tcpPair(t)
	var w writers
	o := newOutbox(nc, w.spawn)
	o.frameMax = frameMax

	const n = 300
	bodyOf := func(i int) []byte {
		b := make([]byte, sizes[i%len(sizes)])
		for j := range b {
			b[j] = byte(i + j/7)
		}
		return b
	}
	go func() {
		for i := range n {
			e := queue.Entry{Msg: &queue.Message{Body: bodyOf(i), Props: []byte{0, 0}}}
			if !o.appendDelivery(1, nil, "c", uint64(i+1), e) {
				t.Errorf("delivery %d refused", i+1)
				return
			}
			o.queueMethod(2, &wire.BasicAck{DeliveryTag: uint64(i + 1)})
			if i%3 == 0 {
				o.writeNow()
			}
		}
	}()

	// Meanwhile, acks on channel 3 go out through writeNow, as the
	// commit loop's confirms do: its single write may go out in part
	// while bodies are queued behind it.
	const acks = 3000
	go func() {
		for i := uint64(1); i <= acks; i++ {
			o.queueMethod(3, &wire.BasicAck{DeliveryTag: i})
			o.writeNow()
		}
	}()

	r := wire.NewReader(client, 1<<20)
	dec := wire.NewDecoder()
	client.SetReadDeadline(time.Now().Add(time.Minute))
	var nextAck uint64 = 1
	// read reads a frame; one on channel 3 is checked and counted, and
	// read returns false for it.
	read := func() (wire.Frame, bool) {
		t.Helper()
		f, err := r.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if f.Channel != 3 {
			return f, true
		}
		m, err := dec.DecodeMethod(f.Payload)
		if a, ok := m.(*wire.BasicAck); err != nil || !ok || a.DeliveryTag != nextAck {
			t.Fatalf("channel 3: got %v (%v), want ack %d", m, err, nextAck)
		}
		nextAck++
		return f, false
	}
	next := func() wire.Frame {
		t.Helper()
		for {
			if f, ok := read(); ok {
				return f
			}
		}
	}
	for i := range n {
		f := next()
		m, err := dec.DecodeMethod(f.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if d, ok := m.(*wire.BasicDeliver); !ok || f.Channel != 1 || d.DeliveryTag != uint64(i+1) {
			t.Fatalf("message %d: got %s %+v on channel %d, want its basic.deliver", i+1, m.MethodName(), m, f.Channel)
		}
		f = next()
		_, size, _, err := wire.ParseContentHeader(f.Payload)
		if err != nil || f.Type != wire.FrameHeader {
			t.Fatalf("message %d: frame type %d (%v), want its content header", i+1, f.Type, err)
		}
		want := bodyOf(i)
		if size != uint64(len(want)) {
			t.Fatalf("message %d: header says %d bytes, want %d", i+1, size, len(want))
		}
		var got []byte
		for len(got) < len(want) {
			f = next()
			if f.Type != wire.FrameBody || len(f.Payload) > wire.BodyChunk(o.frameMax) {
				t.Fatalf("message %d: frame type %d of %d bytes after %d body bytes", i+1, f.Type, len(f.Payload), len(got))
			}
			got = append(got, f.Payload...)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("message %d: body differs", i+1)
		}
		f = next()
		if m, err := dec.DecodeMethod(f.Payload); err != nil || f.Channel != 2 {
			t.Fatalf("after message %d: %v on channel %d, want the ack", i+1, err, f.Channel)
		} else if a, ok := m.(*wire.BasicAck); !ok || a.DeliveryTag != uint64(i+1) {
			t.Fatalf("after message %d: got %s, want ack %d", i+1, m.MethodName(), i+1)
		}
	}
	for nextAck <= acks {
		if f, ok := read(); ok {
			t.Fatalf("after every message: a frame of type %d on channel %d", f.Type, f.Channel)
		}
	}
	o.close()
	w.wg.Wait()
}

// TestOutboxAfterClose: once connection.close is queued, only its
// close-ok may follow (§2.3.7): a connection.blocked queued by a reader
// that raced the close is dropped. When the writer has closed the socket,
// gone is closed.
func TestOutboxAfterClose(t *testing.T) {
	nc, client := tcpPair(t)
	var w writers
	o := newOutbox(nc, w.spawn)
	o.sendMethod(0, &wire.ConnectionClose{ReplyCode: 320, ReplyText: "shutdown"})
	o.sendMethod(0, &wire.ConnectionBlocked{Reason: "low on disk"})
	o.sendMethod(0, &wire.ConnectionCloseOk{})
	o.close()
	select {
	case <-o.gone:
	case <-time.After(10 * time.Second):
		t.Fatal("gone not closed after the writer closed the socket")
	}
	w.wg.Wait()
	r := wire.NewReader(client, wire.FrameMinSize)
	dec := wire.NewDecoder()
	var got []string
	for {
		f, err := r.ReadFrame()
		if err != nil {
			break
		}
		m, err := dec.DecodeMethod(f.Payload)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m.MethodName())
	}
	if want := "connection.close connection.close-ok"; strings.Join(got, " ") != want {
		t.Fatalf("frames %q, want %q", got, want)
	}
}

// TestOutboxBacklogNotCopied: returns queued for a client that does not
// read its socket (64 MiB of them) cost the broker about what is queued,
// not the three to five times that one buffer growing for them allocated
// (each growth copies everything into a new array and leaves the old one
// as garbage), and all of them arrive, in order, once the client reads.
func TestOutboxBacklogNotCopied(t *testing.T) {
	nc, client := tcpPair(t)
	var w writers
	o := newOutbox(nc, w.spawn)

	const n = 64 << 10 // 1 KiB bodies
	body := make([]byte, 1024)
	ret := &wire.BasicReturn{ReplyCode: 312, ReplyText: "NO_ROUTE", RoutingKey: "k"}
	m := &queue.Message{Body: body, Props: []byte{0, 0}}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range n {
		body[0], body[1] = byte(i), byte(i>>8)
		o.sendContent(1, ret, m)
	}
	runtime.ReadMemStats(&after)
	o.mu.Lock()
	queued := o.pendingLocked()
	o.mu.Unlock()
	if queued < n*1024/2 {
		// The socket took more than half: the client's side is not full.
		t.Fatalf("only %d bytes of %d returns held", queued, n)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 2*uint64(queued) {
		t.Errorf("queueing %d bytes allocated %d", queued, alloc)
	}

	r := wire.NewReader(client, 1<<20)
	dec := wire.NewDecoder()
	client.SetReadDeadline(time.Now().Add(time.Minute))
	for i := range n {
		f, err := r.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if m, err := dec.DecodeMethod(f.Payload); err != nil {
			t.Fatalf("return %d: %v", i, err)
		} else if _, ok := m.(*wire.BasicReturn); !ok {
			t.Fatalf("return %d: got %s", i, m.MethodName())
		}
		if f, err = r.ReadFrame(); err != nil || f.Type != wire.FrameHeader {
			t.Fatalf("return %d: %v, frame type %d, want its content header", i, err, f.Type)
		}
		if f, err = r.ReadFrame(); err != nil || f.Type != wire.FrameBody || len(f.Payload) != 1024 {
			t.Fatalf("return %d: %v, frame type %d of %d bytes, want its body", i, err, f.Type, len(f.Payload))
		}
		if f.Payload[0] != byte(i) || f.Payload[1] != byte(i>>8) {
			t.Fatalf("return %d: body of return %d", i, int(f.Payload[0])|int(f.Payload[1])<<8)
		}
	}
	o.close()
	w.wg.Wait()
}

// TestOutboxSealedThenFailedMethod: a method that cannot be encoded (a
// shortstr over 255 bytes) right after buf was sealed leaves buf empty and
// the sealed bytes in segs; the writer must still write them, in order.
func TestOutboxSealedThenFailedMethod(t *testing.T) {
	nc, client := tcpPair(t)
	var w writers
	o := newOutbox(nc, w.spawn)
	n := uint64(0)
	for full := false; !full; {
		n++
		o.queueMethod(1, &wire.BasicAck{DeliveryTag: n}) // no writer yet
		o.mu.Lock()
		full = len(o.buf) >= sealAt
		o.mu.Unlock()
	}
	o.queueMethod(1, &wire.BasicReturn{ReplyCode: 312, ReplyText: strings.Repeat("x", 300)})
	o.mu.Lock()
	sealed := len(o.buf) == 0 && len(o.segs) > 0
	o.mu.Unlock()
	if !sealed {
		t.Fatal("buf was not sealed before the method that failed")
	}
	o.signal()
	for taken := false; !taken; { // until the writer has taken segs
		o.mu.Lock()
		taken = len(o.segs) == 0
		o.mu.Unlock()
		runtime.Gosched()
	}
	o.sendMethod(1, &wire.BasicAck{DeliveryTag: n + 1})

	r := wire.NewReader(client, 1<<20)
	dec := wire.NewDecoder()
	client.SetReadDeadline(time.Now().Add(time.Minute))
	for want := uint64(1); want <= n+1; want++ {
		f, err := r.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		m, err := dec.DecodeMethod(f.Payload)
		if a, ok := m.(*wire.BasicAck); err != nil || !ok || a.DeliveryTag != want {
			t.Fatalf("got %v (%v), want ack %d of %d", m, err, want, n+1)
		}
	}
	o.close()
	w.wg.Wait()
}
