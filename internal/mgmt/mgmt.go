// Package mgmt serves Warren's management HTTP API, compatible with
// RabbitMQ's management plugin for the endpoints tools use, and the web UI.
package mgmt

import (
	"net/http"

	"github.com/warrenmq/warren/server"
)

// Options configure the management API.
type Options struct {
	// UI, if set, is served at / (the web UI).
	UI http.Handler
}

// Handler returns the management API for srv.
func Handler(srv *server.Server, opts Options) http.Handler {
	mux := http.NewServeMux()
	_ = srv
	if opts.UI != nil {
		mux.Handle("/", opts.UI)
	}
	return mux
}
