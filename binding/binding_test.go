package binding

import (
	"math"
	"testing"
	"time"
)

type table map[string]any // stands in for wire.Table
type array []any

func TestEqual(t *testing.T) {
	ts := time.Unix(1700000000, 0)
	base := Binding{Source: "x", Destination: "q", Kind: ToQueue, Key: "k"}
	with := func(args map[string]any) Binding { b := base; b.Args = args; return b }
	nan := math.NaN()
	cases := []struct {
		name string
		a, b Binding
		want bool
	}{
		{"identical no args", base, base, true},
		{"nil vs empty args", with(nil), with(map[string]any{}), true},
		{"source differs", base, Binding{Source: "y", Destination: "q", Key: "k"}, false},
		{"dest differs", base, Binding{Source: "x", Destination: "r", Key: "k"}, false},
		{"kind differs", base, Binding{Source: "x", Destination: "q", Kind: ToExchange, Key: "k"}, false},
		{"key differs", base, Binding{Source: "x", Destination: "q", Key: "K"}, false},
		{"args vs none", with(map[string]any{"a": 1}), base, false},
		{"same int32", with(map[string]any{"a": int32(1)}), with(map[string]any{"a": int32(1)}), true},
		{"int32 vs int64", with(map[string]any{"a": int32(1)}), with(map[string]any{"a": int64(1)}), false},
		{"int8 vs uint8", with(map[string]any{"a": int8(1)}), with(map[string]any{"a": uint8(1)}), false},
		{"float32 vs float64", with(map[string]any{"a": float32(1)}), with(map[string]any{"a": float64(1)}), false},
		{"NaN equals NaN", with(map[string]any{"a": nan}), with(map[string]any{"a": nan}), true},
		{"string vs bytes", with(map[string]any{"a": "v"}), with(map[string]any{"a": []byte("v")}), false},
		{"bytes", with(map[string]any{"a": []byte("v")}), with(map[string]any{"a": []byte("v")}), true},
		{"bytes differ", with(map[string]any{"a": []byte("v")}), with(map[string]any{"a": []byte("w")}), false},
		{"bool", with(map[string]any{"a": true}), with(map[string]any{"a": true}), true},
		{"bool differ", with(map[string]any{"a": true}), with(map[string]any{"a": false}), false},
		{"nil value", with(map[string]any{"a": nil}), with(map[string]any{"a": nil}), true},
		{"nil vs absent", with(map[string]any{"a": nil}), with(map[string]any{"b": nil}), false},
		{"nil vs value", with(map[string]any{"a": nil}), with(map[string]any{"a": ""}), false},
		{"time", with(map[string]any{"a": ts}), with(map[string]any{"a": ts.UTC()}), true},
		{"int vs int64", with(map[string]any{"a": 5}), with(map[string]any{"a": int64(5)}), true},
		{"uint64 vs int64", with(map[string]any{"a": uint64(5)}), with(map[string]any{"a": int64(5)}), true},
		{"uint64 vs int", with(map[string]any{"a": uint64(5)}), with(map[string]any{"a": 5}), true},
		{"big uint64", with(map[string]any{"a": uint64(1 << 63)}), with(map[string]any{"a": uint64(1 << 63)}), true},
		{"big uint64 vs int64", with(map[string]any{"a": uint64(1 << 63)}), with(map[string]any{"a": int64(-1 << 63)}), false},
		{"int vs int32", with(map[string]any{"a": 5}), with(map[string]any{"a": int32(5)}), false},
		{"time sub-second", with(map[string]any{"a": ts}), with(map[string]any{"a": ts.Add(time.Millisecond)}), true},
		{"time differ", with(map[string]any{"a": ts}), with(map[string]any{"a": ts.Add(time.Second)}), false},
		{"time vs int", with(map[string]any{"a": ts}), with(map[string]any{"a": int64(1700000000)}), false},
		{"nested map", with(map[string]any{"t": map[string]any{"x": int32(1)}}), with(map[string]any{"t": map[string]any{"x": int32(1)}}), true},
		{"nested named vs plain", with(map[string]any{"t": table{"x": int32(1)}}), with(map[string]any{"t": map[string]any{"x": int32(1)}}), true},
		{"nested plain vs named", with(map[string]any{"t": map[string]any{"x": int32(1)}}), with(map[string]any{"t": table{"x": int32(1)}}), true},
		{"nested named both", with(map[string]any{"t": table{"x": table{"y": "z"}}}), with(map[string]any{"t": table{"x": map[string]any{"y": "z"}}}), true},
		{"nested type-aware", with(map[string]any{"t": table{"x": int32(1)}}), with(map[string]any{"t": table{"x": int16(1)}}), false},
		{"nested missing key", with(map[string]any{"t": table{"x": 1}}), with(map[string]any{"t": table{"y": 1}}), false},
		{"nested len", with(map[string]any{"t": table{"x": 1}}), with(map[string]any{"t": table{}}), false},
		{"table vs array", with(map[string]any{"t": table{}}), with(map[string]any{"t": []any{}}), false},
		{"array", with(map[string]any{"a": []any{int32(1), "s", nil}}), with(map[string]any{"a": []any{int32(1), "s", nil}}), true},
		{"array order", with(map[string]any{"a": []any{int32(1), int32(2)}}), with(map[string]any{"a": []any{int32(2), int32(1)}}), false},
		{"array named", with(map[string]any{"a": array{"s"}}), with(map[string]any{"a": []any{"s"}}), true},
		{"array nested table", with(map[string]any{"a": []any{table{"k": "v"}}}), with(map[string]any{"a": []any{map[string]any{"k": "v"}}}), true},
		{"value vs nil", with(map[string]any{"a": int32(0)}), with(map[string]any{"a": nil}), false},
		{"unknown struct", with(map[string]any{"a": struct{ S, V int }{1, 2}}), with(map[string]any{"a": struct{ S, V int }{1, 2}}), true},
		{"unknown struct differ", with(map[string]any{"a": struct{ S, V int }{1, 2}}), with(map[string]any{"a": struct{ S, V int }{1, 3}}), false},
	}
	for _, c := range cases {
		if got := c.a.Equal(c.b); got != c.want {
			t.Errorf("%s: a.Equal(b) = %v, want %v", c.name, got, c.want)
		}
		if got := c.b.Equal(c.a); got != c.want {
			t.Errorf("%s: b.Equal(a) = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestDestKindString(t *testing.T) {
	if ToQueue.String() != "queue" || ToExchange.String() != "exchange" || DestKind(7).String() != "DestKind(7)" {
		t.Fatal("DestKind.String")
	}
}
