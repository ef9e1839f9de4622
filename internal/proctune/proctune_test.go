package proctune

import (
	"io"
	"log/slog"
	"math"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var (
	light  = Sample{Cores: 0.7, Waits: 1000, MeanWait: 15 * time.Microsecond}  // a transactional producer
	queued = Sample{Cores: 0.75, Waits: 1000, MeanWait: 70 * time.Microsecond} // 16 RPC clients
	busy   = Sample{Cores: 1.4, Waits: 10, MeanWait: 5 * time.Millisecond}     // more than a core's work
	idle   = Sample{Cores: 0.01}
)

func TestPolicyStaysOnOnePWhileItServes(t *testing.T) {
	var p Policy
	for i := range 1000 {
		if p.Step(light) {
			t.Fatalf("step %d: moved to all Ps under a light load", i)
		}
	}
	if p.Step(idle) {
		t.Fatal("moved to all Ps when idle")
	}
}

func TestPolicyMovesToAllPsAfterTwoIntervalsOver(t *testing.T) {
	for name, s := range map[string]Sample{
		"waits":     queued,
		"a core":    {Cores: 0.97},
		"two cores": busy,
	} {
		var p Policy
		if p.Step(s) {
			t.Errorf("%s: moved to all Ps after one interval", name)
		}
		if !p.Step(s) {
			t.Errorf("%s: stayed on one P after two intervals", name)
		}
	}
	// One interval over now and then (connections opening, say) is not
	// a load.
	var p Policy
	for i := range 100 {
		s := light
		if i%2 == 0 {
			s = queued
		}
		if p.Step(s) {
			t.Fatalf("step %d: moved to all Ps on waits every other interval", i)
		}
	}
	// Too few waits to go by.
	p = Policy{}
	few := Sample{Cores: 0.1, Waits: minWaits - 1, MeanWait: time.Millisecond}
	if p.Step(few) || p.Step(few) {
		t.Error("moved to all Ps on a handful of waits")
	}
}

// run steps p through n intervals of s and returns the steps at which a
// try of one P began, and the longest run of steps on one P.
func run(p *Policy, n int, s Sample) (tries []int, longestOnOne int) {
	all := p.all
	one := 0
	for i := range n {
		now := p.Step(s)
		if all && !now {
			tries = append(tries, i)
		}
		if now {
			one = 0
		} else {
			one++
			longestOnOne = max(longestOnOne, one)
		}
		all = now
	}
	return tries, longestOnOne
}

func TestPolicyTriesOnePAgainAndBacksOff(t *testing.T) {
	var p Policy
	p.Step(queued)
	if !p.Step(queued) {
		t.Fatal("stayed on one P")
	}
	// A load that needs all Ps: each try of one P fails after two
	// intervals, and the next comes twice as late, up to MaxBackoff.
	tries, longest := run(&p, 10*MaxBackoff, queued)
	if len(tries) < 5 {
		t.Fatalf("tries at %v in %d intervals, want 5 or more", tries, 10*MaxBackoff)
	}
	if longest != 2 {
		t.Fatalf("a failed try lasted %d intervals, want 2", longest)
	}
	for i := 2; i < len(tries); i++ {
		gap, last := tries[i]-tries[i-1], tries[i-1]-tries[i-2]
		if gap < last || gap > MaxBackoff+2 {
			t.Fatalf("tries at %v: gaps must grow, up to %d", tries, MaxBackoff+2)
		}
	}
	if last := tries[len(tries)-1] - tries[len(tries)-2]; last < MaxBackoff {
		t.Fatalf("tries at %v: the gap never reached %d", tries, MaxBackoff)
	}
	// When the load becomes light, the next try succeeds and it stays on
	// one P.
	tries, longest = run(&p, MaxBackoff+10, light)
	if len(tries) != 1 || longest < MaxBackoff+10-tries[0] {
		t.Fatalf("light load: tries at %v, longest on one P %d", tries, longest)
	}
	// The backoff has started over: under a heavier load again, the next
	// try comes after firstBackoff intervals.
	tries, _ = run(&p, 2*firstBackoff, queued)
	if len(tries) != 1 {
		t.Fatalf("tries at %v in %d intervals after a successful try, want 1", tries, 2*firstBackoff)
	}
}

func TestPolicyDoesNotTryOnePWhenBusy(t *testing.T) {
	var p Policy
	p.Step(busy)
	if !p.Step(busy) {
		t.Fatal("stayed on one P")
	}
	if tries, _ := run(&p, 10*MaxBackoff, busy); len(tries) != 0 {
		t.Fatalf("tried one P at %v under more than a core's work", tries)
	}
	// Close to idle: one P at once.
	if p.Step(idle) {
		t.Fatal("stayed on all Ps when idle")
	}
}

func TestHistogramDelta(t *testing.T) {
	h := &metrics.Float64Histogram{
		Buckets: []float64{math.Inf(-1), 0, 10e-6, 20e-6, math.Inf(1)},
		Counts:  []uint64{0, 4, 2, 1},
	}
	if n, mean := histogramDelta(h, nil); n != 0 || mean != 0 {
		t.Fatalf("with no earlier counts: %d waits, mean %v; want none", n, mean)
	}
	prev := []uint64{0, 2, 2, 0}
	// New: 2 in [0,10µs) at 5µs, 1 in [20µs,+Inf) at 20µs: mean 10µs.
	n, mean := histogramDelta(h, prev)
	if n != 3 || mean < 9*time.Microsecond || mean > 11*time.Microsecond {
		t.Fatalf("got %d waits, mean %v; want 3, 10µs", n, mean)
	}
}

// TestTunerFollowsTheLoad runs the tuner for real: it starts on one P,
// moves to all of them while goroutines queue for it, comes back to one
// when the process is idle, and puts GOMAXPROCS back when stopped.
func TestTunerFollowsTheLoad(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("needs GOMAXPROCS of 2 or more")
	}
	t.Setenv("GOMAXPROCS", "") // Start leaves an operator's setting alone
	max := runtime.GOMAXPROCS(0)
	tu := Start(20*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if tu == nil {
		t.Fatal("Start returned nil")
	}
	defer tu.Stop()
	if got := runtime.GOMAXPROCS(0); got != 1 {
		t.Fatalf("GOMAXPROCS %d after Start, want 1", got)
	}
	waitFor := func(what string, want int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second) // a bound against hanging, not a timing check
		for runtime.GOMAXPROCS(0) != want {
			if time.Now().After(deadline) {
				t.Fatalf("GOMAXPROCS stayed %d, want %d (%s)", runtime.GOMAXPROCS(0), want, what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	// 8 goroutines that compute and yield: each waits for the others.
	var stop atomic.Bool
	var wg sync.WaitGroup
	var sink atomic.Uint64
	for range 8 {
		wg.Go(func() {
			x := uint64(1)
			for !stop.Load() {
				for range 2000 {
					x = x*6364136223846793005 + 1442695040888963407
				}
				runtime.Gosched()
			}
			sink.Add(x)
		})
	}
	waitFor("under load", max)
	stop.Store(true)
	wg.Wait()
	waitFor("idle", 1)

	tu.Stop()
	if got := runtime.GOMAXPROCS(0); got != max {
		t.Fatalf("GOMAXPROCS %d after Stop, want %d", got, max)
	}
}

func TestStartLeavesAnOperatorsSettingAlone(t *testing.T) {
	t.Setenv("GOMAXPROCS", "2")
	if tu := Start(time.Second, nil); tu != nil {
		tu.Stop()
		t.Fatal("Start tuned with GOMAXPROCS set")
	}
	if tu := Start(0, nil); tu != nil {
		tu.Stop()
		t.Fatal("Start tuned with no interval")
	}
}
