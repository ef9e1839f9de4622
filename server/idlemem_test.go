package server_test

import (
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/warrenmq/warren/internal/wire"
)

// TestIdleConnectionStacks: an open connection with no traffic keeps one
// goroutine (its reader) with a small stack, so that 10,000 of them fit in
// the 300 MB that warren-perf's idle-connection scenario allows. The
// writer goroutine of each exits once the connection is idle, and the
// reader does not keep the stack the handshake grew.
func TestIdleConnectionStacks(t *testing.T) {
	b := start(t)
	needWarren(t, b)
	const n = 500
	before := goroutinesAndStacks()
	clients := make([]*rawClient, n)
	for i := range clients {
		c := dialRaw(t, b.Addr)
		c.logf = nil
		advance(t, c, stageTuning)
		c.send(t, 0, &wire.ConnectionTuneOk{ChannelMax: c.tune.ChannelMax, FrameMax: c.tune.FrameMax, Heartbeat: 60})
		open(t, c)
		clients[i] = c
	}
	// Each connection's writer lingers a second after its last write.
	var after sample
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		after = goroutinesAndStacks()
		if after.goroutines-before.goroutines <= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d idle connections keep %d goroutines after a minute, want one each", n, after.goroutines-before.goroutines)
		}
	}
	perConn := (after.stacks - before.stacks) / n
	t.Logf("%d idle connections: %d goroutines, %d bytes of stack each", n, after.goroutines-before.goroutines, perConn)
	// The reader kept the 8 KiB stack the handshake grew, and the writer
	// 4 KiB more: 12 KiB in all. Under -race, stack guards are larger and
	// the reader needs 8 KiB anyway.
	if perConn >= 8<<10 && !raceEnabled {
		t.Errorf("an idle connection holds %d bytes of goroutine stack, want under 8 KiB", perConn)
	}
	for _, c := range clients {
		c.nc.Close()
	}
}

type sample struct {
	goroutines int
	stacks     int64
}

// goroutinesAndStacks counts the process's goroutines and the bytes of
// their stacks, after a GC has freed unused stack memory.
func goroutinesAndStacks() sample {
	runtime.GC()
	m := []metrics.Sample{{Name: "/sched/goroutines:goroutines"}, {Name: "/memory/classes/heap/stacks:bytes"}}
	metrics.Read(m)
	return sample{goroutines: int(m[0].Value.Uint64()), stacks: int64(m[1].Value.Uint64())}
}
