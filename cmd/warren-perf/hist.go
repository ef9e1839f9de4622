package main

import (
	"math"
	"sync"
	"time"
)

// hist is a latency histogram with buckets about 2% wide, from 1 µs to
// about 10 minutes: enough to read percentiles from without keeping every
// sample. Each worker records into its own, so recording only contends
// with the once-a-second report.
type hist struct {
	mu     sync.Mutex // guards the fields below
	counts [histBuckets]uint64
	n      uint64
	min    time.Duration
	max    time.Duration
}

const (
	histPerE    = 50 // buckets per factor of e: each is e^(1/50) ≈ 2% wide
	histBuckets = 20 * histPerE
)

func bucket(d time.Duration) int {
	us := float64(d) / float64(time.Microsecond)
	if us <= 1 {
		return 0
	}
	return min(int(math.Log(us)*histPerE), histBuckets-1)
}

// bucketValue is the upper edge of bucket i.
func bucketValue(i int) time.Duration {
	return time.Duration(math.Exp(float64(i+1)/histPerE) * float64(time.Microsecond))
}

func (h *hist) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.mu.Lock()
	h.counts[bucket(d)]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	h.max = max(h.max, d)
	h.n++
	h.mu.Unlock()
}

// takeInto adds h to total and interval, and clears h.
func (h *hist) takeInto(total, interval *snapshot) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 {
		return
	}
	total.add(h)
	interval.add(h)
	h.counts, h.n, h.min, h.max = [histBuckets]uint64{}, 0, 0, 0
}

// snapshot is a merged, unlocked histogram.
type snapshot struct {
	counts [histBuckets]uint64
	n      uint64
	min    time.Duration
	max    time.Duration
}

func (s *snapshot) add(h *hist) {
	for i, c := range h.counts {
		s.counts[i] += c
	}
	if s.n == 0 || h.min < s.min {
		s.min = h.min
	}
	s.max = max(s.max, h.max)
	s.n += h.n
}

// quantile returns the latency below which a fraction q of the samples
// are (to the bucket's precision).
func (s *snapshot) quantile(q float64) time.Duration {
	if s.n == 0 {
		return 0
	}
	want := uint64(math.Ceil(q * float64(s.n)))
	var seen uint64
	for i, c := range s.counts {
		seen += c
		if seen >= want {
			return min(max(bucketValue(i), s.min), s.max)
		}
	}
	return s.max
}

// latencySummary is a histogram's summary in the JSON report, in
// microseconds.
type latencySummary struct {
	Count uint64  `json:"count"`
	Min   float64 `json:"min_us"`
	P50   float64 `json:"p50_us"`
	P75   float64 `json:"p75_us"`
	P95   float64 `json:"p95_us"`
	P99   float64 `json:"p99_us"`
	Max   float64 `json:"max_us"`
}

func us(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Microsecond)*10) / 10 }

func (s *snapshot) summary() *latencySummary {
	if s.n == 0 {
		return nil
	}
	return &latencySummary{
		Count: s.n, Min: us(s.min), P50: us(s.quantile(0.5)), P75: us(s.quantile(0.75)),
		P95: us(s.quantile(0.95)), P99: us(s.quantile(0.99)), Max: us(s.max),
	}
}
