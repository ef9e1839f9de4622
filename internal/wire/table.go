package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"
)

// Table is an AMQP field table. Values have these Go types, by field type
// tag: 't' bool, 'b' int8, 'B' uint8, 's' int16, 'u' uint16, 'I' int32,
// 'i' uint32, 'l' int64, 'f' float32, 'd' float64, 'D' Decimal, 'S' string
// (longstr), 'x' []byte, 'A' []any, 'T' time.Time (whole seconds, UTC),
// 'F' Table, 'V' nil.
//
// When encoding, Go int is also accepted (as 'l'), and uint64 (as 'l' when
// it fits in an int64). Any other type is an error.
type Table map[string]any

// Decimal is the AMQP decimal field value: Value / 10^Scale.
type Decimal struct {
	Scale uint8
	Value int32
}

// MaxTableDepth bounds the nesting of tables and arrays, on decoding and
// encoding.
const MaxTableDepth = 64

// AppendTable appends t encoded as an AMQP field table (a 4-byte length and
// the fields). Keys are written in sorted order, so the encoding is
// deterministic. A nil or empty table encodes as 4 zero bytes. On error b is
// returned unchanged.
func AppendTable(b []byte, t Table) ([]byte, error) {
	n := len(b)
	b, err := appendTable(b, t, 0)
	if err != nil {
		return b[:n], err
	}
	return b, nil
}

func appendTable(b []byte, t Table, depth int) ([]byte, error) {
	if depth > MaxTableDepth {
		return b, errDepth
	}
	start := len(b)
	b = append(b, 0, 0, 0, 0)
	if len(t) > 0 {
		var arr [16]string
		keys := arr[:0]
		for k := range t {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var err error
		for _, k := range keys {
			if b, err = appendShortstr(b, k); err != nil {
				return b, fmt.Errorf("table key %.32q...: %w", k, err)
			}
			if b, err = appendFieldValue(b, t[k], depth); err != nil {
				return b, fmt.Errorf("table key %q: %w", k, err)
			}
		}
	}
	size := len(b) - start - 4
	if uint64(size) > math.MaxUint32 {
		return b, errLongstr
	}
	binary.BigEndian.PutUint32(b[start:], uint32(size))
	return b, nil
}

func appendFieldValue(b []byte, v any, depth int) ([]byte, error) {
	switch v := v.(type) {
	case bool:
		var x byte
		if v {
			x = 1
		}
		return append(b, 't', x), nil
	case int8:
		return append(b, 'b', byte(v)), nil
	case uint8:
		return append(b, 'B', v), nil
	case int16:
		return appendUint16(append(b, 's'), uint16(v)), nil
	case uint16:
		return appendUint16(append(b, 'u'), v), nil
	case int32:
		return appendUint32(append(b, 'I'), uint32(v)), nil
	case uint32:
		return appendUint32(append(b, 'i'), v), nil
	case int64:
		return appendUint64(append(b, 'l'), uint64(v)), nil
	case int:
		return appendUint64(append(b, 'l'), uint64(int64(v))), nil
	case uint64:
		if v > math.MaxInt64 {
			return b, fmt.Errorf("wire: uint64 field value %d does not fit in a signed 64-bit field", v)
		}
		return appendUint64(append(b, 'l'), v), nil
	case float32:
		return appendUint32(append(b, 'f'), math.Float32bits(v)), nil
	case float64:
		return appendUint64(append(b, 'd'), math.Float64bits(v)), nil
	case Decimal:
		return appendUint32(append(b, 'D', v.Scale), uint32(v.Value)), nil
	case string:
		return appendLongstr(append(b, 'S'), v)
	case []byte:
		return appendLongBytes(append(b, 'x'), v)
	case []any:
		return appendArray(append(b, 'A'), v, depth+1)
	case time.Time:
		return appendTimestamp(append(b, 'T'), v), nil
	case Table:
		return appendTable(append(b, 'F'), v, depth+1)
	case nil:
		return append(b, 'V'), nil
	default:
		return b, fmt.Errorf("wire: unsupported field value type %T", v)
	}
}

func appendArray(b []byte, a []any, depth int) ([]byte, error) {
	if depth > MaxTableDepth {
		return b, errDepth
	}
	start := len(b)
	b = append(b, 0, 0, 0, 0)
	var err error
	for i, v := range a {
		if b, err = appendFieldValue(b, v, depth); err != nil {
			return b, fmt.Errorf("array index %d: %w", i, err)
		}
	}
	size := len(b) - start - 4
	if uint64(size) > math.MaxUint32 {
		return b, errLongstr
	}
	binary.BigEndian.PutUint32(b[start:], uint32(size))
	return b, nil
}

// ReadTable decodes a field table (4-byte length and fields) from the start
// of b and returns it with the bytes that follow it. Every length is checked
// against the bytes left, and nesting is limited to MaxTableDepth. An empty
// table decodes as nil. Strings and byte slices never alias b. Duplicate keys
// are accepted; the last one wins.
func ReadTable(b []byte) (t Table, rest []byte, err error) {
	t, n, err := readTable(b, 0)
	if err != nil {
		return nil, b, err
	}
	return t, b[n:], nil
}

// readTable decodes a table at the start of b and returns the number of
// bytes it used.
func readTable(b []byte, depth int) (Table, int, error) {
	if depth > MaxTableDepth {
		return nil, 0, errDepth
	}
	if len(b) < 4 {
		return nil, 0, errSyntaxf("truncated field table length")
	}
	size := binary.BigEndian.Uint32(b)
	if uint64(size) > uint64(len(b)-4) {
		return nil, 0, errSyntaxf("field table length %d exceeds the %d bytes left", size, len(b)-4)
	}
	body := b[4 : 4+int(size)]
	if len(body) == 0 {
		return nil, 4, nil
	}
	t := make(Table)
	for off := 0; off < len(body); {
		kl := int(body[off])
		off++
		if kl > len(body)-off {
			return nil, 0, errSyntaxf("field table key length %d exceeds the %d bytes left", kl, len(body)-off)
		}
		k := string(body[off : off+kl])
		off += kl
		v, n, err := readFieldValue(body[off:], depth)
		if err != nil {
			return nil, 0, fmt.Errorf("table key %q: %w", k, err)
		}
		off += n
		t[k] = v
	}
	return t, 4 + int(size), nil
}

// fixedFieldSize is the size of the value following each fixed-size type
// tag, or 0 for variable-size/unknown tags.
var fixedFieldSize = [256]uint8{
	't': 1, 'b': 1, 'B': 1, 's': 2, 'u': 2, 'I': 4, 'i': 4, 'l': 8,
	'f': 4, 'd': 8, 'D': 5, 'T': 8,
}

func readFieldValue(b []byte, depth int) (any, int, error) {
	if len(b) < 1 {
		return nil, 0, errSyntaxf("truncated field value")
	}
	typ := b[0]
	p := b[1:]
	if sz := int(fixedFieldSize[typ]); sz > 0 && len(p) < sz {
		return nil, 0, errSyntaxf("truncated field value of type '%c'", typ)
	}
	switch typ {
	case 't':
		return p[0] != 0, 2, nil
	case 'b':
		return int8(p[0]), 2, nil
	case 'B':
		return p[0], 2, nil
	case 's':
		return int16(binary.BigEndian.Uint16(p)), 3, nil
	case 'u':
		return binary.BigEndian.Uint16(p), 3, nil
	case 'I':
		return int32(binary.BigEndian.Uint32(p)), 5, nil
	case 'i':
		return binary.BigEndian.Uint32(p), 5, nil
	case 'l':
		return int64(binary.BigEndian.Uint64(p)), 9, nil
	case 'f':
		return math.Float32frombits(binary.BigEndian.Uint32(p)), 5, nil
	case 'd':
		return math.Float64frombits(binary.BigEndian.Uint64(p)), 9, nil
	case 'D':
		return Decimal{Scale: p[0], Value: int32(binary.BigEndian.Uint32(p[1:]))}, 6, nil
	case 'T':
		return timeFromUnix(binary.BigEndian.Uint64(p)), 9, nil
	case 'S', 'x':
		if len(p) < 4 {
			return nil, 0, errSyntaxf("truncated longstr length")
		}
		n := binary.BigEndian.Uint32(p)
		if uint64(n) > uint64(len(p)-4) {
			return nil, 0, errSyntaxf("longstr length %d exceeds the %d bytes left", n, len(p)-4)
		}
		s := p[4 : 4+int(n)]
		if typ == 'S' {
			return string(s), 5 + int(n), nil
		}
		return bytes.Clone(s), 5 + int(n), nil
	case 'A':
		a, n, err := readArray(p, depth+1)
		if err != nil {
			return nil, 0, err
		}
		return a, 1 + n, nil
	case 'F':
		t, n, err := readTable(p, depth+1)
		if err != nil {
			return nil, 0, err
		}
		return t, 1 + n, nil
	case 'V':
		return nil, 1, nil
	default:
		return nil, 0, errSyntaxf("unknown field value type %q", typ)
	}
}

func readArray(b []byte, depth int) ([]any, int, error) {
	if depth > MaxTableDepth {
		return nil, 0, errDepth
	}
	if len(b) < 4 {
		return nil, 0, errSyntaxf("truncated field array length")
	}
	size := binary.BigEndian.Uint32(b)
	if uint64(size) > uint64(len(b)-4) {
		return nil, 0, errSyntaxf("field array length %d exceeds the %d bytes left", size, len(b)-4)
	}
	body := b[4 : 4+int(size)]
	a := []any{}
	for off := 0; off < len(body); {
		v, n, err := readFieldValue(body[off:], depth)
		if err != nil {
			return nil, 0, fmt.Errorf("array index %d: %w", len(a), err)
		}
		off += n
		a = append(a, v)
	}
	return a, 4 + int(size), nil
}

// skipTable validates the table at the start of b without allocating and
// returns its encoded size. It accepts exactly what readTable accepts.
func skipTable(b []byte, depth int) (int, error) {
	if depth > MaxTableDepth {
		return 0, errDepth
	}
	if len(b) < 4 {
		return 0, errShort
	}
	size := binary.BigEndian.Uint32(b)
	if uint64(size) > uint64(len(b)-4) {
		return 0, errShort
	}
	body := b[4 : 4+int(size)]
	for off := 0; off < len(body); {
		kl := int(body[off])
		off++
		if kl > len(body)-off {
			return 0, errShort
		}
		off += kl
		n, err := skipFieldValue(body[off:], depth)
		if err != nil {
			return 0, err
		}
		off += n
	}
	return 4 + int(size), nil
}

func skipFieldValue(b []byte, depth int) (int, error) {
	if len(b) < 1 {
		return 0, errShort
	}
	typ := b[0]
	p := b[1:]
	if sz := int(fixedFieldSize[typ]); sz > 0 {
		if len(p) < sz {
			return 0, errShort
		}
		return 1 + sz, nil
	}
	switch typ {
	case 'S', 'x':
		if len(p) < 4 {
			return 0, errShort
		}
		n := binary.BigEndian.Uint32(p)
		if uint64(n) > uint64(len(p)-4) {
			return 0, errShort
		}
		return 5 + int(n), nil
	case 'A':
		n, err := skipArray(p, depth+1)
		return 1 + n, err
	case 'F':
		n, err := skipTable(p, depth+1)
		return 1 + n, err
	case 'V':
		return 1, nil
	default:
		return 0, errSyntaxf("unknown field value type %q", typ)
	}
}

func skipArray(b []byte, depth int) (int, error) {
	if depth > MaxTableDepth {
		return 0, errDepth
	}
	if len(b) < 4 {
		return 0, errShort
	}
	size := binary.BigEndian.Uint32(b)
	if uint64(size) > uint64(len(b)-4) {
		return 0, errShort
	}
	body := b[4 : 4+int(size)]
	for off := 0; off < len(body); {
		n, err := skipFieldValue(body[off:], depth)
		if err != nil {
			return 0, err
		}
		off += n
	}
	return 4 + int(size), nil
}

// TablesEqual reports whether a and b hold the same keys with values of the
// same types and equal values, recursively. nil and empty tables (and nil
// and empty arrays or byte slices) are equal; time.Time values are compared
// with Equal; floats are compared by value, with NaN equal to NaN. Values of
// different Go types are different, except that int and uint64 compare as
// the int64 they are encoded as.
func TablesEqual(a, b Table) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb, ok := b[k]
		if !ok || !fieldValuesEqual(va, vb) {
			return false
		}
	}
	return true
}

// normInt maps the Go integer types that encode as 'l' to int64.
func normInt(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x)
		}
	}
	return v
}

func fieldValuesEqual(a, b any) bool {
	a, b = normInt(a), normInt(b)
	switch a := a.(type) {
	case Table:
		b, ok := b.(Table)
		return ok && TablesEqual(a, b)
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !fieldValuesEqual(a[i], b[i]) {
				return false
			}
		}
		return true
	case []byte:
		b, ok := b.([]byte)
		return ok && bytes.Equal(a, b)
	case time.Time:
		b, ok := b.(time.Time)
		return ok && a.Equal(b)
	case float32:
		b, ok := b.(float32)
		return ok && (a == b || (a != a && b != b))
	case float64:
		b, ok := b.(float64)
		return ok && (a == b || (a != a && b != b))
	case nil:
		return b == nil
	case bool, int8, uint8, int16, uint16, int32, uint32, int64, uint64, Decimal, string:
		return a == b
	default:
		return false
	}
}
