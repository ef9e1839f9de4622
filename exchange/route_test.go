package exchange

import (
	"fmt"
	"slices"
	"testing"
)

type graph struct {
	m   map[string]Matcher
	alt map[string]string
}

func newGraph() *graph { return &graph{m: map[string]Matcher{}, alt: map[string]string{}} }

func (g *graph) ex(name string, k Kind, alt string) Matcher {
	m := NewMatcher(k)
	g.m[name] = m
	if alt != "" {
		g.alt[name] = alt
	}
	return m
}

func (g *graph) lookup(name string) (Matcher, string, bool) {
	m, ok := g.m[name]
	return m, g.alt[name], ok
}

func (g *graph) route(start, key string, h map[string]any) []string {
	return Route(start, key, h, g.lookup, nil, nil)
}

func TestRouteSimple(t *testing.T) {
	g := newGraph()
	d := g.ex("d", Direct, "")
	mustAdd(t, d, qb("k", "q1"), qb("k", "q2"), withArgs(qb("k", "q1"), map[string]any{"a": 1}))
	if got := g.route("d", "k", nil); !slices.Equal(got, []string{"q1", "q2"}) && !slices.Equal(got, []string{"q2", "q1"}) {
		t.Fatalf("got %v", got)
	}
	if got := g.route("d", "nope", nil); len(got) != 0 {
		t.Fatalf("got %v", got)
	}
	if got := g.route("missing", "k", nil); len(got) != 0 {
		t.Fatalf("missing start: %v", got)
	}
	// out is appended to, and dedup only considers what Route appended
	out := Route("d", "k", nil, g.lookup, nil, []string{"q1"})
	if len(out) != 3 || out[0] != "q1" {
		t.Fatalf("append: %v", out)
	}
}

func TestRouteE2ECycle(t *testing.T) {
	g := newGraph()
	a := g.ex("A", Fanout, "")
	b := g.ex("B", Fanout, "")
	mustAdd(t, a, xb("", "B"), qb("", "qa"), xb("", "A")) // self-binding too
	mustAdd(t, b, xb("", "A"), qb("", "qb"), qb("", "qa"))
	got := g.route("A", "", nil)
	if !slices.Equal(got, []string{"qa", "qb"}) {
		t.Fatalf("A: %v", got)
	}
	if got := g.route("B", "", nil); !slices.Equal(sorted(got), []string{"qa", "qb"}) {
		t.Fatalf("B: %v", got)
	}
}

func TestRouteDiamond(t *testing.T) {
	g := newGraph()
	a := g.ex("A", Topic, "")
	b := g.ex("B", Direct, "")
	c := g.ex("C", Fanout, "")
	mustAdd(t, a, xb("#", "B"), xb("*.*", "C"))
	mustAdd(t, b, qb("x.y", "Q"), qb("x.y", "QB"))
	mustAdd(t, c, qb("", "Q"), qb("", "QC"))
	got := g.route("A", "x.y", nil)
	if !slices.Equal(sorted(got), []string{"Q", "QB", "QC"}) {
		t.Fatalf("diamond: %v", got)
	}
	// first-seen order is deterministic
	for i := 0; i < 20; i++ {
		if again := g.route("A", "x.y", nil); !slices.Equal(again, got) {
			t.Fatalf("order not stable: %v vs %v", again, got)
		}
	}
	if got := g.route("A", "x", nil); !slices.Equal(got, []string{}) && got != nil {
		t.Fatalf("x: %v", got)
	}
}

func TestRouteBindingToMissingExchange(t *testing.T) {
	g := newGraph()
	a := g.ex("A", Direct, "AE")
	ae := g.ex("AE", Fanout, "")
	mustAdd(t, a, xb("k", "gone"))
	mustAdd(t, ae, qb("", "unrouted"))
	// The binding to a missing exchange still counts as a match: no AE.
	if got := g.route("A", "k", nil); len(got) != 0 {
		t.Fatalf("got %v", got)
	}
	if got := g.route("A", "other", nil); !slices.Equal(got, []string{"unrouted"}) {
		t.Fatalf("got %v", got)
	}
}

func TestRouteAlternate(t *testing.T) {
	g := newGraph()
	a := g.ex("A", Direct, "AE")
	ae := g.ex("AE", Fanout, "")
	mustAdd(t, a, qb("k", "q1"))
	mustAdd(t, ae, qb("", "unrouted"))
	if got := g.route("A", "k", nil); !slices.Equal(got, []string{"q1"}) {
		t.Fatalf("routed: %v", got)
	}
	if got := g.route("A", "other", nil); !slices.Equal(got, []string{"unrouted"}) {
		t.Fatalf("unrouted: %v", got)
	}
	// missing alternate exchange: nothing
	g.alt["A"] = "nonexistent"
	if got := g.route("A", "other", nil); len(got) != 0 {
		t.Fatalf("missing AE: %v", got)
	}
}

func TestRouteAlternateChainAndCycle(t *testing.T) {
	g := newGraph()
	g.ex("A", Direct, "B")
	g.ex("B", Direct, "C")
	c := g.ex("C", Direct, "A") // cycle A -> B -> C -> A
	if got := g.route("A", "k", nil); len(got) != 0 {
		t.Fatalf("cycle: %v", got)
	}
	mustAdd(t, c, qb("k", "qc"))
	if got := g.route("A", "k", nil); !slices.Equal(got, []string{"qc"}) {
		t.Fatalf("chain: %v", got)
	}
	if got := g.route("B", "k", nil); !slices.Equal(got, []string{"qc"}) {
		t.Fatalf("chain from B: %v", got)
	}
	// self alternate
	g2 := newGraph()
	g2.ex("S", Direct, "S")
	if got := g2.route("S", "k", nil); len(got) != 0 {
		t.Fatalf("self AE: %v", got)
	}
}

// RabbitMQ decides per exchange: A routes to exchange B (so A's own AE is
// not used) even though B routes nowhere; B's AE is used instead.
func TestRouteAlternatePerExchange(t *testing.T) {
	g := newGraph()
	a := g.ex("A", Direct, "AEA")
	g.ex("B", Direct, "")
	aea := g.ex("AEA", Fanout, "")
	mustAdd(t, a, xb("k", "B"))
	mustAdd(t, aea, qb("", "qa-unrouted"))
	if got := g.route("A", "k", nil); len(got) != 0 {
		t.Fatalf("A's AE must not fire when A matched an e2e binding: %v", got)
	}
	g.alt["B"] = "AEB"
	aeb := g.ex("AEB", Fanout, "")
	mustAdd(t, aeb, qb("", "qb-unrouted"))
	if got := g.route("A", "k", nil); !slices.Equal(got, []string{"qb-unrouted"}) {
		t.Fatalf("B's AE: %v", got)
	}
	// An AE that is also reachable through bindings is visited only once.
	mustAdd(t, a, xb("k", "AEB"))
	if got := g.route("A", "k", nil); !slices.Equal(got, []string{"qb-unrouted"}) {
		t.Fatalf("AE visited once: %v", got)
	}
	// Headers exchange downstream, headers are passed through.
	h := g.ex("H", Headers, "")
	mustAdd(t, a, xb("k", "H"))
	mustAdd(t, h, hb("qh", map[string]any{"x-match": "any", "t": "1"}))
	got := g.route("A", "k", map[string]any{"t": "1"})
	if !slices.Equal(sorted(got), []string{"qb-unrouted", "qh"}) {
		t.Fatalf("headers downstream: %v", got)
	}
}

func TestRouteManyQueuesAndExchanges(t *testing.T) {
	// Exercise the map-based dedup paths (past linearLimit).
	g := newGraph()
	root := g.ex("root", Fanout, "")
	for i := 0; i < 40; i++ {
		name := fmt.Sprintf("x%d", i)
		x := g.ex(name, Fanout, "")
		mustAdd(t, root, xb("", name))
		mustAdd(t, x, xb("", "root")) // back edge
		for j := 0; j < 30; j++ {
			mustAdd(t, x, qb("", fmt.Sprintf("q%d", (i*7+j)%100)))
		}
	}
	var s RouteScratch
	for pass := 0; pass < 3; pass++ {
		got := Route("root", "", nil, g.lookup, &s, nil)
		if len(got) != 100 {
			t.Fatalf("pass %d: %d queues", pass, len(got))
		}
		seen := map[string]bool{}
		for _, q := range got {
			if seen[q] {
				t.Fatalf("duplicate %s", q)
			}
			seen[q] = true
		}
		// A small route with the same scratch must not see stale state.
		small := Route("x0", "", nil, g.lookup, &s, nil)
		if len(small) != 100 { // x0 -> root -> everything
			t.Fatalf("small: %d", len(small))
		}
	}
}

func TestRouteScratchNoAlloc(t *testing.T) {
	g := newGraph()
	a := g.ex("A", Direct, "")
	b := g.ex("B", Fanout, "")
	mustAdd(t, a, qb("k", "q1"), xb("k", "B"))
	mustAdd(t, b, qb("", "q2"), qb("", "q1"))
	var s RouteScratch
	out := make([]string, 0, 8)
	lookup := g.lookup
	Route("A", "k", nil, lookup, &s, out[:0])
	allocs := testing.AllocsPerRun(100, func() {
		out = Route("A", "k", nil, lookup, &s, out[:0])
	})
	if allocs != 0 {
		t.Fatalf("Route allocates %v per run", allocs)
	}
	if !slices.Equal(out, []string{"q1", "q2"}) {
		t.Fatalf("got %v", out)
	}
}

// TestConcurrentReaders runs Match (every type) and Route from several
// goroutines at once, as a server holding a read lock would; -race checks
// that the read path is free of shared writes (other than the topic cache,
// which is internally synchronised).
func TestConcurrentReaders(t *testing.T) {
	g := newGraph()
	top := g.ex("T", Topic, "AE")
	dir := g.ex("D", Direct, "")
	fan := g.ex("F", Fanout, "")
	hdr := g.ex("H", Headers, "")
	ae := g.ex("AE", Fanout, "")
	mustAdd(t, top, xb("a.#", "D"), xb("*.b", "F"), xb("#", "H"))
	mustAdd(t, dir, qb("a.b", "qd"))
	mustAdd(t, fan, qb("", "qf"))
	mustAdd(t, hdr, hb("qh", map[string]any{"k": "v"}))
	mustAdd(t, ae, qb("", "qae"))
	done := make(chan struct{})
	for w := 0; w < 6; w++ {
		go func(w int) {
			defer func() { done <- struct{}{} }()
			var s RouteScratch
			var out []string
			for i := 0; i < 300; i++ {
				key := []string{"a.b", "x.b", "a.c", "z"}[(i+w)%4]
				out = Route("T", key, map[string]any{"k": "v"}, g.lookup, &s, out[:0])
				want := map[string][]string{"a.b": {"qd", "qf", "qh"}, "x.b": {"qf", "qh"}, "a.c": {"qh"}, "z": {"qh"}}[key]
				if !slices.Equal(sorted(out), want) {
					t.Errorf("%s: %v want %v", key, out, want)
					return
				}
			}
		}(w)
	}
	for w := 0; w < 6; w++ {
		<-done
	}
}
