package binding

import (
	"bytes"
	"math"
	"reflect"
	"strconv"
	"time"
)

// DestKind says whether a binding's destination is a queue or an exchange.
type DestKind uint8

const (
	// ToQueue marks a queue destination (queue.bind).
	ToQueue DestKind = iota
	// ToExchange marks an exchange destination (exchange.bind, "e2e").
	ToExchange
)

// String returns "queue" or "exchange".
func (k DestKind) String() string {
	switch k {
	case ToQueue:
		return "queue"
	case ToExchange:
		return "exchange"
	}
	return "DestKind(" + strconv.Itoa(int(k)) + ")"
}

// Binding is one edge: from a source exchange to a destination (queue or
// exchange) with a key and arguments.
type Binding struct {
	Source      string // exchange name
	Destination string
	Kind        DestKind
	Key         string
	// Args is the AMQP arguments table as decoded. Values may be bool,
	// int8, uint8, int16, uint16, int32, uint32, int64, uint64, int, float32,
	// float64, string, []byte, []any (or a named slice type), time.Time,
	// map[string]any (or any named map type with string keys, e.g. a
	// wire.Table) or nil (void). A nil map equals an empty one.
	Args map[string]any
}

// Equal reports whether two bindings are the same edge: same source,
// destination, kind and key, and deeply equal arguments (see ArgsEqual).
func (b Binding) Equal(o Binding) bool {
	return b.Source == o.Source &&
		b.Destination == o.Destination &&
		b.Kind == o.Kind &&
		b.Key == o.Key &&
		ArgsEqual(b.Args, o.Args)
}

// ArgsEqual reports whether two argument tables are equal. A nil table equals
// an empty one. Comparison is type-aware, like RabbitMQ's comparison of typed
// field tables: int32(1) != int64(1), "a" != []byte("a"). Nested tables may be
// map[string]any or any named map type with string keys, and are compared as
// tables regardless of their Go type; likewise nested arrays may be []any or a
// named slice type.
func ArgsEqual(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, av := range a {
		bv, ok := b[k]
		if !ok || !ValueEqual(av, bv) {
			return false
		}
	}
	return true
}

// ValueEqual reports whether two field values are equal, type-aware: values
// must have the same AMQP field type, so int32(1) != int64(1) and
// "a" != []byte("a"). The Go types that encode to the same field type are
// interchangeable: int, int64 and uint64 (up to MaxInt64) are all a long-int,
// any map with string keys is a table, any []any-like slice is an array.
// Floats compare by value except that NaN equals NaN, so that a binding
// carrying a NaN argument still equals itself. time.Time values compare at
// whole-second precision, the precision of an AMQP timestamp. Other types
// (e.g. a wire.Decimal) must have identical Go types and be
// reflect.DeepEqual.
func ValueEqual(a, b any) bool {
	switch av := a.(type) {
	case nil:
		return b == nil
	case string:
		bv, ok := b.(string)
		return ok && av == bv
	case bool:
		bv, ok := b.(bool)
		return ok && av == bv
	case int8:
		bv, ok := b.(int8)
		return ok && av == bv
	case uint8:
		bv, ok := b.(uint8)
		return ok && av == bv
	case int16:
		bv, ok := b.(int16)
		return ok && av == bv
	case uint16:
		bv, ok := b.(uint16)
		return ok && av == bv
	case int32:
		bv, ok := b.(int32)
		return ok && av == bv
	case uint32:
		bv, ok := b.(uint32)
		return ok && av == bv
	case int64:
		bv, ok := asLong(b)
		return ok && av == bv
	case int:
		bv, ok := asLong(b)
		return ok && int64(av) == bv
	case uint64:
		if av > math.MaxInt64 {
			bv, ok := b.(uint64)
			return ok && av == bv
		}
		bv, ok := asLong(b)
		return ok && int64(av) == bv
	case float32:
		bv, ok := b.(float32)
		return ok && (av == bv || (av != av && bv != bv))
	case float64:
		bv, ok := b.(float64)
		return ok && (av == bv || (math.IsNaN(av) && math.IsNaN(bv)))
	case []byte:
		bv, ok := b.([]byte)
		return ok && bytes.Equal(av, bv)
	case time.Time:
		bv, ok := b.(time.Time)
		return ok && av.Unix() == bv.Unix()
	case map[string]any:
		if bv, ok := b.(map[string]any); ok {
			return ArgsEqual(av, bv)
		}
		return tableEqualReflect(reflect.ValueOf(a), b)
	case []any:
		if bv, ok := b.([]any); ok {
			return arrayEqual(av, bv)
		}
		return arrayEqualReflect(reflect.ValueOf(a), b)
	}
	return otherEqual(a, b)
}

// asLong reports v as an AMQP long-int ('l') value: int64, and the Go types
// the wire encoder also writes as 'l' (int, and uint64 up to MaxInt64).
func asLong(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), true
		}
	}
	return 0, false
}

func arrayEqual(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !ValueEqual(a[i], b[i]) {
			return false
		}
	}
	return true
}

// otherEqual handles the rare cases: named table / array types (e.g.
// wire.Table) and unknown types (e.g. a wire.Decimal struct).
func otherEqual(a, b any) bool {
	if b == nil {
		return false
	}
	av := reflect.ValueOf(a)
	if isTable(av) {
		return tableEqualReflect(av, b)
	}
	if isArray(av) {
		return arrayEqualReflect(av, b)
	}
	if reflect.TypeOf(a) != reflect.TypeOf(b) {
		return false
	}
	return reflect.DeepEqual(a, b)
}

func isTable(v reflect.Value) bool {
	return v.Kind() == reflect.Map && v.Type().Key().Kind() == reflect.String
}

func isArray(v reflect.Value) bool {
	// []byte-like named types are byte strings, not arrays.
	return v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Interface
}

func tableEqualReflect(av reflect.Value, b any) bool {
	bv := reflect.ValueOf(b)
	if !isTable(bv) {
		return false
	}
	if av.Len() != bv.Len() {
		return false
	}
	it := av.MapRange()
	for it.Next() {
		k := it.Key()
		// Keys may be of a named string type; convert to b's key type.
		bk := reflect.ValueOf(k.String()).Convert(bv.Type().Key())
		x := bv.MapIndex(bk)
		if !x.IsValid() || !ValueEqual(it.Value().Interface(), x.Interface()) {
			return false
		}
	}
	return true
}

func arrayEqualReflect(av reflect.Value, b any) bool {
	bv := reflect.ValueOf(b)
	if !isArray(bv) || av.Len() != bv.Len() {
		return false
	}
	for i := 0; i < av.Len(); i++ {
		if !ValueEqual(av.Index(i).Interface(), bv.Index(i).Interface()) {
			return false
		}
	}
	return true
}
