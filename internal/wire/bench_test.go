package wire

import (
	"testing"
)

func publishPayload(tb testing.TB) []byte {
	fr, err := AppendMethodFrame(nil, 1, &BasicPublish{Exchange: "amq.topic", RoutingKey: "orders.eu.created", Mandatory: true})
	if err != nil {
		tb.Fatal(err)
	}
	return fr[7 : len(fr)-1]
}

func BenchmarkDecodeBasicPublish(b *testing.B) {
	d := NewDecoder()
	payload := publishPayload(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		m, err := d.DecodeMethod(payload)
		if err != nil || m.(*BasicPublish).RoutingKey == "" {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendDeliver(b *testing.B) {
	props := Properties{ContentType: "application/json", DeliveryMode: 2, Headers: Table{"k": "v"}}
	raw, err := props.AppendTo(nil)
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 1024)
	m := &BasicDeliver{ConsumerTag: "ctag-1", DeliveryTag: 1, Exchange: "amq.topic", RoutingKey: "orders.eu.created"}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		m.DeliveryTag++
		buf, err = AppendMethodFrame(buf[:0], 7, m)
		if err != nil {
			b.Fatal(err)
		}
		buf = AppendHeaderFrame(buf, 7, ClassBasic, uint64(len(body)), raw)
		buf = AppendBodyFrames(buf, 7, body, 131072)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkReadFrame(b *testing.B) {
	fr, _ := AppendMethodFrame(nil, 1, &BasicPublish{Exchange: "amq.topic", RoutingKey: "orders.eu.created"})
	data := make([]byte, 0, len(fr)*1000)
	for range 1000 {
		data = append(data, fr...)
	}
	rd := &loopReader{data: data}
	r := NewReader(rd, 131072)
	d := NewDecoder()
	b.ReportAllocs()
	for b.Loop() {
		f, err := r.ReadFrame()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := d.DecodeMethod(f.Payload); err != nil {
			b.Fatal(err)
		}
	}
}

// loopReader serves data forever.
type loopReader struct {
	data []byte
	off  int
}

func (l *loopReader) Read(p []byte) (int, error) {
	if l.off == len(l.data) {
		l.off = 0
	}
	n := copy(p, l.data[l.off:])
	l.off += n
	return n, nil
}

func BenchmarkParseContentHeader(b *testing.B) {
	p := fullProps()
	raw, _ := p.AppendTo(nil)
	fr := AppendHeaderFrame(nil, 1, ClassBasic, 10, raw)
	payload := fr[7 : len(fr)-1]
	b.ReportAllocs()
	for b.Loop() {
		_, _, raw, err := ParseContentHeader(payload)
		if err != nil || PropsDeliveryMode(raw) != 2 {
			b.Fatal(err)
		}
	}
}

func TestHotPathAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip()
	}
	d := NewDecoder()
	payload := publishPayload(t)
	d.DecodeMethod(payload) // warm the intern table
	if n := testing.AllocsPerRun(1000, func() {
		if _, err := d.DecodeMethod(payload); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("DecodeMethod(basic.publish): %v allocs/op, want 0", n)
	}

	for _, m := range []Method{&BasicAck{DeliveryTag: 1, Multiple: true}, &BasicNack{DeliveryTag: 2, Requeue: true}, &BasicReject{DeliveryTag: 3}} {
		fr, _ := AppendMethodFrame(nil, 1, m)
		p := fr[7 : len(fr)-1]
		if n := testing.AllocsPerRun(1000, func() { d.DecodeMethod(p) }); n != 0 {
			t.Errorf("DecodeMethod(%s): %v allocs/op", m.MethodName(), n)
		}
	}

	props := fullProps()
	raw, _ := props.AppendTo(nil)
	deliver := &BasicDeliver{ConsumerTag: "c", DeliveryTag: 1, Exchange: "e", RoutingKey: "k"}
	buf := make([]byte, 0, 8192)
	body := make([]byte, 5000)
	if n := testing.AllocsPerRun(1000, func() {
		buf, _ = AppendMethodFrame(buf[:0], 1, deliver)
		buf = AppendHeaderFrame(buf, 1, ClassBasic, uint64(len(body)), raw)
		buf = AppendBodyFrames(buf, 1, body, FrameMinSize)
		buf = AppendHeartbeat(buf)
	}); n != 0 {
		t.Errorf("append deliver: %v allocs/op", n)
	}

	hdr := AppendHeaderFrame(nil, 1, ClassBasic, 10, raw)
	if n := testing.AllocsPerRun(1000, func() {
		_, _, rp, _ := ParseContentHeader(hdr[7 : len(hdr)-1])
		PropsDeliveryMode(rp)
		PropsHasHeaders(rp)
	}); n != 0 {
		t.Errorf("ParseContentHeader: %v allocs/op", n)
	}

	var stream []byte
	for range 100 {
		stream = append(stream, publishFrame(t)...)
	}
	r := NewReader(&loopReader{data: stream}, 131072)
	r.ReadFrame()
	if n := testing.AllocsPerRun(1000, func() {
		f, _ := r.ReadFrame()
		d.DecodeMethod(f.Payload)
	}); n != 0 {
		t.Errorf("ReadFrame+DecodeMethod: %v allocs/op", n)
	}
}

func publishFrame(t testing.TB) []byte {
	fr, _ := AppendMethodFrame(nil, 1, &BasicPublish{Exchange: "x", RoutingKey: "y"})
	return fr
}
