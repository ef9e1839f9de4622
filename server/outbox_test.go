package server

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warrenmq/warren/internal/wire"
)

// TestWriteNowOrder: frames queued by writeNow callers (the commit loop)
// and by sendMethod callers (the writer's) all arrive, whole and each
// sender's in order, while the peer reads nothing until both are done, so
// that writeNow's single non-blocking write goes out partly or not at all
// and the writer finishes it.
func TestWriteNowOrder(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	o := newOutbox(nc)
	if o.raw == nil {
		t.Fatal("a TCP connection's outbox has no raw socket: writeNow would never write")
	}
	done := make(chan struct{})
	go func() {
		o.run(func() time.Duration { return 0 })
		close(done)
	}()

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
	<-done
	if f, err := r.ReadFrame(); err == nil {
		t.Fatalf("an extra frame after all deliveries: channel %d", f.Channel)
	}
}
