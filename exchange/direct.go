package exchange

import "github.com/warrenmq/warren/binding"

// directMatcher routes on exact routing-key equality.
type directMatcher struct {
	reg    registry
	routes map[string]*destList
}

func newDirect() *directMatcher {
	m := &directMatcher{routes: make(map[string]*destList)}
	m.reg.init()
	return m
}

func (m *directMatcher) Add(b binding.Binding) bool {
	e := m.reg.add(b)
	if e == nil {
		return false
	}
	l := m.routes[b.Key]
	if l == nil {
		l = new(destList)
		m.routes[b.Key] = l
	}
	l.add(e)
	return true
}

func (m *directMatcher) unlink(e *entry) {
	l := m.routes[e.b.Key]
	l.remove(e)
	if l.len() == 0 {
		delete(m.routes, e.b.Key)
	}
}

func (m *directMatcher) Remove(b binding.Binding) bool {
	e := m.reg.remove(b)
	if e == nil {
		return false
	}
	m.unlink(e)
	return true
}

func (m *directMatcher) RemoveDestination(kind binding.DestKind, dest string) []binding.Binding {
	es := m.reg.removeDest(Dest{kind, dest})
	for _, e := range es {
		m.unlink(e)
	}
	return entriesToBindings(es)
}

func (m *directMatcher) Match(routingKey string, _ map[string]any, out []Dest) []Dest {
	if l := m.routes[routingKey]; l != nil {
		out = append(out, l.dests...)
	}
	return out
}

func (m *directMatcher) Bindings() []binding.Binding { return m.reg.bindings() }
func (m *directMatcher) Len() int                    { return m.reg.n }
