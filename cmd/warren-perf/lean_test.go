package main

import (
	"testing"
	"time"

	"github.com/warrenmq/warren/internal/wire"
)

// TestLeanConfirmsWindow: acks out of order and multiple acks settle each
// tag once, and the window moves only past a run of settled tags.
func TestLeanConfirmsWindow(t *testing.T) {
	w := newLeanConfirms(4)
	noFlush := func() error { return nil }
	for range 4 {
		if _, ok := w.take(noFlush); !ok {
			t.Fatal("take refused with room in the window")
		}
	}
	var acks, nacks int
	each := func(_ time.Duration, ack bool) {
		if ack {
			acks++
		} else {
			nacks++
		}
	}
	w.settle(2, false, true, each) // 2 before 1: the window stays
	if got := w.outstanding(); got != 4 {
		t.Fatalf("outstanding %d after acking tag 2 alone, want 4", got)
	}
	w.settle(1, false, false, each) // 1 nacked: 1 and 2 pass
	if got := w.outstanding(); got != 2 {
		t.Fatalf("outstanding %d after tags 1 and 2, want 2", got)
	}
	w.settle(2, false, true, each) // a repeat settles nothing
	w.settle(4, true, true, each)  // 3 and 4
	if got := w.outstanding(); got != 0 || acks != 3 || nacks != 1 {
		t.Fatalf("outstanding %d acks %d nacks %d, want 0, 3, 1", got, acks, nacks)
	}
	// Tags go on from 5, reusing the slots.
	w.take(noFlush)
	w.settle(9, true, true, each) // beyond what was sent: only 5
	if got := w.outstanding(); got != 0 || acks != 4 {
		t.Fatalf("outstanding %d acks %d, want 0 and 4", got, acks)
	}
	w.end()
	if _, ok := w.take(noFlush); ok {
		t.Fatal("take after the reader ended")
	}
}

// TestLeanDeliveryTag reads the tag of a basic.deliver in place and
// refuses other methods and short frames.
func TestLeanDeliveryTag(t *testing.T) {
	deliver := []byte{0, 60, 0, 60, 3, 'c', 't', 'g', 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0}
	if tag, ok := deliveryTag(deliver); !ok || tag != 258 {
		t.Errorf("deliveryTag = %d, %v; want 258", tag, ok)
	}
	if _, ok := deliveryTag(deliver[:10]); ok {
		t.Error("a truncated deliver was read")
	}
	ack := []byte{0, 60, 0, 80, 0, 0, 0, 0, 0, 0, 0, 1, 0}
	if _, ok := deliveryTag(ack); ok {
		t.Error("basic.ack read as a deliver")
	}
}

// TestLeanNoAllocs: publishing (short of a flush) and acking allocate
// nothing per message once the buffers have grown.
func TestLeanNoAllocs(t *testing.T) {
	p := &leanPublisher{c: &leanConn{frameMax: 131072}, props: []byte{0x10, 0, 2}}
	body := make([]byte, 1024)
	if n := testing.AllocsPerRun(100, func() {
		p.buf = p.buf[:0]
		if err := p.publish("exchange", "key", false, body); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("publish: %v allocations per message", n)
	}
	var acks []byte
	ack := wire.BasicAck{}
	if n := testing.AllocsPerRun(100, func() {
		ack.DeliveryTag++
		acks, _ = wire.AppendMethodFrame(acks[:0], leanChannel, &ack)
		if _, ok := deliveryTag(acks[7:]); ok {
			t.Fatal("an ack read as a deliver")
		}
	}); n != 0 {
		t.Errorf("ack: %v allocations per message", n)
	}
}
