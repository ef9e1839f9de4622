package exchange

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/warrenmq/warren/binding"
)

func TestParseKind(t *testing.T) {
	for _, s := range []string{"direct", "fanout", "topic", "headers"} {
		if k, ok := ParseKind(s); !ok || string(k) != s {
			t.Errorf("ParseKind(%q) = %q, %v", s, k, ok)
		}
	}
	for _, s := range []string{"", "Direct", "TOPIC", "x-consistent-hash", "match", "system"} {
		if _, ok := ParseKind(s); ok {
			t.Errorf("ParseKind(%q) ok", s)
		}
	}
}

func TestNewMatcherPanicsOnUnknown(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	NewMatcher("bogus")
}

var allKinds = []Kind{Direct, Fanout, Topic, Headers}

// TestCommonBookkeeping exercises Add idempotence, Remove, RemoveDestination,
// Bindings and Len identically for every exchange type.
func TestCommonBookkeeping(t *testing.T) {
	for _, k := range allKinds {
		t.Run(string(k), func(t *testing.T) {
			m := NewMatcher(k)
			b1 := qb("a", "q1")
			b2 := qb("a", "q2")
			b3 := qb("b", "q1")
			b4 := xb("a", "q1") // same name, exchange kind: different edge
			b5 := qb("a", "q1")
			b5.Args = map[string]any{"x-foo": int32(1)}
			b6 := qb("a", "q1")
			b6.Args = map[string]any{"x-foo": int64(1)} // type-aware: differs from b5
			mustAdd(t, m, b1, b2, b3, b4, b5, b6)
			if m.Len() != 6 {
				t.Fatalf("Len = %d", m.Len())
			}
			// idempotent re-adds, including with an equal but distinct args map
			b5again := qb("a", "q1")
			b5again.Args = map[string]any{"x-foo": int32(1)}
			b1empty := qb("a", "q1")
			b1empty.Args = map[string]any{}
			for _, b := range []binding.Binding{b1, b2, b3, b4, b5, b5again, b6, b1empty} {
				if m.Add(b) {
					t.Fatalf("duplicate Add(%+v) = true", b)
				}
			}
			if m.Len() != 6 {
				t.Fatalf("Len after dup adds = %d", m.Len())
			}
			got := m.Bindings()
			want := []binding.Binding{b1, b2, b3, b4, b5, b6}
			if !slices.EqualFunc(got, want, binding.Binding.Equal) {
				t.Fatalf("Bindings = %+v\nwant %+v", got, want)
			}
			// the copy is independent
			got[0].Key = "mutated"
			if m.Bindings()[0].Key != "a" {
				t.Fatal("Bindings returned shared storage")
			}
			if m.Remove(qb("zz", "q1")) || m.Remove(qb("a", "q9")) {
				t.Fatal("Remove of absent binding = true")
			}
			if !m.Remove(b5again) {
				t.Fatal("Remove(b5) = false")
			}
			if m.Remove(b5) {
				t.Fatal("second Remove(b5) = true")
			}
			removed := m.RemoveDestination(binding.ToQueue, "q1")
			if !sameBindings(removed, []binding.Binding{b1, b3, b6}) {
				t.Fatalf("RemoveDestination = %+v", removed)
			}
			if r := m.RemoveDestination(binding.ToQueue, "q1"); len(r) != 0 {
				t.Fatalf("second RemoveDestination = %+v", r)
			}
			if !slices.EqualFunc(m.Bindings(), []binding.Binding{b2, b4}, binding.Binding.Equal) {
				t.Fatalf("Bindings after removals = %+v", m.Bindings())
			}
			if m.Len() != 2 {
				t.Fatalf("Len = %d", m.Len())
			}
			// A removed binding can be re-added.
			if !m.Add(b1) || m.Len() != 3 {
				t.Fatal("re-Add after removal failed")
			}
			m.RemoveDestination(binding.ToQueue, "q1")
			m.RemoveDestination(binding.ToQueue, "q2")
			m.RemoveDestination(binding.ToExchange, "q1")
			if m.Len() != 0 || len(m.Bindings()) != 0 {
				t.Fatalf("not empty: %+v", m.Bindings())
			}
			if out := m.Match("a", map[string]any{}, nil); len(out) != 0 {
				t.Fatalf("empty matcher matched %v", out)
			}
		})
	}
}

func sameBindings(a, b []binding.Binding) bool {
	if len(a) != len(b) {
		return false
	}
	used := make([]bool, len(b))
outer:
	for _, x := range a {
		for i, y := range b {
			if !used[i] && x.Equal(y) {
				used[i] = true
				continue outer
			}
		}
		return false
	}
	return true
}

func TestDirect(t *testing.T) {
	m := NewMatcher(Direct)
	mustAdd(t, m,
		qb("a", "q1"), qb("a", "q2"), qb("b", "q3"), qb("", "q4"),
		qb("a.b", "q5"), qb("#", "q6"), qb("*", "q7"), xb("a", "x1"))
	cases := []struct {
		key  string
		want []string
	}{
		{"a", []string{"q1", "q2", "x1"}},
		{"b", []string{"q3"}},
		{"", []string{"q4"}},
		{"a.b", []string{"q5"}},
		{"#", []string{"q6"}}, // no wildcards in direct
		{"*", []string{"q7"}},
		{"A", nil},
		{"c", nil},
	}
	for _, c := range cases {
		got := names(m.Match(c.key, nil, nil))
		if !slices.Equal(sorted(got), sorted(c.want)) {
			t.Errorf("Match(%q) = %v, want %v", c.key, got, c.want)
		}
	}
	// Same destination bound twice with different args: both contribute.
	b := qb("a", "q1")
	b.Args = map[string]any{"k": "v"}
	mustAdd(t, m, b)
	if got := names(m.Match("a", nil, nil)); !slices.Equal(got, []string{"q1", "q1", "q2", "x1"}) {
		t.Errorf("dup dest: %v", got)
	}
	// appends to out
	out := m.Match("b", nil, []Dest{{Name: "pre"}})
	if len(out) != 2 || out[0].Name != "pre" || out[1] != (Dest{binding.ToQueue, "q3"}) {
		t.Errorf("append: %v", out)
	}
}

func TestFanout(t *testing.T) {
	m := NewMatcher(Fanout)
	mustAdd(t, m, qb("a", "q1"), qb("", "q2"), qb("#", "q3"), xb("zzz", "x1"))
	for _, key := range []string{"", "a", "whatever.else", "#"} {
		got := names(m.Match(key, map[string]any{"h": 1}, nil))
		if !slices.Equal(got, []string{"q1", "q2", "q3", "x1"}) {
			t.Errorf("Match(%q) = %v", key, got)
		}
	}
	m.Remove(qb("", "q2"))
	if got := names(m.Match("", nil, nil)); !slices.Equal(got, []string{"q1", "q3", "x1"}) {
		t.Errorf("after remove: %v", got)
	}
}

func TestDestListSwapRemove(t *testing.T) {
	// Many removals in arbitrary order keep the index consistent.
	for _, k := range allKinds {
		m := NewMatcher(k)
		const n = 200
		for i := 0; i < n; i++ {
			mustAdd(t, m, qb("k", fmt.Sprintf("q%03d", i)))
		}
		for i := 0; i < n; i += 3 {
			if !m.Remove(qb("k", fmt.Sprintf("q%03d", i))) {
				t.Fatalf("%s: remove %d", k, i)
			}
		}
		for i := n - 1; i >= 0; i -= 5 {
			m.RemoveDestination(binding.ToQueue, fmt.Sprintf("q%03d", i))
		}
		var want []string
		for i := 0; i < n; i++ {
			if i%3 != 0 && (n-1-i)%5 != 0 {
				want = append(want, fmt.Sprintf("q%03d", i))
			}
		}
		got := names(m.Match("k", nil, nil))
		if !slices.Equal(got, want) {
			t.Fatalf("%s: got %d dests want %d", k, len(got), len(want))
		}
		if m.Len() != len(want) {
			t.Fatalf("%s: Len %d want %d", k, m.Len(), len(want))
		}
	}
}

func TestValidateBinding(t *testing.T) {
	ok := []map[string]any{nil, {}, {"x-match": "all"}, {"x-match": "any"}, {"x-match": "all-with-x"}, {"x-match": "any-with-x"}, {"a": 1}}
	for _, a := range ok {
		if err := ValidateBinding(Headers, hb("q", a)); err != nil {
			t.Errorf("%v: %v", a, err)
		}
	}
	bad := []map[string]any{{"x-match": "ALL"}, {"x-match": ""}, {"x-match": []byte("all")}, {"x-match": int32(1)}, {"x-match": nil}}
	for _, a := range bad {
		err := ValidateBinding(Headers, hb("q", a))
		if err == nil || !strings.Contains(err.Error(), "x-match") {
			t.Errorf("%v: err = %v", a, err)
		}
	}
	for _, k := range []Kind{Direct, Fanout, Topic} {
		if err := ValidateBinding(k, hb("q", map[string]any{"x-match": "bogus"})); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
}
