package exchange

import (
	"strings"
	"sync"

	"github.com/warrenmq/warren/binding"
)

// Topic routing, RabbitMQ semantics:
//
//   - A key is split on "." into words. The empty key "" has zero words; any
//     other key has (number of dots + 1) words, some possibly empty: "a..b"
//     is ["a", "", "b"], "a." is ["a", ""].
//   - In a binding key, the word "*" matches exactly one word and "#" matches
//     zero or more words; every other word matches itself literally.
//   - So "#" matches everything including "", "*" matches no key with zero
//     or several words, and the binding key "" matches only the routing key
//     "".
//
// Bindings live in a trie whose edges are binding-key words ("*" and "#"
// have dedicated edges). Matching walks the trie and the routing key's words
// together without allocating the words. Each (node, word index) state is
// visited at most once — '#' nodes memoise the lowest word index they have
// been expanded from — so pathological patterns such as "#.#.#.#" stay
// polynomial and every node's bindings are emitted at most once per Match.
//
// Results are cached per routing key (bounded, cleared on every mutation).

const (
	defaultCacheEntries = 4096
	// defaultCacheDests bounds the total number of cached destinations so
	// that keys matching huge fan-outs cannot blow up memory.
	defaultCacheDests = 1 << 18
)

type tnode struct {
	parent *tnode
	word   string // edge label from parent ("*" / "#" for wildcard edges)
	// Literal children: a short slice while small (most trie nodes have
	// one or two children), switched to a map past smallKids.
	few  []*tnode
	kids map[string]*tnode
	star *tnode
	hash *tnode
	list destList
}

func (n *tnode) empty() bool {
	return len(n.few) == 0 && len(n.kids) == 0 && n.star == nil && n.hash == nil && n.list.len() == 0
}

type topicMatcher struct {
	reg  registry
	root *tnode

	cacheMax      int // entries; 0 disables the cache
	cacheMaxDests int
	mu            sync.RWMutex // guards cache and cacheDests only
	cache         map[string][]Dest
	cacheDests    int

	pool sync.Pool // *topicScratch
}

type topicScratch struct {
	bounds []int            // bounds[i] = start of word i; bounds[nw] = len(key)+1
	memo   map[*tnode]int32 // '#' node -> lowest word index expanded from
	key    string
	nw     int
	out    []Dest
}

func newTopic(cacheEntries, cacheDests int) *topicMatcher {
	m := &topicMatcher{root: &tnode{}, cacheMax: cacheEntries, cacheMaxDests: cacheDests}
	m.reg.init()
	if cacheEntries > 0 {
		m.cache = make(map[string][]Dest)
	}
	m.pool.New = func() any { return &topicScratch{memo: make(map[*tnode]int32)} }
	return m
}

func (m *topicMatcher) invalidate() {
	if m.cache == nil {
		return
	}
	m.mu.Lock()
	if len(m.cache) > 0 {
		clear(m.cache)
		m.cacheDests = 0
	}
	m.mu.Unlock()
}

// nextWord returns the word of pattern starting at i and the index after its
// terminating dot (len(pattern)+1 after the last word).
func nextWord(s string, i int) (string, int) {
	if j := strings.IndexByte(s[i:], '.'); j >= 0 {
		return s[i : i+j], i + j + 1
	}
	return s[i:], len(s) + 1
}

func (m *topicMatcher) Add(b binding.Binding) bool {
	e := m.reg.add(b)
	if e == nil {
		return false
	}
	n := m.root
	if p := b.Key; p != "" {
		for i := 0; i <= len(p); {
			var w string
			w, i = nextWord(p, i)
			n = n.child(w)
		}
	}
	e.node = n
	n.list.add(e)
	m.invalidate()
	return true
}

func (n *tnode) child(w string) *tnode {
	switch w {
	case "*":
		if n.star == nil {
			n.star = &tnode{parent: n, word: w}
		}
		return n.star
	case "#":
		if n.hash == nil {
			n.hash = &tnode{parent: n, word: w}
		}
		return n.hash
	}
	if c := n.lookup(w); c != nil {
		return c
	}
	c := &tnode{parent: n, word: w}
	switch {
	case n.kids != nil:
		n.kids[w] = c
	case len(n.few) < smallKids:
		n.few = append(n.few, c)
	default:
		n.kids = make(map[string]*tnode, 2*smallKids)
		for _, k := range n.few {
			n.kids[k.word] = k
		}
		n.kids[w] = c
		n.few = nil
	}
	return c
}

const smallKids = 8

// lookup returns the literal child for word w, or nil.
func (n *tnode) lookup(w string) *tnode {
	if n.kids != nil {
		return n.kids[w]
	}
	for _, c := range n.few {
		if c.word == w {
			return c
		}
	}
	return nil
}

func (n *tnode) dropKid(c *tnode) {
	if n.kids != nil {
		delete(n.kids, c.word)
		return
	}
	for i, k := range n.few {
		if k == c {
			last := len(n.few) - 1
			n.few[i] = n.few[last]
			n.few[last] = nil
			n.few = n.few[:last]
			if last == 0 {
				n.few = nil
			}
			return
		}
	}
}

// unlink removes e from its node and prunes now-empty nodes.
func (m *topicMatcher) unlink(e *entry) {
	n := e.node
	n.list.remove(e)
	e.node = nil
	for n.parent != nil && n.empty() {
		p := n.parent
		switch {
		case p.star == n:
			p.star = nil
		case p.hash == n:
			p.hash = nil
		default:
			p.dropKid(n)
		}
		n.parent = nil
		n = p
	}
}

func (m *topicMatcher) Remove(b binding.Binding) bool {
	e := m.reg.remove(b)
	if e == nil {
		return false
	}
	m.unlink(e)
	m.invalidate()
	return true
}

func (m *topicMatcher) RemoveDestination(kind binding.DestKind, dest string) []binding.Binding {
	es := m.reg.removeDest(Dest{kind, dest})
	if len(es) == 0 {
		return nil
	}
	for _, e := range es {
		m.unlink(e)
	}
	m.invalidate()
	return entriesToBindings(es)
}

func (m *topicMatcher) Match(routingKey string, _ map[string]any, out []Dest) []Dest {
	if m.reg.n == 0 {
		return out
	}
	if m.cache != nil {
		m.mu.RLock()
		res, ok := m.cache[routingKey]
		m.mu.RUnlock()
		if ok {
			return append(out, res...)
		}
	}
	start := len(out)
	out = m.matchUncached(routingKey, out)
	if m.cache != nil {
		m.store(routingKey, out[start:])
	}
	return out
}

func (m *topicMatcher) store(key string, res []Dest) {
	if len(res) > m.cacheMaxDests/4 {
		return // too big to be worth caching
	}
	var cp []Dest
	if len(res) > 0 {
		cp = make([]Dest, len(res))
		copy(cp, res)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.cache[key]; ok {
		return // a concurrent Match stored it first
	}
	// Evict arbitrary entries (map iteration order is randomised) until
	// both bounds hold.
	for k, v := range m.cache {
		if len(m.cache) < m.cacheMax && m.cacheDests+len(cp) <= m.cacheMaxDests {
			break
		}
		m.cacheDests -= len(v)
		delete(m.cache, k)
	}
	m.cache[strings.Clone(key)] = cp
	m.cacheDests += len(cp)
}

// matchUncached walks the trie. Exported behaviour does not depend on the
// cache; tests call this directly to compare.
func (m *topicMatcher) matchUncached(key string, out []Dest) []Dest {
	s := m.pool.Get().(*topicScratch)
	s.key = key
	s.bounds = s.bounds[:0]
	if key != "" {
		s.bounds = append(s.bounds, 0)
		for i := 0; i < len(key); i++ {
			if key[i] == '.' {
				s.bounds = append(s.bounds, i+1)
			}
		}
		s.bounds = append(s.bounds, len(key)+1)
		s.nw = len(s.bounds) - 1
	} else {
		s.nw = 0
	}
	if len(s.memo) > 0 {
		if len(s.memo) > 1024 {
			s.memo = make(map[*tnode]int32) // don't keep clearing a huge map
		} else {
			clear(s.memo)
		}
	}
	s.out = out
	s.walk(m.root, 0)
	out = s.out
	s.out = nil
	s.key = ""
	m.pool.Put(s)
	return out
}

// walk visits state (n, i): node n reached with words [0, i) consumed.
func (s *topicScratch) walk(n *tnode, i int) {
	if i == s.nw {
		s.out = append(s.out, n.list.dests...)
		if n.hash != nil {
			s.hashWalk(n.hash, i)
		}
		return
	}
	if c := n.lookup(s.key[s.bounds[i] : s.bounds[i+1]-1]); c != nil {
		s.walk(c, i+1)
	}
	if n.star != nil {
		s.walk(n.star, i+1)
	}
	if n.hash != nil {
		s.hashWalk(n.hash, i)
	}
}

// hashWalk enters '#' node h with words [0, i) consumed: h swallows words
// [i, j) for every j in [i, nw]. Each (h, j) is expanded once per Match.
func (s *topicScratch) hashWalk(h *tnode, i int) {
	hi := s.nw
	if lo, ok := s.memo[h]; ok {
		if int(lo) <= i {
			return
		}
		hi = int(lo) - 1
	}
	s.memo[h] = int32(i)
	for j := i; j <= hi; j++ {
		s.walk(h, j)
	}
}

func (m *topicMatcher) Bindings() []binding.Binding { return m.reg.bindings() }
func (m *topicMatcher) Len() int                    { return m.reg.n }
