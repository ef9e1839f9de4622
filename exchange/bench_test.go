package exchange

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"
)

func BenchmarkDirectMatch(b *testing.B) {
	m := NewMatcher(Direct)
	for i := 0; i < 10000; i++ {
		m.Add(qb(fmt.Sprintf("key.%d", i), fmt.Sprintf("q%d", i)))
	}
	m.Add(qb("key.42", "extra"))
	out := make([]Dest, 0, 16)
	b.ReportAllocs()
	for b.Loop() {
		out = m.Match("key.42", nil, out[:0])
	}
	if len(out) != 2 {
		b.Fatal(out)
	}
}

func BenchmarkFanoutMatch(b *testing.B) {
	m := NewMatcher(Fanout)
	for i := 0; i < 10; i++ {
		m.Add(qb("", fmt.Sprintf("q%d", i)))
	}
	out := make([]Dest, 0, 16)
	b.ReportAllocs()
	for b.Loop() {
		out = m.Match("k", nil, out[:0])
	}
}

var benchWords = []string{"stock", "usd", "eur", "nyse", "nasdaq", "quote", "trade", "order", "fx", "bond",
	"eu", "us", "asia", "buy", "sell", "a", "b", "c", "d", "e"}

func randPattern(r *rand.Rand) string {
	n := 3 + r.Intn(3)
	w := make([]string, n)
	for i := range w {
		switch x := r.Intn(20); {
		case x == 0:
			w[i] = "#"
		case x <= 2:
			w[i] = "*"
		default:
			w[i] = benchWords[r.Intn(len(benchWords))] + fmt.Sprint(r.Intn(10))
		}
	}
	return strings.Join(w, ".")
}

func randKey(r *rand.Rand) string {
	n := 3 + r.Intn(3)
	w := make([]string, n)
	for i := range w {
		w[i] = benchWords[r.Intn(len(benchWords))] + fmt.Sprint(r.Intn(10))
	}
	return strings.Join(w, ".")
}

func bigTopic(b *testing.B, n int) (*topicMatcher, []string) {
	b.Helper()
	r := rand.New(rand.NewSource(1))
	m := newTopic(defaultCacheEntries, defaultCacheDests)
	pats := make([]string, n)
	for i := range pats {
		pats[i] = randPattern(r)
		m.Add(qb(pats[i], fmt.Sprintf("q%d", i)))
	}
	// Keys: half derived from patterns (so they match something), half random.
	keys := make([]string, 8192)
	for i := range keys {
		if i%2 == 0 {
			p := strings.Split(pats[r.Intn(n)], ".")
			var w []string
			for _, x := range p {
				switch x {
				case "*":
					w = append(w, "z")
				case "#":
					for j := r.Intn(3); j > 0; j-- {
						w = append(w, "y")
					}
				default:
					w = append(w, x)
				}
			}
			keys[i] = strings.Join(w, ".")
		} else {
			keys[i] = randKey(r)
		}
	}
	return m, keys
}

func BenchmarkTopicMatch100kCacheHit(b *testing.B) {
	m, keys := bigTopic(b, 100_000)
	key := keys[0]
	out := make([]Dest, 0, 64)
	out = m.Match(key, nil, out[:0])
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		out = m.Match(key, nil, out[:0])
	}
	b.ReportMetric(float64(len(out)), "dests")
}

func BenchmarkTopicMatch100kCacheMiss(b *testing.B) {
	m, keys := bigTopic(b, 100_000)
	out := make([]Dest, 0, 64)
	total := 0
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		out = m.matchUncached(keys[i&8191], out[:0])
		total += len(out)
		i++
	}
	b.ReportMetric(float64(total)/float64(i), "dests/op")
}

// Through the public Match with a working set larger than the cache:
// every call misses, copies its result in and evicts.
func BenchmarkTopicMatch100kCacheThrash(b *testing.B) {
	m, keys := bigTopic(b, 100_000)
	out := make([]Dest, 0, 64)
	r := rand.New(rand.NewSource(7))
	uniq := make([]string, 1<<16)
	for i := range uniq {
		uniq[i] = randKey(r) + fmt.Sprint(".", i)
	}
	_ = keys
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		out = m.Match(uniq[i&(1<<16-1)], nil, out[:0])
		i++
	}
}

func BenchmarkTopicAdd100k(b *testing.B) {
	r := rand.New(rand.NewSource(1))
	pats := make([]string, 100_000)
	qs := make([]string, len(pats))
	for i := range pats {
		pats[i] = randPattern(r)
		qs[i] = fmt.Sprintf("q%d", i)
	}
	b.ReportAllocs()
	for b.Loop() {
		m := NewMatcher(Topic)
		for i, p := range pats {
			m.Add(qb(p, qs[i]))
		}
	}
}

func BenchmarkTopicPathological(b *testing.B) {
	m := newTopic(0, 0)
	m.Add(qb(strings.Repeat("#.", 20)+"z", "q"))
	key := strings.Repeat("a.", 100) + "b"
	b.ReportAllocs()
	var out []Dest
	for b.Loop() {
		out = m.Match(key, nil, out[:0])
	}
}

func BenchmarkHeadersMatch(b *testing.B) {
	m := NewMatcher(Headers)
	for i := 0; i < 100; i++ {
		m.Add(hb(fmt.Sprintf("q%d", i), map[string]any{
			"x-match": []string{"all", "any"}[i%2],
			"format":  fmt.Sprintf("f%d", i%10),
			"type":    fmt.Sprintf("t%d", i%7),
			"level":   int32(i % 5),
		}))
	}
	h := map[string]any{"format": "f3", "type": "t3", "level": int64(3), "other": "x"}
	out := make([]Dest, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		out = m.Match("", h, out[:0])
	}
	b.ReportMetric(float64(len(out)), "dests")
}

func BenchmarkRouteE2E(b *testing.B) {
	g := newGraph()
	a := g.ex("A", Topic, "")
	bb := g.ex("B", Direct, "")
	c := g.ex("C", Fanout, "")
	a.Add(xb("#", "B"))
	a.Add(xb("order.*", "C"))
	bb.Add(qb("order.new", "q1"))
	for i := 0; i < 5; i++ {
		c.Add(qb("", fmt.Sprintf("c%d", i)))
	}
	c.Add(qb("", "q1"))
	var s RouteScratch
	out := make([]string, 0, 16)
	lookup := g.lookup
	b.ReportAllocs()
	for b.Loop() {
		out = Route("A", "order.new", nil, lookup, &s, out[:0])
	}
	if len(out) != 6 {
		b.Fatal(out)
	}
}
