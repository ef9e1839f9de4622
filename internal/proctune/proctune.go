// Package proctune runs the broker on one P (GOMAXPROCS=1) while one is
// enough for its load, and on all of them otherwise.
//
// A light, latency-bound load (one transactional producer, a publisher
// waiting for each confirm) keeps a few goroutines busy in turn: a reader
// readies a writer, which readies nothing. With more than one P, each
// such hand-off also wakes an idle P's thread, which spins, steals the
// writer and goes back to sleep; on a virtual machine a thread's sleep
// and wake-up cost far more than the hand-off itself. On one P the
// writer simply runs after the reader, on the same thread. Measured on
// a 2-vCPU VM with warren-perf: transactions of 10 went from 10.5k to
// 13.0k tx/s and the broker's CPU per transaction from 77 to 58 µs;
// confirms at 1 outstanding 2.9k → 3.3k/s. A load that keeps goroutines
// waiting for the one P (many connections at once, or more than one
// core's work) needs them all: 16-byte messages ran at 0.78x and RPC
// with 16 clients at 0.85x on one P.
//
// So the tuner watches how long runnable goroutines wait for a P (the
// runtime's /sched/latencies:seconds) and the process's CPU time. On one
// P, two intervals in a row with a mean wait above MaxWait, or with a
// core's worth of CPU, move it to all Ps. On all Ps, it tries one P again
// from time to time if the process used less than a core (each try that
// fails doubles the time to the next, up to MaxBackoff intervals), and
// goes back to one P at once when the broker is close to idle.
package proctune

import (
	"log/slog"
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"sync"
	"syscall"
	"time"
)

// The policy's settings.
const (
	// MaxWait is the mean time runnable goroutines may wait for the one
	// P: light loads measured 12–19 µs, the loads that ran slower on one
	// P 36 µs and more.
	MaxWait = 30 * time.Microsecond
	// minWaits is the fewest sampled waits a mean is taken over.
	minWaits = 20
	// streak is how many intervals in a row decide a move on one P: to
	// all Ps when over, back from a try when not.
	streak = 2
	// busyCores is the CPU, in cores, that means one P is saturated.
	busyCores = 0.95
	// tryCores is the most CPU, in cores, at which all Ps are given up
	// for a try of one.
	tryCores = 1.0
	// idleCores is the CPU, in cores, below which the broker goes to one
	// P without a try.
	idleCores = 0.05
	// firstBackoff and MaxBackoff bound the intervals between tries.
	firstBackoff = 100
	MaxBackoff   = 1200
)

// Sample is what the tuner saw over one interval.
type Sample struct {
	Cores    float64       // process CPU time over wall time
	Waits    uint64        // goroutine waits for a P sampled by the runtime
	MeanWait time.Duration // their mean
}

// over reports whether s, taken on one P, shows a core's work or
// goroutines queued for it.
func (s Sample) over() bool {
	return s.Cores >= busyCores || (s.Waits >= minWaits && s.MeanWait > MaxWait)
}

// Policy decides, one interval at a time, between one P and all of them.
// The zero value starts on one P.
type Policy struct {
	all     bool // on all Ps
	trying  bool // on one P to see whether it serves, after all Ps
	strikes int  // intervals in a row on one P that were over
	served  int  // intervals of the try that were not
	wait    int  // intervals until the next try, while on all Ps
	backoff int  // intervals between tries after a failed one
}

// Step takes the sample of the interval that just ended and returns
// whether the next runs on all Ps.
func (p *Policy) Step(s Sample) bool {
	if p.backoff == 0 {
		p.backoff = firstBackoff
	}
	if !p.all {
		// Two intervals in a row: a burst of connections opening, or the
		// first moments of a try, is not a load.
		if !s.over() {
			p.strikes = 0
			if p.trying {
				if p.served++; p.served >= streak {
					p.trying, p.backoff = false, firstBackoff
				}
			}
			return false
		}
		if p.strikes++; p.strikes < streak {
			return false
		}
		if p.trying {
			p.backoff = min(2*p.backoff, MaxBackoff)
		}
		p.all, p.trying, p.strikes, p.wait = true, false, 0, p.backoff
		return true
	}
	switch {
	case s.Cores < idleCores:
		p.all, p.backoff = false, firstBackoff
	case p.wait > 1:
		p.wait--
	case s.Cores < tryCores:
		p.all, p.trying, p.served = false, true, 0
	default:
		p.wait = p.backoff // too busy for one P: look again later
	}
	return p.all
}

// Tuner sets GOMAXPROCS every interval as its Policy says.
type Tuner struct {
	max      int
	interval time.Duration
	log      *slog.Logger
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
	sample   []metrics.Sample
	prev     []uint64 // the wait histogram's counts at the last sample
	prevCPU  time.Duration
	prevTime time.Time
}

// Start starts a tuner that looks at the load every interval. It returns
// nil, and leaves GOMAXPROCS alone, if interval is not positive, the
// GOMAXPROCS environment variable is set (an operator's choice wins) or
// there is only one P to begin with. The number of Ps it goes up to is
// GOMAXPROCS as the runtime set it (the CPUs the process may use). Each
// change is logged to log at debug level.
func Start(interval time.Duration, log *slog.Logger) *Tuner {
	if interval <= 0 || os.Getenv("GOMAXPROCS") != "" || runtime.GOMAXPROCS(0) < 2 {
		return nil
	}
	t := &Tuner{
		max:      runtime.GOMAXPROCS(0),
		interval: interval,
		log:      log,
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		sample:   []metrics.Sample{{Name: "/sched/latencies:seconds"}},
	}
	t.read()
	runtime.GOMAXPROCS(1)
	go t.run()
	return t
}

func (t *Tuner) run() {
	defer close(t.done)
	var p Policy
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
		}
		s := t.read()
		n := 1
		if p.Step(s) {
			n = t.max
		}
		if runtime.GOMAXPROCS(0) != n {
			runtime.GOMAXPROCS(n)
			if t.log != nil {
				t.log.Debug("GOMAXPROCS changed", "procs", n, "cpu_cores", math.Round(s.Cores*100)/100, "sampled_waits", s.Waits, "mean_wait", s.MeanWait)
			}
		}
	}
}

// read returns the sample since the last read.
func (t *Tuner) read() Sample {
	var s Sample
	now := time.Now()
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		if el := now.Sub(t.prevTime); !t.prevTime.IsZero() && el > 0 {
			s.Cores = float64(cpu-t.prevCPU) / float64(el)
		}
		t.prevCPU = cpu
	}
	t.prevTime = now
	metrics.Read(t.sample)
	if t.sample[0].Value.Kind() != metrics.KindFloat64Histogram {
		return s
	}
	h := t.sample[0].Value.Float64Histogram()
	s.Waits, s.MeanWait = histogramDelta(h, t.prev)
	t.prev = append(t.prev[:0], h.Counts...)
	return s
}

// histogramDelta returns the count and mean of what h gained since the
// counts prev (none if prev is empty or of another length). A bucket's
// values count as its midpoint, or its finite bound if the other is
// infinite.
func histogramDelta(h *metrics.Float64Histogram, prev []uint64) (uint64, time.Duration) {
	if len(prev) != len(h.Counts) {
		return 0, 0
	}
	var n uint64
	var sum float64
	for i, c := range h.Counts {
		d := c - prev[i]
		if d == 0 {
			continue
		}
		lo, hi := h.Buckets[i], h.Buckets[i+1]
		v := (lo + hi) / 2
		switch {
		case math.IsInf(lo, 0) && math.IsInf(hi, 0):
			v = 0
		case math.IsInf(lo, 0):
			v = hi
		case math.IsInf(hi, 0):
			v = lo
		}
		n += d
		sum += float64(d) * max(v, 0)
	}
	if n == 0 {
		return 0, 0
	}
	return n, time.Duration(sum / float64(n) * float64(time.Second))
}

// Stop ends the tuning and puts GOMAXPROCS back where it started.
func (t *Tuner) Stop() {
	if t == nil {
		return
	}
	t.once.Do(func() {
		close(t.stop)
		<-t.done
		runtime.GOMAXPROCS(t.max)
	})
}
