package exchange

import (
	"bytes"
	"math"
	"strings"
	"time"

	"github.com/warrenmq/warren/binding"
)

// Headers routing, as in RabbitMQ 3.x (rabbit_exchange_type_headers):
//
//   - x-match = "all" (the default, also used for any unrecognised value),
//     "any", "all-with-x" or "any-with-x".
//   - The x-match argument itself never takes part in matching. With "all"
//     and "any", every other argument whose name starts with "x-" is ignored
//     too; with the -with-x variants those arguments count.
//   - A binding argument whose value is void (nil) matches when the message
//     has a header of that name, whatever its value.
//   - Otherwise the header must be present and equal. RabbitMQ compares the
//     decoded values with Erlang's == operator, which ignores the AMQP
//     field type tag at the top level: integers of every width compare by
//     value (int8(1) matches int64(1)), integers and floats compare
//     numerically (1 matches 1.0), float32 is widened to float64, a
//     timestamp is its integer number of seconds (so it matches an integer
//     of the same value), and long strings match byte arrays with the same
//     bytes. Nested tables and arrays keep their type tags inside the
//     Erlang term, so they compare strictly (binding.ValueEqual).
//     We reproduce exactly that.
//   - "all" with no matching arguments matches every message; "any" with
//     none matches no message. The routing key is ignored.

const xMatch = "x-match"

type headerArg struct {
	key  string
	val  any
	void bool
}

type headerSpec struct {
	any  bool // any / any-with-x; otherwise all / all-with-x
	args []headerArg
}

func compileHeaders(args map[string]any) *headerSpec {
	spec := new(headerSpec)
	withX := false
	if v, ok := args[xMatch].(string); ok {
		switch v {
		case "any":
			spec.any = true
		case "any-with-x":
			spec.any, withX = true, true
		case "all-with-x":
			withX = true
		}
	}
	for k, v := range args {
		if k == xMatch || (!withX && strings.HasPrefix(k, "x-")) {
			continue
		}
		spec.args = append(spec.args, headerArg{key: k, val: v, void: v == nil})
	}
	return spec
}

func (s *headerSpec) match(h map[string]any) bool {
	if s.any {
		for i := range s.args {
			a := &s.args[i]
			if v, ok := h[a.key]; ok && (a.void || headerValueEqual(a.val, v)) {
				return true
			}
		}
		return false
	}
	for i := range s.args {
		a := &s.args[i]
		v, ok := h[a.key]
		if !ok || !(a.void || headerValueEqual(a.val, v)) {
			return false
		}
	}
	return true
}

// number classes for headerValueEqual
const (
	numNone = iota
	numInt  // fits int64: i
	numBig  // uint64 above MaxInt64: u
	numFloat
)

func toNumber(v any) (cls int, i int64, u uint64, f float64) {
	switch x := v.(type) {
	case int8:
		return numInt, int64(x), 0, 0
	case uint8:
		return numInt, int64(x), 0, 0
	case int16:
		return numInt, int64(x), 0, 0
	case uint16:
		return numInt, int64(x), 0, 0
	case int32:
		return numInt, int64(x), 0, 0
	case uint32:
		return numInt, int64(x), 0, 0
	case int64:
		return numInt, x, 0, 0
	case int:
		return numInt, int64(x), 0, 0
	case uint64:
		if x > math.MaxInt64 {
			return numBig, 0, x, 0
		}
		return numInt, int64(x), 0, 0
	case uint:
		if uint64(x) > math.MaxInt64 {
			return numBig, 0, uint64(x), 0
		}
		return numInt, int64(x), 0, 0
	case float32:
		return numFloat, 0, 0, float64(x)
	case float64:
		return numFloat, 0, 0, x
	case time.Time:
		return numInt, x.Unix(), 0, 0
	}
	return numNone, 0, 0, 0
}

// headerValueEqual is Erlang's == on RabbitMQ's decoded field values (see
// the comment at the top of this file).
func headerValueEqual(p, d any) bool {
	if pc, pi, pu, pf := toNumber(p); pc != numNone {
		dc, di, du, df := toNumber(d)
		switch {
		case dc == numNone:
			return false
		case pc == numFloat && dc == numFloat:
			return pf == df
		case pc == numFloat:
			return floatEqInt(pf, dc, di, du)
		case dc == numFloat:
			return floatEqInt(df, pc, pi, pu)
		case pc != dc:
			return false
		case pc == numInt:
			return pi == di
		default:
			return pu == du
		}
	}
	switch pv := p.(type) {
	case string:
		switch dv := d.(type) {
		case string:
			return pv == dv
		case []byte:
			return string(dv) == pv
		}
		return false
	case []byte:
		switch dv := d.(type) {
		case string:
			return string(pv) == dv
		case []byte:
			return bytes.Equal(pv, dv)
		}
		return false
	case bool:
		dv, ok := d.(bool)
		return ok && pv == dv
	}
	return binding.ValueEqual(p, d)
}

func floatEqInt(f float64, cls int, i int64, u uint64) bool {
	if f != math.Trunc(f) {
		return false
	}
	if cls == numBig {
		return f >= 1<<63 && f < 1<<64 && uint64(f) == u
	}
	return f >= -(1<<63) && f < 1<<63 && int64(f) == i
}

// headersMatcher checks every binding against the message headers.
type headersMatcher struct {
	reg  registry
	list destList
}

func newHeaders() *headersMatcher {
	m := &headersMatcher{}
	m.reg.init()
	return m
}

func (m *headersMatcher) Add(b binding.Binding) bool {
	e := m.reg.add(b)
	if e == nil {
		return false
	}
	e.hdr = compileHeaders(b.Args)
	m.list.add(e)
	return true
}

func (m *headersMatcher) Remove(b binding.Binding) bool {
	e := m.reg.remove(b)
	if e == nil {
		return false
	}
	m.list.remove(e)
	return true
}

func (m *headersMatcher) RemoveDestination(kind binding.DestKind, dest string) []binding.Binding {
	es := m.reg.removeDest(Dest{kind, dest})
	for _, e := range es {
		m.list.remove(e)
	}
	return entriesToBindings(es)
}

func (m *headersMatcher) Match(_ string, headers map[string]any, out []Dest) []Dest {
	for i, e := range m.list.ents {
		if e.hdr.match(headers) {
			out = append(out, m.list.dests[i])
		}
	}
	return out
}

func (m *headersMatcher) Bindings() []binding.Binding { return m.reg.bindings() }
func (m *headersMatcher) Len() int                    { return m.reg.n }
