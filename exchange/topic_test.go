package exchange

import (
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warrenmq/warren/binding"
)

// topicCases: binding key, routing key, expected match (RabbitMQ semantics).
var topicCases = []struct {
	pattern, key string
	want         bool
}{
	// literal
	{"a", "a", true},
	{"a", "b", false},
	{"a", "a.b", false},
	{"a.b", "a", false},
	{"a.b.c", "a.b.c", true},
	{"a.b.c", "a.b.d", false},
	{"A", "a", false},
	// empty binding key / empty routing key
	{"", "", true},
	{"", "a", false},
	{"", ".", false},
	{"a", "", false},
	// '#'
	{"#", "", true},
	{"#", "a", true},
	{"#", "a.b.c", true},
	{"#", ".", true},
	{"#", "..", true},
	{"a.#", "a", true},
	{"a.#", "a.b", true},
	{"a.#", "a.b.c", true},
	{"a.#", "b", false},
	{"a.#", "", false},
	{"a.#", "b.a", false},
	{"a.#", "a.", true},
	{"#.a", "a", true},
	{"#.a", "b.a", true},
	{"#.a", "b.c.a", true},
	{"#.a", "a.b", false},
	{"#.a", "", false},
	{"a.#.b", "a.b", true},
	{"a.#.b", "a.x.b", true},
	{"a.#.b", "a.x.y.b", true},
	{"a.#.b", "a.x.y.c", false},
	{"a.#.b", "a.b.b", true},
	{"a.#.b", "a", false},
	{"#.a.#", "a", true},
	{"#.a.#", "x.a.y", true},
	{"#.a.#", "x.y", false},
	{"#.#", "", true},
	{"#.#", "a", true},
	{"#.#", "a.b.c", true},
	{"#.#.#", "", true},
	{"a.#.#.b", "a.b", true},
	{"a.#.#.b", "a.x.b", true},
	{"a.#.#.b", "a.x.y.z.b", true},
	{"a.#.#.b", "a.x.y.z.c", false},
	{"#.b.#.c", "b.c", true},
	{"#.b.#.c", "x.b.y.z.c", true},
	{"#.b.#.c", "x.c.y.b", false},
	// '*'
	{"*", "a", true},
	{"*", "", false},
	{"*", "a.b", false},
	{"*", ".", false},
	{"a.*", "a.b", true},
	{"a.*", "a", false},
	{"a.*", "a.b.c", false},
	{"a.*", "a.", true}, // empty last word is a word
	{"*.a", "a", false},
	{"*.a", "b.a", true},
	{"*.a", ".a", true},
	{"a.*.c", "a.b.c", true},
	{"a.*.c", "a..c", true},
	{"a.*.c", "a.c", false},
	{"a.*.c", "a.b.b.c", false},
	{"*.*", "a.b", true},
	{"*.*", "a", false},
	{"*.*", ".", true},
	{"*.#", "a", true},
	{"*.#", "a.b.c", true},
	{"*.#", "", false},
	{"#.*", "a", true},
	{"#.*", "", false},
	{"#.*.#", "a", true},
	{"*.#.*", "a", false},
	{"*.#.*", "a.b", true},
	{"*.#.*", "a.b.c.d", true},
	{"#.*.*", "a", false},
	{"#.*.*", "a.b", true},
	// empty words
	{"a..b", "a..b", true},
	{"a..b", "a.b", false},
	{"a..b", "a.x.b", false},
	{"a.", "a.", true},
	{"a.", "a", false},
	{".a", ".a", true},
	{".", ".", true},
	{".", "", false},
	{"..", "..", true},
	{"a.#..b", "a..b", true},
	{"a.#..b", "a.x.y..b", true},
	{"a.#..b", "a.b", false},
	// wildcard characters inside words are literal
	{"a*", "a*", true},
	{"a*", "ab", false},
	{"a#", "abc", false},
	{"a#", "a#", true},
	{"*b", "ab", false},
	// '*' and '#' as routing-key words are ordinary words
	{"a.b", "a.*", false},
	{"a.*", "a.*", true},
	{"a.#", "a.#", true},
	{"#", "#", true},
	{"*", "#", true},
	{"a.b", "a.#", false},
}

func TestTopicTable(t *testing.T) {
	// Each case on its own matcher...
	for _, c := range topicCases {
		m := NewMatcher(Topic)
		mustAdd(t, m, qb(c.pattern, "q"))
		got := len(m.Match(c.key, nil, nil)) > 0
		if got != c.want {
			t.Errorf("pattern %q key %q: got %v want %v", c.pattern, c.key, got, c.want)
		}
		// second call goes through the cache
		if got2 := len(m.Match(c.key, nil, nil)) > 0; got2 != got {
			t.Errorf("pattern %q key %q: cached result %v differs", c.pattern, c.key, got2)
		}
	}
	// ...and all together in one trie, each pattern bound to its own queue.
	m := NewMatcher(Topic)
	pats := map[string]bool{}
	for _, c := range topicCases {
		if !pats[c.pattern] {
			pats[c.pattern] = true
			mustAdd(t, m, qb(c.pattern, "q:"+c.pattern))
		}
	}
	for _, c := range topicCases {
		for pass := 0; pass < 2; pass++ {
			got := m.Match(c.key, nil, nil)
			n := 0
			for _, d := range got {
				if d.Name == "q:"+c.pattern {
					n++
				}
			}
			if c.want && n != 1 || !c.want && n != 0 {
				t.Errorf("shared trie pattern %q key %q: matched %d times, want %v", c.pattern, c.key, n, c.want)
			}
		}
	}
}

func TestTopicRemovePrunes(t *testing.T) {
	m := newTopic(defaultCacheEntries, defaultCacheDests)
	keys := []string{"a.b.c", "a.*.c", "a.#", "#", "", "a..b", "*.*"}
	for _, k := range keys {
		mustAdd(t, m, qb(k, "q1"), qb(k, "q2"))
	}
	if got := len(m.Match("a.b.c", nil, nil)); got != 8 { // a.b.c, a.*.c, a.#, # x2
		t.Fatalf("before remove: %d", got)
	}
	for _, k := range keys {
		if !m.Remove(qb(k, "q1")) {
			t.Fatalf("remove %q", k)
		}
	}
	// the cache must have been invalidated
	if got := names(m.Match("a.b.c", nil, nil)); !slices.Equal(got, []string{"q2", "q2", "q2", "q2"}) {
		t.Fatalf("after remove: %v", got)
	}
	m.RemoveDestination(binding.ToQueue, "q2")
	if !m.root.empty() || len(m.root.kids) != 0 {
		t.Fatalf("trie not pruned: %+v", m.root)
	}
	if got := m.Match("a.b.c", nil, nil); len(got) != 0 {
		t.Fatalf("after RemoveDestination: %v", got)
	}
	// Removing one of two bindings sharing a node keeps the node.
	mustAdd(t, m, qb("a.b", "q1"), qb("a.b.c", "q1"))
	m.Remove(qb("a.b", "q1"))
	if got := names(m.Match("a.b.c", nil, nil)); !slices.Equal(got, []string{"q1"}) {
		t.Fatalf("shared prefix: %v", got)
	}
	if got := m.Match("a.b", nil, nil); len(got) != 0 {
		t.Fatalf("removed prefix still matches: %v", got)
	}
}

func TestTopicCacheBounded(t *testing.T) {
	m := newTopic(8, 20)
	mustAdd(t, m, qb("#", "q1"), qb("a.*", "q2"))
	for i := 0; i < 100; i++ {
		k := fmt.Sprintf("a.%d", i)
		if got := names(m.Match(k, nil, nil)); !slices.Equal(got, []string{"q1", "q2"}) {
			t.Fatalf("%s: %v", k, got)
		}
		if len(m.cache) > 8 || m.cacheDests > 20 {
			t.Fatalf("cache over bound: %d entries %d dests", len(m.cache), m.cacheDests)
		}
	}
	// results too large for the budget are not cached but still correct
	for i := 0; i < 10; i++ {
		mustAdd(t, m, qb("b.#", fmt.Sprintf("big%d", i)))
	}
	if got := len(m.Match("b.c", nil, nil)); got != 11 {
		t.Fatalf("big: %d", got)
	}
	if _, ok := m.cache["b.c"]; ok {
		t.Fatal("oversized result was cached")
	}
	// cache disabled
	m0 := newTopic(0, 0)
	mustAdd(t, m0, qb("#", "q"))
	if got := len(m0.Match("x", nil, nil)); got != 1 {
		t.Fatal("uncached matcher")
	}
}

// refMatch is an obviously-correct recursive topic matcher over word slices.
func refMatch(p, k []string) bool {
	if len(p) == 0 {
		return len(k) == 0
	}
	switch p[0] {
	case "#":
		return refMatch(p[1:], k) || (len(k) > 0 && refMatch(p, k[1:]))
	case "*":
		return len(k) > 0 && refMatch(p[1:], k[1:])
	}
	return len(k) > 0 && k[0] == p[0] && refMatch(p[1:], k[1:])
}

func refSplit(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ".")
}

func randWords(r *rand.Rand, alphabet []string, max int) string {
	n := r.Intn(max + 1)
	w := make([]string, n)
	for i := range w {
		w[i] = alphabet[r.Intn(len(alphabet))]
	}
	return strings.Join(w, ".")
}

func TestTopicProperty(t *testing.T) {
	r := rand.New(rand.NewSource(42))
	patAlphabet := []string{"a", "b", "c", "", "*", "#", "#", "*"}
	keyAlphabet := []string{"a", "b", "c", "", "*", "#", "ab"}
	iters := 300
	if testing.Short() {
		iters = 50
	}
	for it := 0; it < iters; it++ {
		m := newTopic(64, 1<<12)
		var pats []string
		nb := 1 + r.Intn(60)
		for i := 0; i < nb; i++ {
			p := randWords(r, patAlphabet, 6)
			pats = append(pats, p)
			m.Add(qb(p, fmt.Sprint(i)))
		}
		alive := make([]bool, nb)
		for i := range alive {
			alive[i] = true
		}
		check := func() {
			for j := 0; j < 40; j++ {
				key := randWords(r, keyAlphabet, 7)
				if j%10 == 0 && len(pats) > 0 { // keys equal to a pattern
					key = pats[r.Intn(len(pats))]
				}
				kw := refSplit(key)
				var want []string
				for i, p := range pats {
					if alive[i] && refMatch(refSplit(p), kw) {
						want = append(want, fmt.Sprint(i))
					}
				}
				want = sorted(want)
				for pass := 0; pass < 2; pass++ { // miss, then hit
					got := names(m.Match(key, nil, nil))
					if !slices.Equal(sorted(got), want) {
						t.Fatalf("iter %d key %q pass %d: got %v want %v (patterns %q)", it, key, pass, got, want, pats)
					}
				}
				if got := names(m.matchUncached(key, nil)); !slices.Equal(sorted(got), want) {
					t.Fatalf("uncached key %q: got %v want %v", key, got, want)
				}
			}
		}
		check()
		for i := range pats {
			if r.Intn(3) == 0 {
				alive[i] = false
				if !m.Remove(qb(pats[i], fmt.Sprint(i))) {
					t.Fatalf("remove %d", i)
				}
			}
		}
		check()
	}
}

func TestTopicPathological(t *testing.T) {
	m := NewMatcher(Topic)
	pat := strings.Repeat("#.", 40) + "z"
	mustAdd(t, m, qb(pat, "q"), qb(strings.Repeat("#.", 40)+"#", "q2"), qb(strings.Repeat("*.#.", 20)+"z", "q3"))
	key := strings.Repeat("a.", 120) + "b"
	start := time.Now()
	if got := m.Match(key, nil, nil); !slices.Equal(names(got), []string{"q2"}) {
		t.Fatalf("got %v", got)
	}
	if got := names(m.Match(strings.Repeat("a.", 120)+"z", nil, nil)); !slices.Equal(got, []string{"q", "q2", "q3"}) {
		t.Fatalf("got %v", got)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("pathological match took %v", d)
	}
}

// TestTopicConcurrentMatch checks (under -race) that concurrent Match calls,
// which share the result cache, are safe while no mutation runs.
func TestTopicConcurrentMatch(t *testing.T) {
	m := NewMatcher(Topic)
	mustAdd(t, m, qb("a.*", "q1"), qb("#.c", "q2"), qb("a.#", "q3"))
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			var out []Dest
			for i := 0; i < 500; i++ {
				key := fmt.Sprintf("a.%d", (i+g)%50)
				out = m.Match(key, nil, out[:0])
				if len(out) != 2 {
					t.Errorf("%s: %v", key, out)
					return
				}
			}
		}(g)
	}
	wg.Wait()
}
