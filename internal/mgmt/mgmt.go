// Package mgmt serves Warren's management HTTP API, compatible with
// RabbitMQ's management plugin for the endpoints tools use (same paths,
// methods, status codes and JSON field names), and the web UI.
//
// Every /api/ request needs HTTP basic auth as a broker user; users that
// may only connect from loopback (guest) may only use the API from
// loopback, as in RabbitMQ.
package mgmt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/warrenmq/warren/internal/wire"
	"github.com/warrenmq/warren/server"
)

// Options configure the management API.
type Options struct {
	// UI, if set, is served at / (the web UI).
	UI http.Handler
	// LoopbackUsers may only use the API from a loopback address. Default:
	// guest, as in RabbitMQ.
	LoopbackUsers []string
}

// maxBody bounds a request body: definitions files are the largest.
const maxBody = 64 << 20

// api is the management API of one broker.
type api struct {
	srv      *server.Server
	opts     Options
	node     string
	started  time.Time
	rates    rateSampler
	aliveMu  sync.Mutex // one aliveness test at a time: they share a queue
	table    []route    // set up by routes, then read-only
	loopback []string
}

// Handler returns the management API (and the UI, if opts.UI is set)
// for srv.
func Handler(srv *server.Server, opts Options) http.Handler {
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	a := &api{srv: srv, opts: opts, node: "warren@" + host, started: time.Now(), loopback: opts.LoopbackUsers}
	if a.loopback == nil {
		a.loopback = []string{"guest"}
	}
	a.routes()
	return a
}

// route is one API endpoint: a method and a path pattern whose {name}
// segments are wildcards.
type route struct {
	method string
	segs   []string
	h      func(w http.ResponseWriter, r *http.Request) error
}

// handle registers an authenticated API endpoint. net/http's ServeMux
// cannot be used: it matches the unescaped path, and RabbitMQ's API puts
// names containing '/' (the default vhost "/" above all) in one segment as
// %2F.
func (a *api) handle(pattern string, h func(w http.ResponseWriter, r *http.Request) error) {
	method, path, _ := strings.Cut(pattern, " ")
	a.table = append(a.table, route{method: method, segs: strings.Split(strings.Trim(path, "/"), "/"), h: h})
}

// ServeHTTP routes /api/ requests through the table and the rest to the UI.
func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	escaped := r.URL.EscapedPath()
	if escaped != "/api" && !strings.HasPrefix(escaped, "/api/") {
		if a.opts.UI == nil {
			http.NotFound(w, r)
			return
		}
		a.opts.UI.ServeHTTP(w, r)
		return
	}
	if _, ok := a.authenticate(w, r); !ok {
		return
	}
	// A browser holding credentials for this API could be made to post
	// to it by another site (a form post needs no preflight). Browsers say
	// where such a request comes from; scripts (curl -d, which RabbitMQ
	// accepts whatever its Content-Type) send no Origin and are unaffected.
	if origin := r.Header.Get("Origin"); origin != "" && r.Method != http.MethodGet && r.Method != http.MethodHead {
		if u, err := url.Parse(origin); err != nil || u.Host != r.Host {
			writeError(w, &httpError{http.StatusForbidden, "forbidden", "cross-origin request refused"})
			return
		}
	}
	raw := strings.Split(strings.Trim(escaped, "/"), "/")
	segs := make([]string, len(raw))
	for i, s := range raw {
		u, err := url.PathUnescape(s)
		if err != nil {
			writeError(w, badRequest("bad path segment %q", s))
			return
		}
		segs[i] = u
	}
	pathMatched := false
	for _, rt := range a.table {
		if !rt.match(segs) {
			continue
		}
		pathMatched = true
		if rt.method != r.Method {
			continue
		}
		empty := false
		for i, s := range rt.segs {
			if strings.HasPrefix(s, "{") {
				r.SetPathValue(strings.Trim(s, "{}"), segs[i])
				empty = empty || segs[i] == ""
			}
		}
		if empty { // "/api/queues//q": no vhost (or name) named ""
			writeError(w, errNotFound)
			return
		}
		if err := rt.h(w, r); err != nil {
			writeError(w, err)
		}
		return
	}
	if pathMatched {
		writeError(w, &httpError{http.StatusMethodNotAllowed, "method_not_allowed", "Method Not Allowed"})
		return
	}
	writeError(w, errNotFound)
}

func (rt *route) match(segs []string) bool {
	if len(segs) != len(rt.segs) {
		return false
	}
	for i, s := range rt.segs {
		if !strings.HasPrefix(s, "{") && s != segs[i] {
			return false
		}
	}
	return true
}

func (a *api) routes() {
	a.handle("GET /api/overview", a.overview)
	a.handle("GET /api/nodes", a.nodes)
	a.handle("GET /api/nodes/{node}", a.nodeOne)
	a.handle("GET /api/vhosts", a.vhosts)
	a.handle("GET /api/vhosts/{vhost}", a.vhostOne)
	a.handle("GET /api/users", a.users)
	a.handle("GET /api/users/{user}", a.userOne)
	a.handle("GET /api/permissions", a.permissions)
	a.handle("GET /api/whoami", a.whoami)
	a.handle("GET /api/health/checks/alarms", a.healthAlarms("There are alarms in effect in the cluster"))
	a.handle("GET /api/health/checks/local-alarms", a.healthAlarms("There are alarms in effect on the node"))
	a.handle("GET /api/aliveness-test/{vhost}", a.aliveness)

	a.handle("GET /api/exchanges", a.exchanges)
	a.handle("GET /api/exchanges/{vhost}", a.exchanges)
	a.handle("GET /api/exchanges/{vhost}/{name}", a.exchangeGet)
	a.handle("PUT /api/exchanges/{vhost}/{name}", a.exchangePut)
	a.handle("DELETE /api/exchanges/{vhost}/{name}", a.exchangeDelete)
	a.handle("POST /api/exchanges/{vhost}/{name}/publish", a.exchangePublish)
	a.handle("GET /api/exchanges/{vhost}/{name}/bindings/source", a.exchangeBindings(true))
	a.handle("GET /api/exchanges/{vhost}/{name}/bindings/destination", a.exchangeBindings(false))

	a.handle("GET /api/queues", a.queues)
	a.handle("GET /api/queues/{vhost}", a.queues)
	a.handle("GET /api/queues/{vhost}/{name}", a.queueGet)
	a.handle("PUT /api/queues/{vhost}/{name}", a.queuePut)
	a.handle("DELETE /api/queues/{vhost}/{name}", a.queueDelete)
	a.handle("DELETE /api/queues/{vhost}/{name}/contents", a.queuePurge)
	a.handle("POST /api/queues/{vhost}/{name}/get", a.queueMessages)
	a.handle("GET /api/queues/{vhost}/{name}/bindings", a.queueBindings)

	a.handle("GET /api/bindings", a.bindings)
	a.handle("GET /api/bindings/{vhost}", a.bindings)
	a.handle("GET /api/bindings/{vhost}/e/{source}/{dtype}/{dest}", a.bindingsBetween)
	a.handle("POST /api/bindings/{vhost}/e/{source}/{dtype}/{dest}", a.bindingCreate)
	a.handle("GET /api/bindings/{vhost}/e/{source}/{dtype}/{dest}/{props}", a.bindingGet)
	a.handle("DELETE /api/bindings/{vhost}/e/{source}/{dtype}/{dest}/{props}", a.bindingDelete)

	a.handle("GET /api/connections", a.connections)
	a.handle("GET /api/connections/{name}", a.connectionGet)
	a.handle("DELETE /api/connections/{name}", a.connectionDelete)
	a.handle("GET /api/connections/{name}/channels", a.connectionChannels)
	a.handle("GET /api/vhosts/{vhost}/connections", a.connections)
	a.handle("GET /api/channels", a.channels)
	a.handle("GET /api/channels/{name}", a.channelGet)
	a.handle("GET /api/vhosts/{vhost}/channels", a.channels)
	a.handle("GET /api/consumers", a.consumers)
	a.handle("GET /api/consumers/{vhost}", a.consumers)

	a.handle("GET /api/definitions", a.definitionsGet)
	a.handle("GET /api/definitions/{vhost}", a.definitionsGet)
	a.handle("POST /api/definitions", a.definitionsPost)
	a.handle("POST /api/definitions/{vhost}", a.definitionsPost)
}

// authenticate checks HTTP basic auth against the broker's users.
func (a *api) authenticate(w http.ResponseWriter, r *http.Request) (string, bool) {
	user, pass, ok := r.BasicAuth()
	if ok && a.srv.Authenticate(user, pass) {
		if !slices.Contains(a.loopback, user) || isLoopback(r.RemoteAddr) {
			return user, true
		}
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="RabbitMQ Management"`)
	_ = writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "not_authorized", "reason": "Login failed"})
	return "", false
}

func isLoopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// httpError is an error with its status and RabbitMQ's error/reason pair.
type httpError struct {
	status int
	kind   string // RabbitMQ's "error" field
	reason string
}

func (e *httpError) Error() string { return e.reason }

var errNotFound = &httpError{http.StatusNotFound, "Object Not Found", "Not Found"}

// notFound is RabbitMQ's 404 for a missing object named in a request
// body or an action, rather than in the resource path.
func notFound(format string, args ...any) error {
	return &httpError{http.StatusNotFound, "not_found", fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, "bad_request", fmt.Sprintf(format, args...)}
}

// writeError answers err as RabbitMQ's management API would.
func writeError(w http.ResponseWriter, err error) {
	var he *httpError
	var se *server.Error
	switch {
	case errors.As(err, &he):
	case errors.Is(err, server.ErrNotFound):
		he = errNotFound
	case errors.As(err, &se):
		// RabbitMQ's API answers a refused AMQP operation with 400 (406,
		// 403, 405 alike) or 404, and the AMQP reply text as the reason.
		status := http.StatusBadRequest
		if se.Code == wire.NotFound {
			status = http.StatusNotFound
		}
		he = &httpError{status, "bad_request", withoutCodeName(se.Text)}
	default:
		he = &httpError{http.StatusInternalServerError, "internal_error", err.Error()}
	}
	if writeJSON(w, he.status, map[string]string{"error": he.kind, "reason": he.reason}) != nil {
		http.Error(w, he.reason, he.status)
	}
}

// withoutCodeName drops the "PRECONDITION_FAILED - " an AMQP client would
// see before a reply text; RabbitMQ's API leaves it out.
func withoutCodeName(text string) string {
	name, rest, ok := strings.Cut(text, " - ")
	if !ok || strings.Trim(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_") != "" {
		return text
	}
	return rest
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	data, err := encodeJSON(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(status)
	w.Write(data)
	return nil
}

// encodeJSON encodes v whole before anything is written, so a value that
// cannot be encoded is a 500, not a 200 with half a body.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode the answer: %w", err)
	}
	return buf.Bytes(), nil
}

func ok(w http.ResponseWriter, v any) error {
	return writeJSON(w, http.StatusOK, v)
}

func noContent(w http.ResponseWriter) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// decodeBody reads a JSON request body into v; an empty body leaves v
// alone.
func decodeBody(r *http.Request, v any) error {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return badRequest("could not read the request body: %v", err)
	}
	if len(data) > maxBody {
		return &httpError{http.StatusRequestEntityTooLarge, "bad_request", "request body too large"}
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return badRequest("could not parse JSON document: %v", err)
	}
	return nil
}

// vhost checks the {vhost} path value, if any, names Warren's vhost.
func (a *api) vhost(r *http.Request) error {
	if v := r.PathValue("vhost"); v != "" && v != a.srv.Vhost() {
		return errNotFound
	}
	return nil
}

// queryBool reads a boolean query parameter such as if-unused=true.
func queryBool(r *http.Request, name string) bool {
	return r.URL.Query().Get(name) == "true"
}
