package exchange

import (
	"fmt"
	"slices"

	"github.com/warrenmq/warren/binding"
)

// Kind is an exchange type name as it appears in exchange.declare.
type Kind string

// The built-in exchange types.
const (
	Direct  Kind = "direct"
	Fanout  Kind = "fanout"
	Topic   Kind = "topic"
	Headers Kind = "headers"
)

// ParseKind returns the Kind named by s. Names are case-sensitive, as in
// RabbitMQ; plugin types (x-...) are not supported and report false.
func ParseKind(s string) (Kind, bool) {
	switch Kind(s) {
	case Direct, Fanout, Topic, Headers:
		return Kind(s), true
	}
	return "", false
}

// Dest is one routing destination.
type Dest struct {
	Kind binding.DestKind
	Name string
}

// Matcher is the per-exchange binding table of one exchange type. Not safe
// for concurrent use: the caller (server) guards it (see the package
// documentation for the read-only relaxation).
type Matcher interface {
	// Add inserts b; false if an Equal binding already exists (idempotent
	// bind).
	Add(b binding.Binding) bool
	// Remove deletes the binding Equal to b; false if absent.
	Remove(b binding.Binding) bool
	// RemoveDestination drops all edges to dest (queue/exchange deleted) and
	// returns them.
	RemoveDestination(kind binding.DestKind, dest string) []binding.Binding
	// Match appends to out the destination of each binding matching
	// routingKey/headers. The same destination may appear several times
	// (once per matching binding); the caller dedups. Order is unspecified
	// but deterministic for a given state.
	Match(routingKey string, headers map[string]any, out []Dest) []Dest
	// Bindings returns a copy of all bindings in insertion order.
	Bindings() []binding.Binding
	// Len returns the number of bindings.
	Len() int
}

// NewMatcher returns an empty Matcher for exchange type k. It panics if k is
// not one of Direct, Fanout, Topic or Headers (use ParseKind first).
func NewMatcher(k Kind) Matcher {
	switch k {
	case Direct:
		return newDirect()
	case Fanout:
		return newFanout()
	case Topic:
		return newTopic(defaultCacheEntries, defaultCacheDests)
	case Headers:
		return newHeaders()
	}
	panic(fmt.Sprintf("exchange: unknown exchange type %q", string(k)))
}

// ValidateBinding checks b against the rules RabbitMQ applies when a binding
// is created on an exchange of type k. Only headers exchanges validate
// anything: x-match, if present, must be a string equal to "all", "any",
// "all-with-x" or "any-with-x". RabbitMQ reports a failure as a
// PRECONDITION_FAILED (406) channel error; the returned message mirrors its
// wording. Matchers themselves accept any binding (an invalid x-match is
// treated as "all", RabbitMQ's legacy behaviour).
func ValidateBinding(k Kind, b binding.Binding) error {
	if k != Headers {
		return nil
	}
	v, ok := b.Args[xMatch]
	if !ok {
		return nil
	}
	s, isStr := v.(string)
	if !isStr {
		return fmt.Errorf("Invalid x-match field type %T (value %v); expected longstr", v, v)
	}
	switch s {
	case "all", "any", "all-with-x", "any-with-x":
		return nil
	}
	return fmt.Errorf("Invalid x-match field value %q; expected all, any, all-with-x, or any-with-x", s)
}

// entry is one stored binding plus the bookkeeping that lets every matcher
// remove it in O(1).
type entry struct {
	b     binding.Binding
	dest  Dest
	seq   uint64      // insertion order, for Bindings
	slot  int         // index in the owning destList
	dslot int         // index in registry.byDest[dest]
	node  *tnode      // topic: trie node holding the entry
	hdr   *headerSpec // headers only
}

type edgeKey struct {
	kind binding.DestKind
	dest string
	key  string
}

// registry is the exchange-type independent binding set: identity
// (idempotent Add), lookup for Remove and the destination index for
// RemoveDestination.
type registry struct {
	edges  map[edgeKey][]*entry // usually one entry; several only when args differ
	byDest map[Dest][]*entry
	seq    uint64
	n      int
}

func (r *registry) init() {
	r.edges = make(map[edgeKey][]*entry)
	r.byDest = make(map[Dest][]*entry)
}

// add returns the new entry, or nil if an Equal binding exists.
func (r *registry) add(b binding.Binding) *entry {
	k := edgeKey{b.Kind, b.Destination, b.Key}
	list := r.edges[k]
	for _, e := range list {
		if e.b.Equal(b) {
			return nil
		}
	}
	r.seq++
	d := Dest{b.Kind, b.Destination}
	e := &entry{b: b, dest: d, seq: r.seq}
	r.edges[k] = append(list, e)
	dl := r.byDest[d]
	e.dslot = len(dl)
	r.byDest[d] = append(dl, e)
	r.n++
	return e
}

// remove deletes and returns the entry Equal to b, or nil.
func (r *registry) remove(b binding.Binding) *entry {
	k := edgeKey{b.Kind, b.Destination, b.Key}
	list := r.edges[k]
	for i, e := range list {
		if e.b.Equal(b) {
			r.dropEdge(k, list, i)
			r.dropDest(e)
			r.n--
			return e
		}
	}
	return nil
}

func (r *registry) dropEdge(k edgeKey, list []*entry, i int) {
	if len(list) == 1 {
		delete(r.edges, k)
		return
	}
	list = slices.Delete(list, i, i+1)
	r.edges[k] = list
}

func (r *registry) dropDest(e *entry) {
	dl := r.byDest[e.dest]
	last := len(dl) - 1
	if last == 0 {
		delete(r.byDest, e.dest)
		return
	}
	dl[e.dslot] = dl[last]
	dl[e.dslot].dslot = e.dslot
	dl[last] = nil
	r.byDest[e.dest] = dl[:last]
}

// removeDest deletes and returns every entry whose destination is d.
func (r *registry) removeDest(d Dest) []*entry {
	dl := r.byDest[d]
	if len(dl) == 0 {
		return nil
	}
	delete(r.byDest, d)
	for _, e := range dl {
		k := edgeKey{e.b.Kind, e.b.Destination, e.b.Key}
		list := r.edges[k]
		for i, x := range list {
			if x == e {
				r.dropEdge(k, list, i)
				break
			}
		}
	}
	r.n -= len(dl)
	return dl
}

func (r *registry) bindings() []binding.Binding {
	es := make([]*entry, 0, r.n)
	for _, list := range r.edges {
		es = append(es, list...)
	}
	slices.SortFunc(es, func(a, b *entry) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	out := make([]binding.Binding, len(es))
	for i, e := range es {
		out[i] = e.b
	}
	return out
}

func entriesToBindings(es []*entry) []binding.Binding {
	if len(es) == 0 {
		return nil
	}
	out := make([]binding.Binding, len(es))
	for i, e := range es {
		out[i] = e.b
	}
	return out
}

// destList is an unordered list of destinations, one per binding, with O(1)
// removal (swap with last).
type destList struct {
	dests []Dest
	ents  []*entry
}

func (l *destList) add(e *entry) {
	e.slot = len(l.dests)
	l.dests = append(l.dests, e.dest)
	l.ents = append(l.ents, e)
}

func (l *destList) remove(e *entry) {
	i, last := e.slot, len(l.dests)-1
	l.dests[i] = l.dests[last]
	l.ents[i] = l.ents[last]
	l.ents[i].slot = i
	l.dests[last] = Dest{}
	l.ents[last] = nil
	l.dests = l.dests[:last]
	l.ents = l.ents[:last]
}

func (l *destList) len() int { return len(l.dests) }
