package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/warrenmq/warren/internal/metrics"
	"github.com/warrenmq/warren/internal/mgmt"
	"github.com/warrenmq/warren/internal/webui"
	"github.com/warrenmq/warren/server"
)

// httpListeners are the broker's HTTP side: the management API and web UI,
// the Prometheus endpoint and pprof, each on its own address ("" for off).
type httpListeners struct {
	servers []*http.Server
	addrs   map[string]string // "http", "metrics", "pprof" -> bound address
	log     *slog.Logger
}

// startHTTP binds every configured listener before serving any, so a busy
// port stops the broker at start, as it does RabbitMQ.
func startHTTP(srv *server.Server, loopbackUsers []string, logger *slog.Logger, httpAddr, metricsAddr, pprofAddr string) (*httpListeners, error) {
	hl := &httpListeners{addrs: map[string]string{}, log: logger}
	type listener struct {
		name, addr string
		handler    func() http.Handler
	}
	all := []listener{
		{"http", httpAddr, func() http.Handler {
			return mgmt.Handler(srv, mgmt.Options{UI: webui.Handler(), LoopbackUsers: loopbackUsers})
		}},
		{"metrics", metricsAddr, func() http.Handler { return metrics.Handler(srv) }},
		{"pprof", pprofAddr, pprofHandler},
	}
	var lns []net.Listener
	for _, l := range all {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			for _, ln := range lns {
				ln.Close()
			}
			return nil, fmt.Errorf("--%s-addr: %w", l.name, err)
		}
		lns = append(lns, ln)
		hl.addrs[l.name] = ln.Addr().String()
		hs := &http.Server{Handler: l.handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
		hl.servers = append(hl.servers, hs)
	}
	for i, hs := range hl.servers {
		ln := lns[i]
		go func() {
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("http listener failed", "addr", ln.Addr().String(), "err", err)
			}
		}()
	}
	return hl, nil
}

// shutdown stops the HTTP listeners, waiting for requests in flight until
// ctx is done.
func (hl *httpListeners) shutdown(ctx context.Context) {
	for _, hs := range hl.servers {
		if err := hs.Shutdown(ctx); err != nil {
			hs.Close()
		}
	}
}

func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
