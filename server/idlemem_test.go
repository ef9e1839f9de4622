package server_test

import (
	"bytes"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/warrenmq/warren/internal/raceflag"
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
	var readers, writers int
	if !poll(time.Minute, func() bool {
		readers, writers = connGoroutines()
		return writers == 0 && readers == n
	}) {
		t.Fatalf("%d idle connections keep %d readers and %d writers after a minute, want %d and 0", n, readers, writers, n)
	}
	after := goroutinesAndStacks()
	perConn := (after.stacks - before.stacks) / n
	t.Logf("%d idle connections: %d goroutines, %d bytes of stack each", n, after.goroutines-before.goroutines, perConn)
	// The reader kept the 8 KiB stack the handshake grew, and the writer
	// 4 KiB more: 12 KiB in all. Under -race, stack guards are larger and
	// the reader needs 8 KiB anyway.
	if perConn >= 8<<10 && !raceflag.Enabled {
		t.Errorf("an idle connection holds %d bytes of goroutine stack, want under 8 KiB", perConn)
	}
	for _, c := range clients {
		c.nc.Close()
	}
}

// connGoroutines counts the goroutines running a connection's read loop
// and an outbox's writer.
func connGoroutines() (readers, writers int) {
	var b bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&b, 2) // one block per goroutine
	for _, g := range strings.Split(b.String(), "\n\n") {
		if strings.Contains(g, "server.(*conn).readLoop") {
			readers++
		}
		if strings.Contains(g, "server.(*outbox).run") {
			writers++
		}
	}
	return readers, writers
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
