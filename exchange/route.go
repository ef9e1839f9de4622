package exchange

import "github.com/warrenmq/warren/binding"

// RouteScratch holds reusable buffers so that Route does not allocate in
// steady state. The zero value is ready to use; a RouteScratch must not be
// used by two goroutines at once.
type RouteScratch struct {
	dests []Dest
	work  []string            // exchanges queued or visited, in order
	xset  map[string]struct{} // used once work grows past linearLimit
	qset  map[string]struct{} // used once the result grows past linearLimit
}

// Below this many elements, membership is checked by a linear scan, which is
// faster than hashing and needs no map.
const linearLimit = 16

// Route resolves a publish through the exchange graph starting at exchange
// start and appends each distinct queue name to out, in first-seen
// (breadth-first) order.
//
// lookup returns the Matcher of an exchange by name, its alternate exchange
// ("" if none), and false if the exchange does not exist (such exchanges,
// including start, are skipped). ToExchange destinations are followed
// recursively; each exchange is visited at most once, so cycles terminate
// and diamonds yield each queue once.
//
// Alternate exchanges follow RabbitMQ 3.x (rabbit_exchange:route1 and
// process_alternate): the decision is per exchange, on that exchange's own
// Match result. When an exchange's Match yields no destination at all —
// neither queue nor exchange — its alternate exchange is visited (like any
// other exchange: at most once, and its own alternate applies in turn, so
// chains and cycles of alternates terminate). An exchange whose only
// matches are exchange bindings that later route nowhere does NOT fall back
// to its alternate; each of those downstream exchanges consults its own.
// Bindings to missing exchanges still count as matches. RabbitMQ returns
// the queue set sorted; here the order is first-seen, which is equally
// valid since delivery order across queues is unspecified.
//
// The default exchange ("") is not special-cased: the caller handles it.
func Route(start, routingKey string, headers map[string]any, lookup func(name string) (m Matcher, alternate string, ok bool), scratch *RouteScratch, out []string) []string {
	s := scratch
	if s == nil {
		s = new(RouteScratch)
	}
	base := len(out)
	s.work = append(s.work[:0], start)
	if len(s.xset) > 0 {
		clear(s.xset)
	}
	if len(s.qset) > 0 {
		clear(s.qset)
	}
	xmap, qmap := false, false
	for i := 0; i < len(s.work); i++ {
		m, alt, ok := lookup(s.work[i])
		if !ok || m == nil {
			continue
		}
		s.dests = m.Match(routingKey, headers, s.dests[:0])
		if len(s.dests) == 0 {
			if alt != "" {
				xmap = s.pushX(alt, xmap)
			}
			continue
		}
		for _, d := range s.dests {
			if d.Kind == binding.ToExchange {
				xmap = s.pushX(d.Name, xmap)
				continue
			}
			// queue: dedup against what this call appended
			if qmap {
				if _, dup := s.qset[d.Name]; dup {
					continue
				}
				s.qset[d.Name] = struct{}{}
			} else {
				if containsString(out[base:], d.Name) {
					continue
				}
				if len(out)-base >= linearLimit {
					if s.qset == nil {
						s.qset = make(map[string]struct{})
					}
					for _, q := range out[base:] {
						s.qset[q] = struct{}{}
					}
					s.qset[d.Name] = struct{}{}
					qmap = true
				}
			}
			out = append(out, d.Name)
		}
	}
	clear(s.dests) // drop references to names
	return out
}

// pushX queues exchange name unless already seen; returns whether the map
// index is in use.
func (s *RouteScratch) pushX(name string, useMap bool) bool {
	if useMap {
		if _, dup := s.xset[name]; dup {
			return true
		}
		s.xset[name] = struct{}{}
		s.work = append(s.work, name)
		return true
	}
	if containsString(s.work, name) {
		return false
	}
	s.work = append(s.work, name)
	if len(s.work) > linearLimit {
		if s.xset == nil {
			s.xset = make(map[string]struct{})
		}
		for _, x := range s.work {
			s.xset[x] = struct{}{}
		}
		return true
	}
	return false
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
