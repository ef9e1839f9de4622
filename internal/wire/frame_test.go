package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// strictReader serves data and fails the test if more than limit bytes
// are ever requested.
type strictReader struct {
	t     *testing.T
	data  []byte
	limit int
	read  int
}

func (r *strictReader) Read(p []byte) (int, error) {
	if r.read >= r.limit {
		r.t.Fatalf("read past %d bytes", r.limit)
	}
	if len(p) > r.limit-r.read {
		p = p[:r.limit-r.read]
	}
	n := copy(p, r.data[r.read:])
	r.read += n
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

func frameErr(t *testing.T, err error, prefix string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Code != FrameError || !strings.HasPrefix(e.Text, prefix) {
		t.Fatalf("got %v, want FrameError %q", err, prefix)
	}
}

func TestProtocolHeader(t *testing.T) {
	if err := ReadProtocolHeader(bytes.NewReader([]byte("AMQP\x00\x00\x09\x01"))); err != nil {
		t.Fatal(err)
	}
	if err := ReadProtocolHeader(bytes.NewReader([]byte("AMQP\x01\x01\x00\x09"))); err != ErrBadProtocolHeader {
		t.Fatal(err)
	}
	if err := ReadProtocolHeader(bytes.NewReader([]byte("GET / HTTP/1.1\r\n"))); err != ErrBadProtocolHeader {
		t.Fatal(err)
	}
	if err := ReadProtocolHeader(bytes.NewReader([]byte("AMQP"))); err != io.ErrUnexpectedEOF {
		t.Fatal(err)
	}
	if err := ReadProtocolHeader(bytes.NewReader(nil)); err != io.EOF {
		t.Fatal(err)
	}
}

func TestReadFrameSequence(t *testing.T) {
	var b []byte
	b, _ = AppendMethodFrame(b, 1, &BasicPublish{Exchange: "x", RoutingKey: "rk"})
	props := (&Properties{ContentType: "text/plain", DeliveryMode: 2})
	raw, _ := props.AppendTo(nil)
	b = AppendHeaderFrame(b, 1, ClassBasic, 10000, raw)
	body := bytes.Repeat([]byte("0123456789"), 1000)
	b = AppendBodyFrames(b, 1, body, FrameMinSize)
	b = AppendHeartbeat(b)

	r := NewReader(bytes.NewReader(b), FrameMinSize)
	f, err := r.ReadFrame()
	if err != nil || f.Type != FrameMethod || f.Channel != 1 {
		t.Fatal(f, err)
	}
	f, err = r.ReadFrame()
	if err != nil || f.Type != FrameHeader {
		t.Fatal(f, err)
	}
	cls, size, rp, err := ParseContentHeader(f.Payload)
	if err != nil || cls != ClassBasic || size != 10000 || !bytes.Equal(rp, raw) {
		t.Fatal(cls, size, rp, err)
	}
	var got []byte
	frames := 0
	for len(got) < len(body) {
		f, err = r.ReadFrame()
		if err != nil || f.Type != FrameBody || len(f.Payload) > FrameMinSize-8 {
			t.Fatal(f.Type, len(f.Payload), err)
		}
		got = append(got, f.Payload...)
		frames++
	}
	if !bytes.Equal(got, body) || frames != 3 {
		t.Fatalf("body mismatch, %d frames", frames)
	}
	f, err = r.ReadFrame()
	if err != nil || f.Type != FrameHeartbeat || f.Channel != 0 || len(f.Payload) != 0 {
		t.Fatal(f, err)
	}
	if _, err = r.ReadFrame(); err != io.EOF {
		t.Fatalf("want io.EOF, got %v", err)
	}
}

func TestReadFrameOversizedBeforeAllocation(t *testing.T) {
	hdr := []byte{FrameBody, 0, 1, 0x7F, 0xFF, 0xFF, 0xFF}
	sr := &strictReader{t: t, data: append(hdr, make([]byte, 100)...), limit: 7}
	r := NewReader(bufio.NewReader(sr), 131072)
	_, err := r.ReadFrame()
	frameErr(t, err, "FRAME_ERROR - frame size 2147483655 exceeds frame_max 131072")
	if r.buf != nil {
		t.Fatal("buffer allocated for oversized frame")
	}

	// Exactly at the limit is accepted; one more byte is not.
	for _, tc := range []struct {
		max  uint32
		size int
		ok   bool
	}{{4096, 4088, true}, {4096, 4089, false}, {0, 4088, true}, {0, 4089, false}, {9, 1, true}, {9, 2, false}} {
		fb := AppendBodyFrames(nil, 1, make([]byte, tc.size), 1<<20)
		r := NewReader(bytes.NewReader(fb), tc.max)
		f, err := r.ReadFrame()
		if tc.ok != (err == nil) || (tc.ok && len(f.Payload) != tc.size) {
			t.Errorf("max %d size %d: err %v", tc.max, tc.size, err)
		}
		if cap(r.buf) > int(max(tc.max, FrameMinSize)) {
			t.Errorf("buffer grew to %d", cap(r.buf))
		}
	}
}

func TestReadFrameErrors(t *testing.T) {
	good := AppendHeartbeat(nil)

	bad := bytes.Clone(good)
	bad[7] = 0xCD
	_, err := NewReader(bytes.NewReader(bad), 0).ReadFrame()
	frameErr(t, err, "FRAME_ERROR - bad frame end byte")

	for _, typ := range []byte{0, 4, 7, 9, 255} {
		bad = bytes.Clone(good)
		bad[0] = typ
		_, err = NewReader(bytes.NewReader(bad), 0).ReadFrame()
		frameErr(t, err, "FRAME_ERROR - unknown frame type")
	}

	// Truncated inside the header or payload: io.ErrUnexpectedEOF.
	fb, _ := AppendMethodFrame(nil, 1, &ChannelOpen{})
	for n := 1; n < len(fb); n++ {
		_, err := NewReader(bytes.NewReader(fb[:n]), 0).ReadFrame()
		if err != io.ErrUnexpectedEOF {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	// Other io errors are passed through.
	boom := errors.New("boom")
	_, err = NewReader(io.MultiReader(bytes.NewReader(fb[:9]), errReader{boom}), 0).ReadFrame()
	if err != boom {
		t.Fatalf("got %v", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestReaderReusesBuffer(t *testing.T) {
	var b []byte
	for i := 0; i < 10; i++ {
		b = AppendBodyFrames(b, 1, bytes.Repeat([]byte{byte(i)}, 1000+i), 0)
	}
	r := NewReader(bytes.NewReader(b), 0)
	var first *byte
	for i := 0; i < 10; i++ {
		f, err := r.ReadFrame()
		if err != nil || len(f.Payload) != 1000+i || f.Payload[0] != byte(i) {
			t.Fatal(err)
		}
		if i == 0 {
			first = &f.Payload[0]
		} else if &f.Payload[0] != first {
			t.Fatal("buffer not reused")
		}
	}
	r.SetMaxFrameSize(100)
	if _, err := r.ReadFrame(); err != io.EOF {
		t.Fatal(err)
	}
}

// TestReaderBodyInto: a body frame goes into the slice BodyInto gives when
// it is exactly the payload's size, and through the Reader's buffer when
// BodyInto gives nil or a slice of another size; other frame types never
// ask; the end byte is checked and a short payload is
// io.ErrUnexpectedEOF either way.
func TestReaderBodyInto(t *testing.T) {
	var b []byte
	b = AppendHeartbeat(b)
	b, _ = AppendMethodFrame(b, 1, &ChannelOpen{})
	b = AppendBodyFrames(b, 1, []byte("into"), 0)
	b = AppendBodyFrames(b, 2, []byte("buffered"), 0)
	b = AppendBodyFrames(b, 3, []byte("wrong size"), 0)
	dst := make([]byte, 4)
	var asked []uint16
	r := NewReader(bytes.NewReader(b), 0)
	r.BodyInto = func(ch uint16, size int) []byte {
		asked = append(asked, ch)
		switch ch {
		case 1:
			return dst[:size]
		case 3:
			return make([]byte, size+1)
		}
		return nil
	}
	for range 2 {
		if _, err := r.ReadFrame(); err != nil {
			t.Fatal(err)
		}
	}
	f, err := r.ReadFrame()
	if err != nil || f.Type != FrameBody || f.Channel != 1 || string(f.Payload) != "into" || &f.Payload[0] != &dst[0] {
		t.Fatalf("got %+v, %v: want channel 1's body read into the slice given", f, err)
	}
	for _, want := range []string{"buffered", "wrong size"} {
		f, err = r.ReadFrame()
		if err != nil || string(f.Payload) != want || &f.Payload[0] == &dst[0] {
			t.Fatalf("got %q, %v: want %q read into the Reader's buffer", f.Payload, err, want)
		}
	}
	if len(asked) != 3 || asked[0] != 1 || asked[1] != 2 || asked[2] != 3 {
		t.Fatalf("BodyInto asked for channels %v, want 1, 2, 3 (body frames only)", asked)
	}

	into := func(_ uint16, size int) []byte { return make([]byte, size) }
	good := AppendBodyFrames(nil, 1, []byte("abcdef"), 0)
	bad := bytes.Clone(good)
	bad[len(bad)-1] = 0
	r = NewReader(bytes.NewReader(bad), 0)
	r.BodyInto = into
	_, err = r.ReadFrame()
	frameErr(t, err, "FRAME_ERROR - bad frame end byte")
	for n := 8; n < len(good); n++ {
		r = NewReader(bytes.NewReader(good[:n]), 0)
		r.BodyInto = into
		if _, err := r.ReadFrame(); err != io.ErrUnexpectedEOF {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
}

func TestAppendBodyFrames(t *testing.T) {
	if got := AppendBodyFrames([]byte("x"), 1, nil, 4096); string(got) != "x" {
		t.Fatal("empty body produced frames")
	}
	body := []byte("abcdefghij")
	got := AppendBodyFrames(nil, 2, body, 12) // 4 bytes per frame
	want := []byte{}
	for _, c := range []string{"abcd", "efgh", "ij"} {
		want = append(want, 3, 0, 2, 0, 0, 0, byte(len(c)))
		want = append(want, c...)
		want = append(want, 0xCE)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got % x\nwant % x", got, want)
	}
	if n := len(AppendBodyFrames(nil, 1, make([]byte, 5000), 0)); n != 5000+2*8 {
		t.Fatalf("frameMax 0 → FrameMinSize: got %d bytes", n)
	}
	if !bytes.Equal(AppendHeartbeat(nil), []byte{8, 0, 0, 0, 0, 0, 0, 0xCE}) {
		t.Fatal("heartbeat")
	}
}

func TestAppendHeaderFrame(t *testing.T) {
	got := AppendHeaderFrame(nil, 5, ClassBasic, 0x0102030405060708, []byte{0x10, 0x00, 2})
	want := []byte{2, 0, 5, 0, 0, 0, 15, 0, 60, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0x10, 0, 2, 0xCE}
	if !bytes.Equal(got, want) {
		t.Fatalf("got % x\nwant % x", got, want)
	}
}
