// Package gctune keeps Go's garbage collector from running many times a
// second while the live heap is small and the allocation rate is high, as
// it is when a broker moves large messages: with the default GOGC of 100,
// a 10 MB live heap is collected after every 10 MB allocated, 65 times a
// second at 650 MB/s of 64 KiB bodies, and the heap's freed pages go
// back to the OS and fault in again between collections.
//
// After each collection, the tuner sets GOGC so that the next one comes
// once the heap reaches MinHeap, or twice the live heap (the default)
// once that is larger: a floor under the heap goal, not a different
// policy for large heaps. The extra memory is at most MinHeap.
package gctune

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// Bounds of the GOGC the tuner sets.
const (
	minPercent = 100 // Go's default
	maxPercent = 1000
)

// Percent is the GOGC that puts the next collection at minHeap bytes of
// heap, given live bytes of live heap: at least minPercent, at most
// maxPercent.
func Percent(live, minHeap uint64) int {
	if live == 0 {
		return maxPercent
	}
	if live >= minHeap {
		return minPercent
	}
	p := (minHeap - live) * 100 / live
	return int(max(minPercent, min(maxPercent, p)))
}

// Tuner adjusts GOGC after each collection until Stop.
type Tuner struct {
	minHeap uint64
	stopped atomic.Bool
	percent atomic.Int64 // the GOGC set last
	sample  []metrics.Sample
}

// sentinel is garbage the tuner makes after each collection: its
// finalizer runs after the next one.
type sentinel struct{ t *Tuner }

// Start starts a tuner keeping the heap goal at least minHeap bytes. It
// returns nil, and leaves GOGC alone, if minHeap is 0 or the GOGC
// environment variable is set (an operator's choice wins).
func Start(minHeap uint64) *Tuner {
	if minHeap == 0 || os.Getenv("GOGC") != "" {
		return nil
	}
	t := &Tuner{minHeap: minHeap, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.percent.Store(minPercent)
	t.arm()
	return t
}

func (t *Tuner) arm() {
	runtime.SetFinalizer(&sentinel{t}, func(s *sentinel) {
		if s.t.stopped.Load() {
			return
		}
		s.t.adjust()
		s.t.arm()
	})
}

// adjust runs on the finalizer goroutine, one collection after another.
func (t *Tuner) adjust() {
	metrics.Read(t.sample)
	var live uint64
	if t.sample[0].Value.Kind() == metrics.KindUint64 {
		live = t.sample[0].Value.Uint64()
	}
	p := Percent(live, t.minHeap)
	if int64(p) != t.percent.Load() {
		debug.SetGCPercent(p)
		t.percent.Store(int64(p))
	}
}

// GCPercent is the GOGC the tuner set last.
func (t *Tuner) GCPercent() int { return int(t.percent.Load()) }

// Stop ends the tuning and puts GOGC back to its default.
func (t *Tuner) Stop() {
	if t == nil || t.stopped.Swap(true) {
		return
	}
	debug.SetGCPercent(minPercent)
}
