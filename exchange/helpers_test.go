package exchange

import (
	"slices"
	"sort"
	"testing"

	"github.com/warrenmq/warren/binding"
)

func qb(key, queue string) binding.Binding {
	return binding.Binding{Source: "x", Destination: queue, Kind: binding.ToQueue, Key: key}
}

func xb(key, dest string) binding.Binding {
	return binding.Binding{Source: "x", Destination: dest, Kind: binding.ToExchange, Key: key}
}

func hb(queue string, args map[string]any) binding.Binding {
	return binding.Binding{Source: "h", Destination: queue, Kind: binding.ToQueue, Args: args}
}

// names returns the sorted destination names (duplicates kept).
func names(ds []Dest) []string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		out = append(out, d.Name)
	}
	sort.Strings(out)
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	if s == nil {
		s = []string{}
	}
	return s
}

func mustAdd(t testing.TB, m Matcher, bs ...binding.Binding) {
	t.Helper()
	for _, b := range bs {
		if !m.Add(b) {
			t.Fatalf("Add(%+v) = false", b)
		}
	}
}

func withArgs(b binding.Binding, args map[string]any) binding.Binding {
	b.Args = args
	return b
}
