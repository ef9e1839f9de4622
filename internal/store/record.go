package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/warrenmq/warren/internal/wire"
	"github.com/warrenmq/warren/queue"
)

// recordVersion is the low 7 bits of the first byte of every message
// record. A record with any other version is refused, so a later format can
// be told apart.
const recordVersion = 1

// recordDelivered, set in the first byte, marks an entry that was delivered
// before its record was first written: the mark travels in the record
// instead of the delivered bucket, saving a write.
const recordDelivered = 0x80

// recordHeader is the fixed part of a record: the version byte and
// expiresAt.
const recordHeader = 1 + 8

// errCorrupt is wrapped by every error about bytes in the file that do not
// decode.
var errCorrupt = errors.New("corrupt record")

// record is a decoded message record. Its slices alias the bytes it was
// decoded from.
type record struct {
	expiresAt  int64
	exchange   []byte
	routingKey []byte
	props      []byte
	body       []byte
	delivered  bool // recordDelivered was set
}

// appendRecord appends the record for m, which may be nil (an empty
// message): the version byte, expiresAt as 8 big-endian bytes, the exchange,
// routing key and props each as a uvarint length and the bytes, then the
// body up to the end.
func appendRecord(b []byte, m *queue.Message, expiresAt int64) []byte {
	return appendRecordFlags(b, m, expiresAt, false)
}

// appendRecordFlags is appendRecord with the delivered flag.
func appendRecordFlags(b []byte, m *queue.Message, expiresAt int64, delivered bool) []byte {
	v := byte(recordVersion)
	if delivered {
		v |= recordDelivered
	}
	b = append(b, v)
	b = binary.BigEndian.AppendUint64(b, uint64(expiresAt))
	if m == nil {
		return append(b, 0, 0, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(m.Exchange)))
	b = append(b, m.Exchange...)
	b = binary.AppendUvarint(b, uint64(len(m.RoutingKey)))
	b = append(b, m.RoutingKey...)
	b = binary.AppendUvarint(b, uint64(len(m.Props)))
	b = append(b, m.Props...)
	return append(b, m.Body...)
}

// recordSize is the length of the record appendRecord makes for m.
func recordSize(m *queue.Message) int {
	if m == nil {
		return recordHeader + 3
	}
	return recordHeader + uvarintLen(len(m.Exchange)) + len(m.Exchange) +
		uvarintLen(len(m.RoutingKey)) + len(m.RoutingKey) +
		uvarintLen(len(m.Props)) + len(m.Props) + len(m.Body)
}

func uvarintLen(n int) int {
	l := 1
	for n >= 0x80 {
		n >>= 7
		l++
	}
	return l
}

// decodeRecord decodes v. Every length is checked against the bytes left,
// so bad bytes give an error wrapping errCorrupt, never a panic.
func decodeRecord(v []byte) (record, error) {
	var r record
	if len(v) < recordHeader {
		return r, fmt.Errorf("%w: %d bytes is too short", errCorrupt, len(v))
	}
	if v[0]&^recordDelivered != recordVersion {
		return r, fmt.Errorf("%w: unknown version %d", errCorrupt, v[0]&^recordDelivered)
	}
	r.delivered = v[0]&recordDelivered != 0
	r.expiresAt = int64(binary.BigEndian.Uint64(v[1:]))
	rest := v[recordHeader:]
	var err error
	if r.exchange, rest, err = readBytes(rest, "exchange"); err != nil {
		return r, err
	}
	if r.routingKey, rest, err = readBytes(rest, "routing key"); err != nil {
		return r, err
	}
	if r.props, rest, err = readBytes(rest, "properties"); err != nil {
		return r, err
	}
	r.body = rest
	return r, nil
}

// decodeMessage decodes v as decodeRecord does and checks that its
// properties are well formed, as they were when the message was published:
// a record read back for delivery must make a valid content header.
func decodeMessage(v []byte) (record, error) {
	r, err := decodeRecord(v)
	if err != nil {
		return r, err
	}
	if err := wire.ValidateProps(r.props); err != nil {
		return r, fmt.Errorf("%w: properties: %v", errCorrupt, err)
	}
	return r, nil
}

// readBytes reads a uvarint length and that many bytes from b.
func readBytes(b []byte, what string) (field, rest []byte, err error) {
	n, l := binary.Uvarint(b)
	if l <= 0 {
		return nil, b, fmt.Errorf("%w: bad %s length", errCorrupt, what)
	}
	b = b[l:]
	if n > uint64(len(b)) {
		return nil, b, fmt.Errorf("%w: %s length %d exceeds the %d bytes left", errCorrupt, what, n, len(b))
	}
	return b[:n:n], b[n:], nil
}

// bodyLen returns the body length of a record, or an error if it does not
// decode.
func bodyLen(v []byte) (int64, error) {
	r, err := decodeRecord(v)
	if err != nil {
		return 0, err
	}
	return int64(len(r.body)), nil
}

// message builds a Message holding copies of r's bytes, so it outlives the
// transaction r was read in. prev, if not nil, is the previous message
// built: its strings are reused when equal, to save allocations.
func (r *record) message(persistent bool, prev *queue.Message) *queue.Message {
	m := &queue.Message{Persistent: persistent, ExpiresAt: r.expiresAt}
	if prev != nil && prev.Exchange == string(r.exchange) {
		m.Exchange = prev.Exchange
	} else {
		m.Exchange = string(r.exchange)
	}
	if prev != nil && prev.RoutingKey == string(r.routingKey) {
		m.RoutingKey = prev.RoutingKey
	} else {
		m.RoutingKey = string(r.routingKey)
	}
	if len(r.props)+len(r.body) > 0 {
		buf := make([]byte, len(r.props)+len(r.body))
		n := copy(buf, r.props)
		copy(buf[n:], r.body)
		if len(r.props) > 0 {
			m.Props = buf[:n:n]
		}
		if len(r.body) > 0 {
			m.Body = buf[n:]
		}
	}
	return m
}

// counters is a queue's count and body bytes of persistent entries.
type counters struct {
	count int64
	bytes int64
}

// countersSize is the length of an encoded counters value: two big-endian
// uint64s.
const countersSize = 16

func appendCounters(b []byte, c counters) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(c.count))
	return binary.BigEndian.AppendUint64(b, uint64(c.bytes))
}

func decodeCounters(v []byte) (counters, error) {
	if len(v) != countersSize {
		return counters{}, fmt.Errorf("%w: counters are %d bytes, not %d", errCorrupt, len(v), countersSize)
	}
	c := counters{count: int64(binary.BigEndian.Uint64(v)), bytes: int64(binary.BigEndian.Uint64(v[8:]))}
	if c.count < 0 || c.bytes < 0 {
		return counters{}, fmt.Errorf("%w: negative counters %d, %d", errCorrupt, c.count, c.bytes)
	}
	return c, nil
}

// u64Key is a uint64 as an 8-byte big-endian key, so keys sort as numbers.
type u64Key [8]byte

func key64(n uint64) u64Key {
	var k u64Key
	binary.BigEndian.PutUint64(k[:], n)
	return k
}

// parseKey64 decodes an 8-byte key.
func parseKey64(k []byte) (uint64, bool) {
	if len(k) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(k), true
}
