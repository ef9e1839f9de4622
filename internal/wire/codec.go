package wire

import (
	"encoding/binary"
	"math"
	"time"
)

// ---- encoding primitives ----

func appendUint16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
func appendUint32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func appendUint64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

func appendTimestamp(b []byte, t time.Time) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(t.Unix()))
}

func appendShortstr(b []byte, s string) ([]byte, error) {
	if len(s) > math.MaxUint8 {
		return b, errShortstr
	}
	b = append(b, uint8(len(s)))
	return append(b, s...), nil
}

func appendLongstr(b []byte, s string) ([]byte, error) {
	if uint64(len(s)) > math.MaxUint32 {
		return b, errLongstr
	}
	b = appendUint32(b, uint32(len(s)))
	return append(b, s...), nil
}

func appendLongBytes(b []byte, s []byte) ([]byte, error) {
	if uint64(len(s)) > math.MaxUint32 {
		return b, errLongstr
	}
	b = appendUint32(b, uint32(len(s)))
	return append(b, s...), nil
}

func timeFromUnix(v uint64) time.Time { return time.Unix(int64(v), 0).UTC() }

// ---- decoding cursor ----

// cursor reads AMQP primitives from b with a sticky error: after the first
// failure every read returns a zero value and done reports the error.
type cursor struct {
	b   []byte
	off int
	err error
}

func (c *cursor) fail(err error) {
	if c.err == nil {
		c.err = err
	}
	c.off = len(c.b)
}

// take returns the next n bytes, or nil and sets the error if fewer remain.
func (c *cursor) take(n int) []byte {
	if c.err != nil {
		return nil
	}
	if n < 0 || n > len(c.b)-c.off {
		c.fail(errShort)
		return nil
	}
	p := c.b[c.off : c.off+n]
	c.off += n
	return p
}

func (c *cursor) octet() uint8 {
	if p := c.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (c *cursor) uint16() uint16 {
	if p := c.take(2); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

func (c *cursor) uint32() uint32 {
	if p := c.take(4); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

func (c *cursor) uint64() uint64 {
	if p := c.take(8); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

func (c *cursor) timestamp() time.Time {
	if p := c.take(8); p != nil {
		return timeFromUnix(binary.BigEndian.Uint64(p))
	}
	return time.Time{}
}

// shortstrBytes returns the bytes of a shortstr, aliasing the input.
func (c *cursor) shortstrBytes() []byte {
	n := int(c.octet())
	return c.take(n)
}

// shortstr returns a shortstr as a string that does not alias the input,
// interned through d when d is not nil.
func (c *cursor) shortstr(d *Decoder) string {
	p := c.shortstrBytes()
	if len(p) == 0 {
		return ""
	}
	if d != nil {
		return d.intern(p)
	}
	return string(p)
}

// longstrBytes returns the bytes of a longstr, aliasing the input. The length
// is checked against the bytes left before anything is allocated.
func (c *cursor) longstrBytes() []byte {
	n := c.uint32()
	if c.err != nil {
		return nil
	}
	if uint64(n) > uint64(len(c.b)-c.off) {
		c.fail(errSyntaxf("longstr length %d exceeds the %d bytes left", n, len(c.b)-c.off))
		return nil
	}
	return c.take(int(n))
}

func (c *cursor) longstr() string {
	return string(c.longstrBytes())
}

func (c *cursor) table() Table {
	if c.err != nil {
		return nil
	}
	t, n, err := readTable(c.b[c.off:], 0)
	if err != nil {
		c.fail(err)
		return nil
	}
	c.off += n
	return t
}

// done returns the sticky error, or an error if bytes are left over.
func (c *cursor) done() error {
	if c.err != nil {
		return c.err
	}
	if c.off != len(c.b) {
		return errTrailing
	}
	return nil
}

func noArgs(b []byte) error {
	if len(b) != 0 {
		return errTrailing
	}
	return nil
}
