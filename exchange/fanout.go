package exchange

import "github.com/warrenmq/warren/binding"

// fanoutMatcher routes to every bound destination, ignoring the key.
type fanoutMatcher struct {
	reg  registry
	list destList
}

func newFanout() *fanoutMatcher {
	m := &fanoutMatcher{}
	m.reg.init()
	return m
}

func (m *fanoutMatcher) Add(b binding.Binding) bool {
	e := m.reg.add(b)
	if e == nil {
		return false
	}
	m.list.add(e)
	return true
}

func (m *fanoutMatcher) Remove(b binding.Binding) bool {
	e := m.reg.remove(b)
	if e == nil {
		return false
	}
	m.list.remove(e)
	return true
}

func (m *fanoutMatcher) RemoveDestination(kind binding.DestKind, dest string) []binding.Binding {
	es := m.reg.removeDest(Dest{kind, dest})
	for _, e := range es {
		m.list.remove(e)
	}
	return entriesToBindings(es)
}

func (m *fanoutMatcher) Match(_ string, _ map[string]any, out []Dest) []Dest {
	return append(out, m.list.dests...)
}

func (m *fanoutMatcher) Bindings() []binding.Binding { return m.reg.bindings() }
func (m *fanoutMatcher) Len() int                    { return m.reg.n }
