package server

import (
	"log/slog"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// The memory alarm, as RabbitMQ's vm_memory_high_watermark: while the
// broker's memory is at or above Options.MemoryHighWatermark, every
// connection that publishes is blocked, as for the free disk space alarm
// (alarm.go, waitAlarms), and connections that only consume or ack carry
// on, so that what holds the memory can drain.
//
// Queues do not need it: they page ready messages out past
// Options.QueueMemory (by default at most half the watermark, where
// RabbitMQ pages). It bounds what nothing else does: unacked messages
// of consumers with unlimited prefetch, and the returns, confirms and
// deliveries waiting for a client that does not read its socket.
//
// The memory weighed is the Go runtime's: the heap's spans in use (live
// objects and garbage not yet swept), stacks and the runtime's own, not
// the heap's free pages kept for reuse, nor the store's file, which bbolt
// maps and the kernel can drop. Garbage counts until a collection frees it,
// so a reading at or above the limit is followed by a collection (spaced by
// memGCEvery and memGCShare) and weighed again, and only such a reading raises
// the alarm: it stands for memory the broker holds. While it is raised
// the collections go on, so it clears once the consumers have taken what
// the broker held, even if nothing else would collect the heap.

// memBlockedReason is connection.blocked's reason, RabbitMQ's words.
const memBlockedReason = "low on memory"

const (
	// memCheckMin and memCheckMax bound the wait between two readings
	// (checkWait).
	memCheckMin = 50 * time.Millisecond
	memCheckMax = time.Second
	// memGCEvery is the least time between two collections the monitor
	// runs, and memGCShare times the last one's length if that is more: a
	// heap of many small messages takes long to collect, and the
	// consumers that would drain it need the CPU.
	memGCEvery = time.Second
	memGCShare = 4
)

// memAlarm watches the broker's memory and holds the alarm's state.
type memAlarm struct {
	limit int64 // 0: never raised
	probe func() int64
	// collect and giveBack are runtime.GC and debug.FreeOSMemory, or
	// nothing with a stand-in probe (Options.MemoryUsed).
	collect, giveBack func()
	log               *slog.Logger
	// lastGC is when check last ran a collection. check owns it, called
	// by New and then by the monitor's goroutine.
	lastGC time.Time
	gcTook time.Duration // how long that collection took; check's too

	used atomic.Int64 // the last reading

	alarmState
}

// newMemAlarm returns the alarm for opts, off if opts.MemoryHighWatermark
// is negative.
func newMemAlarm(opts Options) *memAlarm {
	a := &memAlarm{limit: max(opts.MemoryHighWatermark, 0), probe: opts.MemoryUsed, log: opts.Logger}
	a.collect, a.giveBack = runtime.GC, debug.FreeOSMemory
	if a.probe == nil {
		a.probe = newRuntimeMemory().read
	} else {
		// A stand-in's readings do not depend on the heap: collecting
		// the whole test process would only slow its tests.
		a.collect, a.giveBack = func() {}, func() {}
	}
	return a
}

// check reads the memory once, raises or clears the alarm, and returns
// how long to wait before the next reading.
func (a *memAlarm) check() time.Duration {
	used := a.probe()
	if a.limit == 0 {
		a.used.Store(used)
		return memCheckMax
	}
	// Raised only on a reading taken after a collection; cleared on any
	// reading below the limit, garbage and all.
	on := a.on.Load() && used >= a.limit
	if used >= a.limit && time.Since(a.lastGC) >= max(memGCEvery, memGCShare*a.gcTook) {
		start := time.Now()
		a.collect()
		a.lastGC = time.Now()
		a.gcTook = a.lastGC.Sub(start)
		used = a.probe()
		on = used >= a.limit
	}
	a.used.Store(used)
	switch raised, cleared := a.set(on); {
	case raised:
		a.log.Warn("memory alarm raised: publishing connections are blocked", "used_bytes", used, "limit_bytes", a.limit)
	case cleared:
		a.log.Info("memory alarm cleared", "used_bytes", used, "limit_bytes", a.limit)
		// What the broker freed goes back to the OS now, not over
		// minutes: the process's RSS falls to what the alarm weighs.
		a.giveBack()
		a.lastGC = time.Now()
	}
	return checkWait(used, a.limit, memCheckMin, memCheckMax)
}

// runtimeMemory reads the Go runtime's memory in use (see above) through
// runtime/metrics, which does not stop the world. Its samples are reused,
// so one goroutine reads at a time: the monitor's.
type runtimeMemory struct{ s []metrics.Sample }

func newRuntimeMemory() *runtimeMemory {
	return &runtimeMemory{s: []metrics.Sample{
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
	}}
}

func (m *runtimeMemory) read() int64 {
	metrics.Read(m.s)
	return int64(m.s[0].Value.Uint64() - m.s[1].Value.Uint64() - m.s[2].Value.Uint64())
}

// MemoryInfo is the memory alarm's view of the broker.
type MemoryInfo struct {
	Used  int64 // the Go runtime's memory in use at the alarm's last reading
	Limit int64 // Options.MemoryHighWatermark; 0 when the alarm is off
	Alarm bool  // publishers are blocked
}

// Memory returns the memory alarm's last reading and state.
func (s *Server) Memory() MemoryInfo {
	return MemoryInfo{Used: s.mem.used.Load(), Limit: s.mem.limit, Alarm: s.mem.on.Load()}
}
