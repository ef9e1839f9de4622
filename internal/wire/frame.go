package wire

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
)

// ProtocolHeader is the AMQP 0-9-1 protocol header a client sends first,
// and the server sends back when it rejects the client's header.
var ProtocolHeader = []byte("AMQP\x00\x00\x09\x01")

// frameOverhead is the frame header (type, channel, size) plus the end byte.
const frameOverhead = 7 + 1

// ReadProtocolHeader reads the 8-byte protocol header and returns
// ErrBadProtocolHeader if it is not ProtocolHeader. A short read returns the
// io error (io.EOF, io.ErrUnexpectedEOF, ...).
func ReadProtocolHeader(r io.Reader) error {
	var h [8]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return err
	}
	if string(h[:]) != string(ProtocolHeader) {
		return ErrBadProtocolHeader
	}
	return nil
}

// Frame is one AMQP frame.
type Frame struct {
	Type    uint8
	Channel uint16
	// Payload aliases the Reader's buffer (or, for a body frame, the
	// slice Reader.BodyInto gave): it is valid only until the next
	// ReadFrame call.
	Payload []byte
}

// Reader reads frames into one reused buffer. It is not safe for
// concurrent use.
type Reader struct {
	r   io.Reader
	max uint32
	hdr [7]byte
	buf []byte
	// BodyInto, if set, is asked for the place of each body frame's
	// payload of size bytes on channel; a slice of exactly size bytes
	// gets the payload read straight into it (and is the Frame's
	// Payload), saving a copy of a large body; nil has it read into the
	// Reader's buffer as usual. Bytes may land there before the frame is
	// known to be good: they count only once ReadFrame returns it.
	BodyInto func(channel uint16, size int) []byte
}

// NewReader returns a Reader of frames of at most maxFrameSize bytes, the
// whole frame (7-byte header, payload and end byte) as AMQP frame_max
// counts it. 0 is not "unlimited": it means FrameMinSize. r should be
// buffered (a *bufio.Reader, or any reader with a Buffered method); if it
// is not, it is wrapped in a bufio.Reader.
func NewReader(r io.Reader, maxFrameSize uint32) *Reader {
	if _, ok := r.(interface{ Buffered() int }); !ok {
		r = bufio.NewReaderSize(r, 64<<10)
	}
	rd := &Reader{r: r}
	rd.SetMaxFrameSize(maxFrameSize)
	return rd
}

// SetMaxFrameSize sets the largest accepted frame (whole frame, as
// frame_max). 0 means FrameMinSize. Use it after connection.tune-ok.
func (r *Reader) SetMaxFrameSize(n uint32) {
	if n == 0 {
		n = FrameMinSize
	}
	r.max = n
	if uint32(cap(r.buf)) > n {
		r.buf = nil // don't keep a buffer larger than now allowed
	}
}

// ReadFrame reads the next frame. Frame errors (size over the limit, which
// is detected from the header before the payload is read or memory
// allocated; bad end byte; unknown frame type, checked in that order, the
// last after the whole frame is read) are *Error with Code
// FrameError. io errors are returned unchanged: io.EOF at a frame boundary,
// io.ErrUnexpectedEOF inside a frame.
func (r *Reader) ReadFrame() (Frame, error) {
	if _, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		return Frame{}, err
	}
	typ := r.hdr[0]
	ch := binary.BigEndian.Uint16(r.hdr[1:3])
	size := binary.BigEndian.Uint32(r.hdr[3:7])
	total := uint64(size) + frameOverhead
	if total > uint64(r.max) {
		return Frame{}, &Error{Code: FrameError, Text: fmt.Sprintf("FRAME_ERROR - frame size %d exceeds frame_max %d", total, r.max)}
	}
	if typ == FrameBody && r.BodyInto != nil {
		if dst := r.BodyInto(ch, int(size)); dst != nil && len(dst) == int(size) {
			return r.readInto(ch, dst)
		}
	}
	n := int(size) + 1 // payload and end byte
	if cap(r.buf) < n {
		// Most frames are small, and an idle connection keeps its
		// buffer: start at 512 bytes and grow in powers of two, so a
		// busy connection soon reaches the size its frames need.
		c := max(2*cap(r.buf), 512, 1<<bits.Len(uint(n-1)))
		if limit := int(r.max) - 7; c > limit {
			c = limit
		}
		r.buf = make([]byte, c)
	}
	buf := r.buf[:n]
	if _, err := io.ReadFull(r.r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	if end := buf[size]; end != FrameEnd {
		return Frame{}, &Error{Code: FrameError, Text: fmt.Sprintf("FRAME_ERROR - bad frame end byte 0x%02x (expected 0xce)", end)}
	}
	// Checked last, as RabbitMQ does: the whole frame is consumed, so
	// the stream is still in step (the peer's close-ok can be read).
	switch typ {
	case FrameMethod, FrameHeader, FrameBody, FrameHeartbeat:
	default:
		return Frame{}, &Error{Code: FrameError, Text: fmt.Sprintf("FRAME_ERROR - unknown frame type %d", typ)}
	}
	return Frame{Type: typ, Channel: ch, Payload: buf[:size:size]}, nil
}

func appendFrameHeader(b []byte, typ uint8, channel uint16, size uint32) []byte {
	b = append(b, typ)
	b = appendUint16(b, channel)
	return appendUint32(b, size)
}

// readInto reads a body frame's payload into dst, then its end byte.
func (r *Reader) readInto(ch uint16, dst []byte) (Frame, error) {
	if _, err := io.ReadFull(r.r, dst); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	if _, err := io.ReadFull(r.r, r.hdr[:1]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	if end := r.hdr[0]; end != FrameEnd {
		return Frame{}, &Error{Code: FrameError, Text: fmt.Sprintf("FRAME_ERROR - bad frame end byte 0x%02x (expected 0xce)", end)}
	}
	return Frame{Type: FrameBody, Channel: ch, Payload: dst}, nil
}

// AppendMethodFrame appends a method frame carrying m on channel to b. On
// error (an argument that cannot be encoded) b is returned unchanged.
func AppendMethodFrame(b []byte, channel uint16, m Method) ([]byte, error) {
	start := len(b)
	b = appendFrameHeader(b, FrameMethod, channel, 0)
	b = appendUint16(b, m.ClassID())
	b = appendUint16(b, m.MethodID())
	b, err := m.AppendArgs(b)
	if err != nil {
		return b[:start], err
	}
	size := len(b) - start - 7
	if uint64(size) > 0xFFFFFFFF {
		return b[:start], fmt.Errorf("wire: %s frame too large", m.MethodName())
	}
	binary.BigEndian.PutUint32(b[start+3:], uint32(size))
	return append(b, FrameEnd), nil
}

// AppendHeaderFrame appends a content header frame. rawProps is the
// property flags word(s) followed by the property list, exactly as
// received (see ParseContentHeader) or produced by Properties.AppendTo.
func AppendHeaderFrame(b []byte, channel uint16, classID uint16, bodySize uint64, rawProps []byte) []byte {
	b = appendFrameHeader(b, FrameHeader, channel, uint32(12+len(rawProps)))
	b = appendUint16(b, classID)
	b = appendUint16(b, 0) // weight
	b = appendUint64(b, bodySize)
	b = append(b, rawProps...)
	return append(b, FrameEnd)
}

// AppendBodyFrames appends body as content body frames of at most
// BodyChunk(frameMax) payload bytes each. An empty body produces no
// frames.
func AppendBodyFrames(b []byte, channel uint16, body []byte, frameMax uint32) []byte {
	chunk := BodyChunk(frameMax)
	for len(body) > 0 {
		n := min(len(body), chunk)
		b = AppendBodyFrameHeader(b, channel, n)
		b = append(b, body[:n]...)
		b = append(b, FrameEnd)
		body = body[n:]
	}
	return b
}

// BodyChunk is the most body bytes one body frame carries under the
// negotiated frameMax (0, or a value too small to carry a byte, means
// FrameMinSize).
func BodyChunk(frameMax uint32) int {
	if frameMax <= frameOverhead {
		frameMax = FrameMinSize
	}
	return int(frameMax - frameOverhead)
}

// AppendBodyFrameHeader appends the header of a body frame carrying n
// bytes; the n bytes and FrameEnd must follow. It lets a writer send a
// body from where it lies (AppendBodyFrames copies it).
func AppendBodyFrameHeader(b []byte, channel uint16, n int) []byte {
	return appendFrameHeader(b, FrameBody, channel, uint32(n))
}

// AppendHeartbeat appends a heartbeat frame (channel 0, empty payload).
func AppendHeartbeat(b []byte) []byte {
	return append(b, FrameHeartbeat, 0, 0, 0, 0, 0, 0, FrameEnd)
}
