package server

import (
	"runtime"
	"testing"
	"time"
)

// The alarm reads the disk seldom when it is far from the limit, on
// either side, and often when it is near.
func TestDiskCheckWait(t *testing.T) {
	const limit = 50_000_000
	for _, c := range []struct {
		free int64
		want time.Duration
	}{
		{limit, diskCheckMin},
		{limit + 1<<20, diskCheckMin},
		{limit - 1<<20, diskCheckMin},
		{limit + 512<<20, 500 * time.Millisecond},
		{limit - 512<<20, 500 * time.Millisecond},
		{limit + 5<<30, 5 * time.Second},
		{limit + 9<<30, 9 * time.Second},
		{limit + 10<<30 - 1<<20, 10239 * time.Second / 1024},
		{limit + 11<<30, diskCheckMax},
		{1 << 62, diskCheckMax},
	} {
		if got := checkWait(c.free, limit, diskCheckMin, diskCheckMax); got != c.want {
			t.Errorf("checkWait(%d, %d) = %v, want %v", c.free, limit, got, c.want)
		}
	}
}

// The memory alarm's waits: often near the watermark, at most a second
// apart (RabbitMQ's monitor reads every second).
func TestMemCheckWait(t *testing.T) {
	const limit = 1 << 30
	for _, c := range []struct {
		used int64
		want time.Duration
	}{
		{limit, memCheckMin},
		{limit - 32<<20, memCheckMin},
		{limit + 32<<20, memCheckMin},
		{limit - 256<<20, 250 * time.Millisecond},
		{limit - 1000<<20, 1000 * time.Second / 1024},
		{0, memCheckMax},
		{1 << 62, memCheckMax},
	} {
		if got := checkWait(c.used, limit, memCheckMin, memCheckMax); got != c.want {
			t.Errorf("checkWait(%d, %d) = %v, want %v", c.used, limit, got, c.want)
		}
	}
}

// The memory the alarm weighs grows with what the heap holds, and falls
// again once a collection has freed it, though the runtime keeps the
// freed pages. Not parallel: it weighs the whole test process.
func TestRuntimeMemory(t *testing.T) {
	const size = 64 << 20
	m := newRuntimeMemory()
	runtime.GC()
	before := m.read()
	buf := make([]byte, size)
	held := m.read()
	runtime.KeepAlive(buf)
	runtime.GC()
	after := m.read()
	if held-before < size-size/16 || held-after < size-size/16 {
		t.Fatalf("read %d before a %d byte allocation, %d while it is held, %d after it is collected; want a rise and a fall of about its size", before, size, held, after)
	}
}

// The memory alarm is raised only on a reading taken after a collection
// (garbage is not memory the broker holds), and cleared on any reading
// below the watermark.
func TestMemAlarmCheck(t *testing.T) {
	const limit = 1 << 30
	var readings []int64 // what the probe shows next, in turn
	a := newMemAlarm(Options{MemoryHighWatermark: limit, Logger: DefaultOptions().Logger, MemoryUsed: func() int64 {
		if len(readings) == 0 {
			t.Fatal("the alarm read the memory more often than the test said")
		}
		r := readings[0]
		readings = readings[1:]
		return r
	}})
	step := func(want bool, r ...int64) {
		t.Helper()
		readings = r
		a.check()
		if len(readings) != 0 || a.on.Load() != want {
			t.Fatalf("after readings %v: %d unread, alarm %v; want all read and alarm %v", r, len(readings), a.on.Load(), want)
		}
	}
	step(false, limit+1, limit-1) // over, collected, under: garbage
	a.lastGC = time.Now().Add(time.Hour)
	step(false, limit+1) // over, no collection within memGCEvery: not raised
	a.lastGC = time.Time{}
	step(true, limit+1, limit) // over, collected, still over: raised
	a.lastGC = time.Now().Add(time.Hour)
	step(true, limit+1)  // over: stays raised
	step(false, limit-1) // under: cleared
	a.lastGC, a.gcTook = time.Now().Add(-2*time.Second), time.Second
	step(false, limit+1) // over, 2 s after a collection of 1 s: the next waits for 4 s
}

// Queues page out at half the memory alarm's watermark, as RabbitMQ's,
// unless told otherwise: a lower watermark lowers their default budget.
func TestQueueMemoryFollowsWatermark(t *testing.T) {
	def := DefaultQueueMemory()
	for _, c := range []struct {
		watermark, queueMemory, want int64
	}{
		{100 << 20, 0, 50 << 20},
		{100 << 20, 80 << 20, 80 << 20}, // set: kept
		{100 << 20, -1, -1},
		{4 * def, 0, def},
		{-1, 0, def}, // no alarm
	} {
		o := Options{MemoryHighWatermark: c.watermark, QueueMemory: c.queueMemory}.withDefaults()
		if o.QueueMemory != c.want {
			t.Errorf("watermark %d, queue memory %d: got %d, want %d", c.watermark, c.queueMemory, o.QueueMemory, c.want)
		}
	}
}
