package exchange

import (
	"fmt"
	"math/rand"
	"slices"
	"sort"
	"strings"
	"testing"
)

// refHeadersMatch transcribes RabbitMQ's merge-walk over key-sorted binding
// arguments and headers (rabbit_exchange_type_headers:headers_match/5),
// using headerValueEqual for the value comparison.
func refHeadersMatch(args, headers map[string]any) bool {
	kind := "all"
	if v, ok := args["x-match"].(string); ok && (v == "any" || v == "all-with-x" || v == "any-with-x") {
		kind = v
	}
	withX := strings.HasSuffix(kind, "-with-x")
	isAll := strings.HasPrefix(kind, "all")
	pk := make([]string, 0, len(args))
	for k := range args {
		pk = append(pk, k)
	}
	dk := make([]string, 0, len(headers))
	for k := range headers {
		dk = append(dk, k)
	}
	sort.Strings(pk)
	sort.Strings(dk)
	allM, anyM := true, false
	for {
		if isAll && !allM {
			return false
		}
		if !isAll && anyM {
			return true
		}
		if len(pk) == 0 {
			if isAll {
				return allM
			}
			return anyM
		}
		if pk[0] == "x-match" || (!withX && strings.HasPrefix(pk[0], "x-")) {
			pk = pk[1:]
			continue
		}
		if len(dk) == 0 {
			allM = false
			pk = nil
			continue
		}
		switch {
		case pk[0] > dk[0]:
			dk = dk[1:]
		case pk[0] < dk[0]:
			allM = false
			pk = pk[1:]
		case args[pk[0]] == nil:
			anyM = true
			pk, dk = pk[1:], dk[1:]
		case headerValueEqual(args[pk[0]], headers[dk[0]]):
			anyM = true
			pk, dk = pk[1:], dk[1:]
		default:
			allM = false
			pk, dk = pk[1:], dk[1:]
		}
	}
}

func TestHeadersProperty(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	keys := []string{"a", "b", "c", "x-a", "x-b", ""}
	vals := []any{nil, "1", "2", []byte("1"), int32(1), int64(2), 1.0, float32(2), true, false}
	modes := []any{nil, "all", "any", "all-with-x", "any-with-x", "bogus", int32(1)}
	randTable := func(max int) map[string]any {
		m := map[string]any{}
		for i := r.Intn(max + 1); i > 0; i-- {
			m[keys[r.Intn(len(keys))]] = vals[r.Intn(len(vals))]
		}
		return m
	}
	for it := 0; it < 3000; it++ {
		args := randTable(4)
		if mode := modes[r.Intn(len(modes))]; mode != nil {
			args["x-match"] = mode
		}
		m := NewMatcher(Headers)
		mustAdd(t, m, hb("q", args))
		for j := 0; j < 10; j++ {
			h := randTable(5)
			if r.Intn(4) == 0 {
				h["x-match"] = modes[r.Intn(len(modes))]
			}
			want := refHeadersMatch(args, h)
			if got := len(m.Match("", h, nil)) == 1; got != want {
				t.Fatalf("args %v headers %v: got %v want %v", args, h, got, want)
			}
		}
	}
}

// FuzzTopic compares the trie (cached and uncached) with refMatch.
func FuzzTopic(f *testing.F) {
	for _, c := range topicCases {
		f.Add(c.pattern, "a.b", c.key)
	}
	f.Fuzz(func(t *testing.T, p1, p2, key string) {
		if len(p1) > 64 || len(p2) > 64 || len(key) > 64 {
			return
		}
		m := NewMatcher(Topic)
		m.Add(qb(p1, "1"))
		m.Add(qb(p2, "2"))
		var want []string
		for i, p := range []string{p1, p2} {
			if refMatch(refSplit(p), refSplit(key)) {
				want = append(want, fmt.Sprint(i+1))
			}
		}
		for pass := 0; pass < 2; pass++ {
			if got := names(m.Match(key, nil, nil)); !slices.Equal(sorted(got), sorted(want)) {
				t.Fatalf("p1 %q p2 %q key %q: got %v want %v", p1, p2, key, got, want)
			}
		}
	})
}
