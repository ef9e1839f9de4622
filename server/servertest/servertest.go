// Package servertest starts a Warren broker for tests, like net/http's
// httptest: on 127.0.0.1 at a free port, with a temporary data directory,
// shut down when the test ends.
package servertest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/warrenmq/warren/server"
)

// Broker is a running test broker.
type Broker struct {
	Server *server.Server
	// URL is the amqp:// URL for guest/guest on the broker.
	URL string
	// Addr is host:port of the AMQP listener.
	Addr string
}

// Start runs a broker for the rest of the test. modify, if given, may change
// the options before the broker starts.
func Start(tb testing.TB, modify ...func(*server.Options)) *Broker {
	tb.Helper()
	opts := server.DefaultOptions()
	opts.AMQPAddr = "127.0.0.1:0"
	opts.DataDir = tb.TempDir()
	opts.Logger = slog.New(slog.DiscardHandler)
	for _, m := range modify {
		m(&opts)
	}
	srv, err := server.New(opts)
	if err != nil {
		tb.Fatalf("servertest: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			tb.Errorf("servertest: shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, server.ErrServerClosed) {
			tb.Errorf("servertest: Serve returned %v", err)
		}
	})
	addr := srv.Addr().String()
	return &Broker{Server: srv, Addr: addr, URL: fmt.Sprintf("amqp://guest:guest@%s/", addr)}
}
