package exchange

import (
	"testing"
	"time"
)

type wtable map[string]any // stands in for wire.Table

func TestHeaders(t *testing.T) {
	ts := time.Unix(1700000000, 0)
	type H = map[string]any
	cases := []struct {
		name    string
		args    H
		headers H
		want    bool
	}{
		// x-match all (default)
		{"all: no args matches everything", nil, nil, true},
		{"all: only x-match", H{"x-match": "all"}, H{"a": 1}, true},
		{"all: default is all", H{"a": "1", "b": "2"}, H{"a": "1"}, false},
		{"all: both present", H{"x-match": "all", "a": "1", "b": "2"}, H{"a": "1", "b": "2", "c": "3"}, true},
		{"all: one differs", H{"x-match": "all", "a": "1", "b": "2"}, H{"a": "1", "b": "3"}, false},
		{"all: one missing", H{"x-match": "all", "a": "1", "b": "2"}, H{"a": "1"}, false},
		{"all: nil headers", H{"a": "1"}, nil, false},
		{"all: x- args ignored", H{"x-match": "all", "x-foo": "bar", "a": "1"}, H{"a": "1"}, true},
		{"all: only x- args -> matches all", H{"x-foo": "bar"}, H{}, true},
		{"all: invalid x-match is all", H{"x-match": "bogus", "a": "1", "b": "2"}, H{"a": "1"}, false},
		{"all: []byte x-match is all", H{"x-match": []byte("any"), "a": "1", "b": "2"}, H{"a": "1"}, false},
		// any
		{"any: no args matches nothing", H{"x-match": "any"}, H{"a": "1"}, false},
		{"any: only x- args matches nothing", H{"x-match": "any", "x-a": "1"}, H{"x-a": "1"}, false},
		{"any: one of two", H{"x-match": "any", "a": "1", "b": "2"}, H{"b": "2"}, true},
		{"any: none equal", H{"x-match": "any", "a": "1", "b": "2"}, H{"a": "2", "b": "1"}, false},
		{"any: nil headers", H{"x-match": "any", "a": "1"}, nil, false},
		// -with-x
		{"all-with-x: x- arg counts", H{"x-match": "all-with-x", "x-a": "1"}, H{}, false},
		{"all-with-x: x- arg present", H{"x-match": "all-with-x", "x-a": "1", "b": "2"}, H{"x-a": "1", "b": "2"}, true},
		{"all-with-x: x- arg differs", H{"x-match": "all-with-x", "x-a": "1", "b": "2"}, H{"x-a": "0", "b": "2"}, false},
		{"all-with-x: x-match itself never counts", H{"x-match": "all-with-x"}, H{}, true},
		{"any-with-x: x- arg", H{"x-match": "any-with-x", "x-a": "1", "b": "2"}, H{"x-a": "1"}, true},
		{"any-with-x: none", H{"x-match": "any-with-x", "x-a": "1"}, H{"x-a": "2"}, false},
		{"any-with-x: no args", H{"x-match": "any-with-x"}, H{"x-match": "any-with-x"}, false},
		{"any: x- header ignored", H{"x-match": "any", "x-a": "1"}, H{"x-a": "1"}, false},
		// void (nil) = presence
		{"void: present any value", H{"a": nil}, H{"a": int32(5)}, true},
		{"void: present void", H{"a": nil}, H{"a": nil}, true},
		{"void: absent", H{"a": nil}, H{"b": 1}, false},
		{"any void", H{"x-match": "any", "a": nil, "b": "x"}, H{"a": "whatever"}, true},
		{"value vs void header", H{"a": "1"}, H{"a": nil}, false},
		// value comparison = Erlang == on decoded values
		{"int widths", H{"a": int32(1)}, H{"a": int64(1)}, true},
		{"int8 vs uint16", H{"a": int8(7)}, H{"a": uint16(7)}, true},
		{"negative", H{"a": int16(-3)}, H{"a": int64(-3)}, true},
		{"int differs", H{"a": int32(1)}, H{"a": int32(2)}, false},
		{"int vs float", H{"a": int32(1)}, H{"a": float64(1)}, true},
		{"int vs non-integral float", H{"a": int32(1)}, H{"a": 1.5}, false},
		{"float32 vs float64", H{"a": float32(1.5)}, H{"a": 1.5}, true},
		{"float32 widened", H{"a": float32(0.1)}, H{"a": 0.1}, false},
		{"big uint64", H{"a": uint64(1 << 63)}, H{"a": float64(1 << 63)}, true},
		{"big uint64 vs int64", H{"a": uint64(1 << 63)}, H{"a": int64(-1 << 63)}, false},
		{"timestamp vs int", H{"a": ts}, H{"a": int64(1700000000)}, true},
		{"timestamp vs timestamp", H{"a": ts}, H{"a": ts.UTC()}, true},
		{"string vs bytes", H{"a": "v"}, H{"a": []byte("v")}, true},
		{"bytes vs string", H{"a": []byte("v")}, H{"a": "v"}, true},
		{"string vs int", H{"a": "1"}, H{"a": int32(1)}, false},
		{"string case", H{"a": "v"}, H{"a": "V"}, false},
		{"bool", H{"a": true}, H{"a": true}, true},
		{"bool vs int", H{"a": true}, H{"a": int32(1)}, false},
		{"bool differs", H{"a": false}, H{"a": true}, false},
		{"nested table", H{"a": map[string]any{"k": int32(1)}}, H{"a": wtable{"k": int32(1)}}, true},
		{"nested table strict types", H{"a": map[string]any{"k": int32(1)}}, H{"a": wtable{"k": int64(1)}}, false},
		{"array", H{"a": []any{"x", int32(1)}}, H{"a": []any{"x", int32(1)}}, true},
		{"array strict", H{"a": []any{"x", int32(1)}}, H{"a": []any{[]byte("x"), int32(1)}}, false},
		{"empty-name arg", H{"": "e"}, H{"": "e"}, true},
	}
	for _, c := range cases {
		m := NewMatcher(Headers)
		mustAdd(t, m, hb("q", c.args))
		got := len(m.Match("ignored.routing.key", c.headers, nil)) > 0
		if got != c.want {
			t.Errorf("%s: args %v headers %v: got %v want %v", c.name, c.args, c.headers, got, c.want)
		}
	}
}

func TestHeadersMultipleBindings(t *testing.T) {
	m := NewMatcher(Headers)
	mustAdd(t, m,
		hb("q1", map[string]any{"x-match": "all", "format": "pdf", "type": "report"}),
		hb("q2", map[string]any{"x-match": "any", "format": "pdf", "type": "log"}),
		hb("q3", map[string]any{"format": "zip"}),
		hb("q4", nil))
	got := names(m.Match("", map[string]any{"format": "pdf", "type": "report"}, nil))
	if want := []string{"q1", "q2", "q4"}; !equalStrings(got, want) {
		t.Fatalf("got %v want %v", got, want)
	}
	got = names(m.Match("", map[string]any{"format": "zip", "type": "log"}, nil))
	if want := []string{"q2", "q3", "q4"}; !equalStrings(got, want) {
		t.Fatalf("got %v want %v", got, want)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
