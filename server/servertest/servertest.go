// Package servertest starts a Warren broker for tests, like net/http's
// httptest: on 127.0.0.1 at a free port, with a temporary data directory,
// shut down when the test ends.
package servertest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/warrenmq/warren/internal/store"
	"github.com/warrenmq/warren/server"
)

// Broker is a running test broker.
type Broker struct {
	Server *server.Server
	// URL is the amqp:// URL for guest/guest on the broker.
	URL string
	// Addr is host:port of the AMQP listener.
	Addr string
	// DataDir is the broker's data directory: start another broker on it
	// (after Stop) to test what survives a restart.
	DataDir string

	tb       testing.TB
	served   chan error
	stopOnce sync.Once
}

// Start runs a broker for the rest of the test. modify, if given, may change
// the options before the broker starts.
func Start(tb testing.TB, modify ...func(*server.Options)) *Broker {
	tb.Helper()
	opts := server.DefaultOptions()
	opts.AMQPAddr = "127.0.0.1:0"
	opts.DataDir = tb.TempDir()
	opts.Logger = slog.New(slog.DiscardHandler)
	// The free disk space alarm is off: a test is not to block its
	// publishers on a build machine short of disk. Tests of the alarm set
	// DiskFreeLimit (and DiskFree).
	opts.DiskFreeLimit = -1
	// So is the memory alarm, which weighs the whole test process's
	// memory. Tests of the alarm set MemoryHighWatermark (and MemoryUsed).
	opts.MemoryHighWatermark = -1
	for _, m := range modify {
		m(&opts)
	}
	srv, err := server.New(opts)
	if err != nil {
		tb.Fatalf("servertest: %v", err)
	}
	b := &Broker{Server: srv, DataDir: opts.DataDir, tb: tb, served: make(chan error, 1)}
	go func() { b.served <- srv.Serve() }()
	tb.Cleanup(b.Stop)
	b.Addr = srv.Addr().String()
	b.URL = fmt.Sprintf("amqp://guest:guest@%s/", b.Addr)
	return b
}

// Stop shuts the broker down cleanly, as SIGTERM does: clients get 320 and
// the store is committed and closed, then checked (bbolt's consistency
// check and Warren's invariants). It runs at the end of the test anyway.
func (b *Broker) Stop() {
	b.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Server.Shutdown(ctx); err != nil {
			b.tb.Errorf("servertest: shutdown: %v", err)
		}
		if err := <-b.served; !errors.Is(err, server.ErrServerClosed) {
			b.tb.Errorf("servertest: Serve returned %v", err)
		}
		// Every test leaves a store that passes bbolt's check and
		// Warren's own.
		if err := store.CheckDir(b.DataDir); err != nil {
			b.tb.Errorf("servertest: store check after shutdown: %v", err)
		}
	})
}
