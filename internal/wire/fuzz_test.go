package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"testing"
)

// seedFrames returns real frames: every method (zero and filled), a content
// header with all properties, body frames and a heartbeat.
func seedFrames(t testing.TB) [][]byte {
	var out [][]byte
	for _, id := range methodIDs {
		m := newMethod(id[0], id[1])
		b, err := AppendMethodFrame(nil, 1, m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
		m = newMethod(id[0], id[1])
		fillMethod(t, m, 3)
		if b, err = AppendMethodFrame(nil, 2, m); err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	p := fullProps()
	raw, err := p.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, AppendHeaderFrame(nil, 1, ClassBasic, 5, raw))
	out = append(out, AppendHeaderFrame(nil, 1, ClassBasic, 0, []byte{0, 0}))
	out = append(out, AppendBodyFrames(nil, 1, []byte("hello"), 0))
	out = append(out, AppendHeartbeat(nil))
	return out
}

// twoReads returns data in (at most) two Read calls.
type twoReads struct {
	chunks [][]byte
}

func (r *twoReads) Read(p []byte) (int, error) {
	for len(r.chunks) > 0 && len(r.chunks[0]) == 0 {
		r.chunks = r.chunks[1:]
	}
	if len(r.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.chunks[0])
	r.chunks[0] = r.chunks[0][n:]
	return n, nil
}

func FuzzReadFrame(f *testing.F) {
	for _, fr := range seedFrames(f) {
		f.Add(fr, uint32(0))
		f.Add(fr, uint32(len(fr)))
		f.Add(fr, uint32(len(fr)-1))
	}
	all := bytes.Join(seedFrames(f), nil)
	f.Add(all, uint32(1<<20))
	f.Fuzz(func(t *testing.T, data []byte, frameMax uint32) {
		split := 0
		if len(data) > 0 {
			split = int(data[0]) % (len(data) + 1)
		}
		r := NewReader(&twoReads{chunks: [][]byte{data[:split:split], data[split:]}}, frameMax)
		limit := frameMax
		if limit == 0 {
			limit = FrameMinSize
		}
		off := 0
		for {
			fr, err := r.ReadFrame()
			if err != nil {
				if !reflect.DeepEqual(fr, Frame{}) {
					t.Fatalf("frame returned with error %v", err)
				}
				var we *Error
				if !errors.As(err, &we) && err != io.EOF && err != io.ErrUnexpectedEOF {
					t.Fatalf("unexpected error %v", err)
				}
				if err == io.EOF && off != len(data) {
					t.Fatalf("io.EOF mid-stream at %d of %d", off, len(data))
				}
				return
			}
			size := 8 + len(fr.Payload)
			if uint64(size) > uint64(limit) {
				t.Fatalf("frame of %d bytes accepted with frame_max %d", size, limit)
			}
			var re []byte
			re = append(re, fr.Type)
			re = binary.BigEndian.AppendUint16(re, fr.Channel)
			re = binary.BigEndian.AppendUint32(re, uint32(len(fr.Payload)))
			re = append(re, fr.Payload...)
			re = append(re, FrameEnd)
			if !bytes.Equal(re, data[off:off+size]) {
				t.Fatalf("re-encoded frame differs at %d", off)
			}
			off += size
		}
	})
}

func FuzzDecodeMethod(f *testing.F) {
	for _, fr := range seedFrames(f) {
		if fr[0] == FrameMethod {
			f.Add(fr[7 : len(fr)-1])
		}
	}
	d1, d2 := NewDecoder(), NewDecoder()
	f.Fuzz(func(t *testing.T, payload []byte) {
		orig := bytes.Clone(payload)
		m, err := d1.DecodeMethod(payload)
		if !bytes.Equal(orig, payload) {
			t.Fatal("DecodeMethod modified its input")
		}
		if err != nil {
			var we *Error
			if m != nil || !errors.As(err, &we) {
				t.Fatalf("bad error result %v %v", m, err)
			}
			switch we.Code {
			case FrameError, CommandInvalid, SyntaxError:
			default:
				t.Fatalf("unexpected code %d", we.Code)
			}
			return
		}
		if m.ClassID() != binary.BigEndian.Uint16(payload) || m.MethodID() != binary.BigEndian.Uint16(payload[2:]) {
			t.Fatal("ids")
		}
		b1, err := AppendMethodFrame(nil, 1, m)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		m2, err := d2.DecodeMethod(b1[7 : len(b1)-1])
		if err != nil {
			t.Fatalf("decode of re-encoding: %v", err)
		}
		b2, err := AppendMethodFrame(nil, 1, m2)
		if err != nil || !bytes.Equal(b1, b2) {
			t.Fatalf("unstable re-encoding: %v", err)
		}
		if len(b1)-8 > len(payload) {
			t.Fatalf("re-encoding grew from %d to %d bytes", len(payload), len(b1)-8)
		}
	})
}

func FuzzReadTable(f *testing.F) {
	good, _ := AppendTable(nil, allTypesTable())
	f.Add(good)
	f.Add([]byte{0, 0, 0, 0})
	f.Add(depthBomb(70, false))
	f.Add(depthBomb(70, true))
	p := fullProps()
	hdr, _ := AppendTable(nil, p.Headers)
	f.Add(hdr)
	f.Fuzz(func(t *testing.T, b []byte) {
		tb, rest, err := ReadTable(b)
		n, serr := skipTable(b, 0)
		if (err == nil) != (serr == nil) {
			t.Fatalf("ReadTable err %v, skipTable err %v", err, serr)
		}
		if err != nil {
			return
		}
		if n != len(b)-len(rest) {
			t.Fatalf("skipTable size %d, ReadTable used %d", n, len(b)-len(rest))
		}
		enc, err := AppendTable(nil, tb)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		tb2, rest2, err := ReadTable(enc)
		if err != nil || len(rest2) != 0 {
			t.Fatalf("decode of re-encoding: %v", err)
		}
		if !TablesEqual(tb, tb2) {
			t.Fatalf("tables differ:\n%#v\n%#v", tb, tb2)
		}
		enc2, _ := AppendTable(nil, tb2)
		if !bytes.Equal(enc, enc2) {
			t.Fatal("unstable encoding")
		}
	})
}

func propsEqual(a, b *Properties) bool {
	x, y := *a, *b
	if !TablesEqual(x.Headers, y.Headers) || !x.Timestamp.Equal(y.Timestamp) {
		return false
	}
	x.Headers, y.Headers = nil, nil
	x.Timestamp = y.Timestamp
	return reflect.DeepEqual(x, y)
}

func FuzzProperties(f *testing.F) {
	p := fullProps()
	raw, _ := p.AppendTo(nil)
	f.Add(raw)
	f.Add([]byte{0, 0})
	f.Add([]byte{0x10, 0x01, 0x00, 0x00, 2})
	f.Add([]byte{0x22, 0x00, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		var p Properties
		err := p.Decode(raw)
		if (err == nil) != (ValidateProps(raw) == nil) {
			t.Fatalf("Decode err %v, ValidateProps err %v", err, ValidateProps(raw))
		}
		if err != nil {
			if !reflect.DeepEqual(p, Properties{}) {
				t.Fatal("partial properties after error")
			}
			return
		}
		if PropsDeliveryMode(raw) != p.DeliveryMode || PropsPriority(raw) != p.Priority || PropsHasHeaders(raw) != (p.Flags&FlagHeaders != 0) {
			t.Fatal("fast accessors disagree")
		}
		if s, ok := PropsReplyTo(raw); s != p.ReplyTo || ok != (p.Flags&FlagReplyTo != 0) || PropsReplyToIs(raw, s) != ok {
			t.Fatal("PropsReplyTo disagrees")
		}
		enc, err := p.AppendTo(nil)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		var q Properties
		if err := q.Decode(enc); err != nil {
			t.Fatalf("decode of re-encoding: %v", err)
		}
		if !propsEqual(&p, &q) {
			t.Fatalf("properties differ:\n%#v\n%#v", p, q)
		}
		enc2, _ := q.AppendTo(nil)
		if !bytes.Equal(enc, enc2) {
			t.Fatal("unstable encoding")
		}
	})
}

func FuzzParseContentHeader(f *testing.F) {
	for _, fr := range seedFrames(f) {
		if fr[0] == FrameHeader {
			f.Add(fr[7 : len(fr)-1])
		}
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		cls, size, raw, err := ParseContentHeader(payload)
		if err != nil {
			var we *Error
			if !errors.As(err, &we) || raw != nil {
				t.Fatalf("bad error result: %v", err)
			}
			return
		}
		var p Properties
		if err := p.Decode(raw); err != nil {
			t.Fatalf("validated properties fail to decode: %v", err)
		}
		re := AppendHeaderFrame(nil, 0, cls, size, raw)
		want := bytes.Clone(payload)
		want[2], want[3] = 0, 0 // weight is not preserved
		if !bytes.Equal(re[7:len(re)-1], want) {
			t.Fatal("re-encoded header differs")
		}
	})
}
