package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/internal/mgmt"
	"github.com/warrenmq/warren/server/servertest"
)

// The live tests run warrenctl against Warren's management API on a test
// broker. With WARRENCTL_TEST_URL set (e.g. http://localhost:15672) they run
// against that API instead, such as a real RabbitMQ's, with AMQP traffic
// sent to WARRENCTL_TEST_AMQP_URL (default: the API's host and the amqp
// listener port from /api/overview). They use only the vhost "/" and
// uniquely named objects, and delete what they declare.

// env is one broker under test.
type env struct {
	t       *testing.T
	url     string // management API
	amqpURL string
	prefix  string // for object names
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, prefix: fmt.Sprintf("warrenctl-test-%08x-", rand.Uint32())}
	if u := os.Getenv("WARRENCTL_TEST_URL"); u != "" {
		e.url = u
		e.amqpURL = os.Getenv("WARRENCTL_TEST_AMQP_URL")
		if e.amqpURL == "" {
			e.amqpURL = amqpURLFromOverview(t, u)
		}
		return e
	}
	b := servertest.Start(t)
	hs := httptest.NewServer(mgmt.Handler(b.Server, mgmt.Options{}))
	t.Cleanup(hs.Close)
	e.url, e.amqpURL = hs.URL, b.URL
	return e
}

// amqpURLFromOverview finds the AMQP port of the broker behind the
// management API at apiURL.
func amqpURLFromOverview(t *testing.T, apiURL string) string {
	t.Helper()
	var ov struct {
		Listeners []struct {
			Protocol string `json:"protocol"`
			Port     int    `json:"port"`
		} `json:"listeners"`
	}
	req, _ := http.NewRequest(http.MethodGet, strings.TrimSuffix(apiURL, "/")+"/api/overview", nil)
	req.SetBasicAuth("guest", "guest")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("overview: %v", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&ov); err != nil {
		t.Fatalf("overview: %v", err)
	}
	u, err := url.Parse(apiURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ov.Listeners {
		if l.Protocol == "amqp" {
			return fmt.Sprintf("amqp://guest:guest@%s:%d/", u.Hostname(), l.Port)
		}
	}
	t.Fatalf("no amqp listener in %s/api/overview; set WARRENCTL_TEST_AMQP_URL", apiURL)
	return ""
}

// name returns a unique object name.
func (e *env) name(s string) string { return e.prefix + s }

// run runs warrenctl with the broker's URL and guest credentials.
func (e *env) run(stdin string, args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	all := append([]string{"--url", e.url, "--user", "guest", "--password", "guest"}, args...)
	var out, errOut bytes.Buffer
	code = run(all, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), code
}

// ok runs warrenctl and fails the test unless it exits 0.
func (e *env) ok(args ...string) string {
	e.t.Helper()
	out, errOut, code := e.run("", args...)
	if code != 0 {
		e.t.Fatalf("warrenctl %q: exit %d, stderr %q", args, code, errOut)
	}
	return out
}

// rows runs a list command with --json and returns its rows.
func (e *env) rows(args ...string) []map[string]any {
	e.t.Helper()
	out := e.ok(append(args, "--json")...)
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		e.t.Fatalf("warrenctl %q --json: %v in %q", args, err, out)
	}
	return rows
}

// row returns the row whose column col is val, or nil.
func row(rows []map[string]any, col string, val any) map[string]any {
	for _, r := range rows {
		if r[col] == val {
			return r
		}
	}
	return nil
}

// eventually polls cond until it holds. Management stats can lag the broker
// (RabbitMQ collects them every 5s), so the limit is generous; it is a
// deadline for giving up, not an assertion about time.
func (e *env) eventually(what string, cond func() (bool, string)) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("gave up waiting for %s; last: %s", what, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// dial opens an AMQP connection named connName (client property
// connection_name), closed when the test ends.
func (e *env) dial(connName string) *amqp.Connection {
	e.t.Helper()
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(connName)
	conn, err := amqp.DialConfig(e.amqpURL, amqp.Config{Properties: props})
	if err != nil {
		e.t.Fatalf("dial %s: %v", e.amqpURL, err)
	}
	e.t.Cleanup(func() { conn.Close() })
	return conn
}

func (e *env) channel(conn *amqp.Connection) *amqp.Channel {
	e.t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		e.t.Fatalf("channel: %v", err)
	}
	return ch
}

// declareQueue declares a queue over AMQP and deletes it when the test ends.
func (e *env) declareQueue(ch *amqp.Channel, name string) {
	e.t.Helper()
	if _, err := ch.QueueDeclare(name, false, false, false, false, nil); err != nil {
		e.t.Fatalf("queue.declare %q: %v", name, err)
	}
	e.cleanupQueue(name)
}

func (e *env) cleanupQueue(name string) {
	e.t.Cleanup(func() { e.run("", "delete_queue", name) })
}

func (e *env) cleanupExchange(name string) {
	e.t.Cleanup(func() { e.run("", "delete_exchange", name) })
}

func publish(t *testing.T, ch *amqp.Channel, exchange, key string, bodies ...string) {
	t.Helper()
	for _, b := range bodies {
		if err := ch.Publish(exchange, key, false, false, amqp.Publishing{Body: []byte(b)}); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
}

// queueDepth reads a queue's ready count over AMQP, which (unlike the
// management stats) is exact at once. It fails if the queue is missing.
func (e *env) queueDepth(conn *amqp.Connection, name string) int {
	e.t.Helper()
	ch := e.channel(conn)
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(name, false, false, false, false, nil)
	if err != nil {
		e.t.Fatalf("queue.declare passive %q: %v", name, err)
	}
	return q.Messages
}

// queueExists reports whether a queue exists, by a passive declare.
func (e *env) queueExists(conn *amqp.Connection, name string) bool {
	e.t.Helper()
	ch := e.channel(conn)
	defer ch.Close()
	_, err := ch.QueueDeclarePassive(name, false, false, false, false, nil)
	var ae *amqp.Error
	if errors.As(err, &ae) && ae.Code == amqp.NotFound {
		return false
	}
	if err != nil {
		e.t.Fatalf("queue.declare passive %q: %v", name, err)
	}
	return true
}

func num(v any) string { return fmt.Sprint(v) }

func TestListQueuesAndPurge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	conn := e.dial(e.name("conn"))
	ch := e.channel(conn)
	q := e.name("queue")
	e.declareQueue(ch, q)
	publish(t, ch, "", q, "one", "two", "three")

	e.eventually("list_queues to show 3 messages", func() (bool, string) {
		r := row(e.rows("list_queues", "name", "messages", "consumers"), "name", q)
		return r != nil && num(r["messages"]) == "3" && num(r["consumers"]) == "0", fmt.Sprint(r)
	})

	// The table: a header of the columns, then a row for the queue.
	out := e.ok("list_queues", "name", "messages", "messages_ready", "durable", "arguments")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != "name messages messages_ready durable arguments" {
		t.Errorf("header %q", lines[0])
	}
	found := false
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) > 0 && f[0] == q {
			found = true
			if want := []string{q, "3", "3", "false", "{}"}; strings.Join(f, " ") != strings.Join(want, " ") {
				t.Errorf("row %q, want fields %q", l, want)
			}
		}
	}
	if !found {
		t.Errorf("no row for %s in\n%s", q, out)
	}

	e.ok("purge_queue", q)
	if n := e.queueDepth(conn, q); n != 0 {
		t.Errorf("after purge_queue the queue has %d messages", n)
	}
	e.eventually("list_queues to show 0 messages", func() (bool, string) {
		r := row(e.rows("list_queues"), "name", q)
		return r != nil && num(r["messages"]) == "0", fmt.Sprint(r)
	})
}

func TestDeclarePublishGet(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	x := e.name("topic")
	q := e.name("a/b c+d") // needs escaping in the URL path
	e.cleanupExchange(x)
	e.cleanupQueue(q)

	e.ok("declare_exchange", x, "topic")
	e.ok("declare_queue", q, "--arguments", `{"x-max-length": 10}`)
	e.ok("declare_binding", x, q, "--routing-key", "a.*")

	if r := row(e.rows("list_exchanges", "name", "type", "durable", "internal"), "name", x); r == nil ||
		r["type"] != "topic" || r["durable"] != false || r["internal"] != false {
		t.Errorf("list_exchanges row for %s: %v", x, r)
	}
	r := row(e.rows("list_queues", "name", "durable", "auto_delete", "arguments"), "name", q)
	if r == nil || r["durable"] != false || r["auto_delete"] != false || fmt.Sprint(r["arguments"]) != "map[x-max-length:10]" {
		t.Errorf("list_queues row for %s: %v", q, r)
	}
	b := row(e.rows("list_bindings"), "source_name", x)
	if b == nil || b["source_kind"] != "exchange" || b["destination_name"] != q ||
		b["destination_kind"] != "queue" || b["routing_key"] != "a.*" || fmt.Sprint(b["arguments"]) != "map[]" {
		t.Errorf("list_bindings row for %s: %v", x, b)
	}

	if out := e.ok("publish", x, "a.b", "--payload", "hello", "--properties", `{"headers":{"h":"v"}}`); out != "routed\ntrue\n" {
		t.Errorf("publish matching the binding printed %q", out)
	}
	if out := e.ok("publish", x, "b.b", "--payload", "lost", "--json"); strings.TrimSpace(out) != `{"routed": false}` {
		t.Errorf("publish matching nothing printed %q", out)
	}
	// The payload from stdin, to the default exchange.
	out, errOut, code := e.run("second", "publish", "", q)
	if code != 0 || out != "routed\ntrue\n" {
		t.Errorf("publish from stdin: exit %d, out %q, stderr %q", code, out, errOut)
	}

	conn := e.dial(e.name("checker"))
	if n := e.queueDepth(conn, q); n != 2 {
		t.Fatalf("queue has %d messages after publishing 2", n)
	}

	// get puts the messages back by default...
	msgs := e.rows("get", q, "--count", "5", "payload", "routing_key", "exchange", "properties")
	if len(msgs) != 2 || msgs[0]["payload"] != "hello" || msgs[0]["routing_key"] != "a.b" || msgs[0]["exchange"] != x ||
		fmt.Sprint(msgs[0]["properties"]) != "map[headers:map[h:v]]" || msgs[1]["payload"] != "second" {
		t.Fatalf("get: %v", msgs)
	}
	if n := e.queueDepth(conn, q); n != 2 {
		t.Errorf("queue has %d messages after get (requeue), want 2", n)
	}
	// ...and takes them with --requeue=false.
	msgs = e.rows("get", q, "--requeue=false")
	if len(msgs) != 1 || msgs[0]["payload"] != "hello" || msgs[0]["redelivered"] != true {
		t.Fatalf("get --requeue=false: %v", msgs)
	}
	if n := e.queueDepth(conn, q); n != 1 {
		t.Errorf("queue has %d messages after get --requeue=false, want 1", n)
	}

	// Redeclaring with other properties is the broker's error.
	_, errOut, code = e.run("", "declare_queue", q, "--durable")
	if code != 1 || !strings.HasPrefix(errOut, "warrenctl: ") || !strings.Contains(errOut, "durable") {
		t.Errorf("inequivalent declare_queue: exit %d, stderr %q", code, errOut)
	}
}

func TestDeleteQueue(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	conn := e.dial(e.name("conn"))
	ch := e.channel(conn)
	full, used := e.name("full"), e.name("used")
	e.declareQueue(ch, full)
	e.declareQueue(ch, used)
	publish(t, ch, "", full, "m")
	if _, err := ch.Consume(used, "", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	// The publish is asynchronous: wait until the message is there.
	e.eventually("the message to arrive", func() (bool, string) {
		n := e.queueDepth(conn, full)
		return n == 1, fmt.Sprint(n)
	})

	_, errOut, code := e.run("", "delete_queue", full, "--if-empty")
	if code != 1 || !strings.HasPrefix(errOut, "warrenctl: ") {
		t.Errorf("delete_queue --if-empty on a full queue: exit %d, stderr %q", code, errOut)
	}
	if !e.queueExists(conn, full) {
		t.Errorf("delete_queue --if-empty deleted a queue with a message")
	}
	_, errOut, code = e.run("", "delete_queue", used, "--if-unused")
	if code != 1 || !strings.HasPrefix(errOut, "warrenctl: ") {
		t.Errorf("delete_queue --if-unused on a consumed queue: exit %d, stderr %q", code, errOut)
	}
	if !e.queueExists(conn, used) {
		t.Errorf("delete_queue --if-unused deleted a queue with a consumer")
	}

	e.ok("delete_queue", full)
	if e.queueExists(conn, full) {
		t.Errorf("delete_queue left the queue")
	}
	e.ok("delete_queue", used, "--if-empty") // empty, though consumed
	if e.queueExists(conn, used) {
		t.Errorf("delete_queue --if-empty left an empty queue")
	}
}

func TestConnectionsChannelsConsumers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	connName := e.name("conn")
	conn := e.dial(connName)
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	ch := e.channel(conn)
	q := e.name("queue")
	e.declareQueue(ch, q)
	if err := ch.Qos(7, 0, false); err != nil {
		t.Fatal(err)
	}
	tag := e.name("consumer")
	deliveries, err := ch.Consume(q, tag, false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, ch, "", q, "a", "b")
	for range 2 {
		<-deliveries // left unacknowledged
	}

	var name string
	e.eventually("list_connections to show the connection", func() (bool, string) {
		rows := e.rows("list_connections", "name", "user", "channels", "client_properties.connection_name")
		r := row(rows, "client_properties.connection_name", connName)
		if r == nil {
			return false, fmt.Sprint(rows)
		}
		name, _ = r["name"].(string)
		return name != "" && r["user"] == "guest" && num(r["channels"]) == "1", fmt.Sprint(r)
	})
	e.eventually("list_channels to show the consumer and 2 unacked", func() (bool, string) {
		rows := e.rows("list_channels", "name", "connection", "consumer_count", "messages_unacknowledged", "prefetch_count")
		r := row(rows, "connection", name)
		return r != nil && num(r["consumer_count"]) == "1" && num(r["messages_unacknowledged"]) == "2" &&
			num(r["prefetch_count"]) == "7", fmt.Sprint(rows)
	})
	e.eventually("list_consumers to show the consumer", func() (bool, string) {
		rows := e.rows("list_consumers", "queue", "consumer_tag", "ack_required", "prefetch_count", "channel", "channel_details.connection_name")
		r := row(rows, "consumer_tag", tag)
		return r != nil && r["queue"] == q && r["ack_required"] == true && num(r["prefetch_count"]) == "7" &&
			strings.HasPrefix(fmt.Sprint(r["channel"]), name) && r["channel_details.connection_name"] == name, fmt.Sprint(rows)
	})
	// The default columns, as a table.
	out := e.ok("list_consumers")
	if !strings.HasPrefix(out, "queue") || !strings.Contains(out, q) || !strings.Contains(out, tag) {
		t.Errorf("list_consumers:\n%s", out)
	}

	e.ok("close_connection", name, "closed by the test")
	amqpErr := <-closed
	if amqpErr == nil || amqpErr.Code != amqp.ConnectionForced || !strings.Contains(amqpErr.Reason, "closed by the test") {
		t.Errorf("the client got %v, want 320 with the reason", amqpErr)
	}
}

func TestExportImportDefinitions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	x, q := e.name("exchange"), e.name("queue")
	e.cleanupExchange(x)
	e.cleanupQueue(q)
	e.ok("declare_exchange", x, "fanout", "--durable")
	e.ok("declare_queue", q, "--durable", "--arguments", `{"x-max-length": 5}`)
	e.ok("declare_binding", x, q, "--routing-key", "rk")

	file := filepath.Join(t.TempDir(), "defs.json")
	e.ok("export_definitions", file)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var defs map[string]any
	if err := json.Unmarshal(data, &defs); err != nil {
		t.Fatalf("export_definitions wrote bad JSON: %v", err)
	}
	// Keep only this test's queues, exchanges and bindings, so importing
	// into a shared broker restores nothing else.
	mine := func(key, field string) []any {
		var kept []any
		list, _ := defs[key].([]any)
		for _, o := range list {
			m, _ := o.(map[string]any)
			if s, _ := m[field].(string); strings.HasPrefix(s, e.prefix) {
				kept = append(kept, o)
			}
		}
		defs[key] = kept
		return kept
	}
	if n := len(mine("queues", "name")); n != 1 {
		t.Fatalf("export has %d queues named %s*, want 1:\n%s", n, e.prefix, data)
	}
	if n := len(mine("exchanges", "name")); n != 1 {
		t.Fatalf("export has %d exchanges named %s*, want 1", n, e.prefix)
	}
	if n := len(mine("bindings", "source")); n != 1 {
		t.Fatalf("export has %d bindings from %s*, want 1", n, e.prefix)
	}
	mineOnly, err := json.Marshal(defs)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, mineOnly, 0o600); err != nil {
		t.Fatal(err)
	}

	// "-" is stdout.
	out := e.ok("export_definitions", "-")
	if !json.Valid([]byte(out)) || !strings.Contains(out, q) {
		t.Errorf("export_definitions - printed %q", out)
	}

	e.ok("delete_queue", q)
	e.ok("delete_exchange", x)
	if row(e.rows("list_queues"), "name", q) != nil {
		t.Fatalf("queue %s still listed after delete_queue", q)
	}

	e.ok("import_definitions", file)
	r := row(e.rows("list_queues", "name", "durable", "arguments"), "name", q)
	if r == nil || r["durable"] != true || fmt.Sprint(r["arguments"]) != "map[x-max-length:5]" {
		t.Errorf("after import, list_queues row for %s: %v", q, r)
	}
	if r := row(e.rows("list_exchanges", "name", "type", "durable"), "name", x); r == nil || r["type"] != "fanout" || r["durable"] != true {
		t.Errorf("after import, list_exchanges row for %s: %v", x, r)
	}
	if b := row(e.rows("list_bindings"), "source_name", x); b == nil || b["destination_name"] != q || b["routing_key"] != "rk" {
		t.Errorf("after import, list_bindings row for %s: %v", x, b)
	}

	// And from stdin: importing the same again changes nothing.
	if _, errOut, code := e.run(string(mineOnly), "import_definitions", "-"); code != 0 {
		t.Errorf("import_definitions -: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code := e.run("{not json", "import_definitions", "-")
	if code != 1 || !strings.HasPrefix(errOut, "warrenctl: ") {
		t.Errorf("import_definitions of bad JSON: exit %d, stderr %q", code, errOut)
	}
}

func TestOverview(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	out := e.ok("overview", "--json")
	var ov map[string]any
	if err := json.Unmarshal([]byte(out), &ov); err != nil {
		t.Fatalf("overview --json: %v in %q", err, out)
	}
	if s, _ := ov["product_name"].(string); s == "" {
		t.Errorf("overview has no product_name: %s", out)
	}
	if _, ok := ov["object_totals.queues"].(float64); !ok {
		t.Errorf("overview has no object_totals.queues: %s", out)
	}
	lines := strings.Split(strings.TrimSpace(e.ok("overview", "product_name", "node")), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "product_name node" {
		t.Errorf("overview table: %q", lines)
	}
}

func TestAPIErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, errOut, code := e.run("", "purge_queue", e.name("missing"))
	if code != 1 || errOut != "warrenctl: Not Found\n" {
		t.Errorf("purge_queue of a missing queue: exit %d, stderr %q; want 1, RabbitMQ's %q", code, errOut, "warrenctl: Not Found\n")
	}
	// RabbitMQ's reason is "Login failed"; any reason will do.
	_, errOut, code = e.run("", "list_queues", "--password", "wrong")
	if code != 1 || !strings.HasPrefix(errOut, "warrenctl: ") || len(errOut) < len("warrenctl: x\n") {
		t.Errorf("wrong password: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = e.run("", "declare_exchange", e.name("x"), "nosuchtype")
	if code != 1 || !strings.HasPrefix(errOut, "warrenctl: ") {
		t.Errorf("declare_exchange of an unknown type: exit %d, stderr %q", code, errOut)
	}
	e.run("", "delete_exchange", e.name("x")) // in case it was made
}

// The tests below need no broker: a fake API records what warrenctl sends.

type fakeAPI struct {
	mu       sync.Mutex
	requests []*http.Request
	bodies   []string
	status   int
	answer   string
}

func newFakeAPI(t *testing.T, status int, answer string) (*fakeAPI, *httptest.Server) {
	f := &fakeAPI{status: status, answer: answer}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body bytes.Buffer
		body.ReadFrom(r.Body)
		f.mu.Lock()
		f.requests = append(f.requests, r)
		f.bodies = append(f.bodies, body.String())
		status, answer := f.status, f.answer
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, answer)
	}))
	t.Cleanup(hs.Close)
	return f, hs
}

func (f *fakeAPI) set(status int, answer string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.answer = status, answer
}

func (f *fakeAPI) last(t *testing.T) (*http.Request, string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) == 0 {
		t.Fatal("no request")
	}
	return f.requests[len(f.requests)-1], f.bodies[len(f.bodies)-1]
}

func runFake(url string, stdin string, args ...string) (string, string, int) {
	var out, errOut bytes.Buffer
	code := run(append([]string{"--url", url}, args...), strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), code
}

// The vhost "/" and names with "/" must reach the server as %2F, not as
// path separators.
func TestRequestPaths(t *testing.T) {
	f, hs := newFakeAPI(t, http.StatusOK, `[]`)
	tests := []struct {
		args       []string
		method     string
		requestURI string
		body       string
	}{
		{[]string{"list_queues"}, "GET", "/api/queues/%2F", ""},
		{[]string{"list_queues", "--vhost", "my/vh ost"}, "GET", "/api/queues/my%2Fvh%20ost", ""},
		{[]string{"--vhost", "v", "list_exchanges"}, "GET", "/api/exchanges/v", ""},
		{[]string{"list_bindings"}, "GET", "/api/bindings/%2F", ""},
		{[]string{"list_connections"}, "GET", "/api/connections", ""},
		{[]string{"list_connections", "--vhost", "/"}, "GET", "/api/vhosts/%2F/connections", ""},
		{[]string{"list_channels"}, "GET", "/api/channels", ""},
		{[]string{"list_consumers"}, "GET", "/api/consumers/%2F", ""},
		{[]string{"purge_queue", "a/b c%d"}, "DELETE", "/api/queues/%2F/a%2Fb%20c%25d/contents", ""},
		{[]string{"delete_queue", "q", "--if-unused", "--if-empty"}, "DELETE", "/api/queues/%2F/q?if-empty=true&if-unused=true", ""},
		{[]string{"delete_exchange", "x/y"}, "DELETE", "/api/exchanges/%2F/x%2Fy", ""},
		{[]string{"close_connection", "127.0.0.1:1 -> 127.0.0.1:2"}, "DELETE", "/api/connections/127.0.0.1:1%20-%3E%20127.0.0.1:2", ""},
		{[]string{"declare_queue", "q", "--durable", "--arguments", `{"x-max-length":10}`}, "PUT", "/api/queues/%2F/q",
			`{"arguments":{"x-max-length":10},"auto_delete":false,"durable":true}`},
		{[]string{"declare_exchange", "x", "topic", "--auto-delete", "--internal"}, "PUT", "/api/exchanges/%2F/x",
			`{"arguments":{},"auto_delete":true,"durable":false,"internal":true,"type":"topic"}`},
		{[]string{"declare_binding", "x", "q/1", "--routing-key", "k"}, "POST", "/api/bindings/%2F/e/x/q/q%2F1",
			`{"arguments":{},"routing_key":"k"}`},
		{[]string{"declare_binding", "x", "y", "--destination-type", "exchange"}, "POST", "/api/bindings/%2F/e/x/e/y",
			`{"arguments":{},"routing_key":""}`},
		{[]string{"get", "q", "--count", "3", "--requeue=false"}, "POST", "/api/queues/%2F/q/get",
			`{"ackmode":"ack_requeue_false","count":3,"encoding":"auto"}`},
		{[]string{"export_definitions", "-"}, "GET", "/api/definitions", ""},
		{[]string{"export_definitions", "-", "--vhost", "/"}, "GET", "/api/definitions/%2F", ""},
		{[]string{"overview"}, "GET", "/api/overview", ""},
	}
	for _, tt := range tests {
		answer := `[]`
		switch tt.args[0] {
		case "overview", "export_definitions":
			answer = `{}`
		}
		f.set(http.StatusOK, answer)
		if _, errOut, code := runFake(hs.URL, "", tt.args...); code != 0 {
			t.Errorf("%q: exit %d, stderr %q", tt.args, code, errOut)
			continue
		}
		r, body := f.last(t)
		if r.Method != tt.method || r.RequestURI != tt.requestURI {
			t.Errorf("%q sent %s %s, want %s %s", tt.args, r.Method, r.RequestURI, tt.method, tt.requestURI)
		}
		if body != tt.body {
			t.Errorf("%q sent body %s, want %s", tt.args, body, tt.body)
		}
		if u, p, _ := r.BasicAuth(); u != "guest" || p != "guest" {
			t.Errorf("%q sent credentials %q/%q", tt.args, u, p)
		}
	}
}

func TestRequestDetails(t *testing.T) {
	f, hs := newFakeAPI(t, http.StatusOK, `{"routed":true}`)

	// A base URL with a path prefix, and the environment's defaults.
	t.Setenv("WARREN_HTTP_URL", hs.URL+"/prefix/")
	t.Setenv("WARREN_USER", "admin")
	t.Setenv("WARREN_PASSWORD", "secret")
	var out, errOut bytes.Buffer
	if code := run([]string{"publish", "", "a/key", "--properties", `{"delivery_mode":2}`}, strings.NewReader("from\tstdin"), &out, &errOut); code != 0 {
		t.Fatalf("publish: exit %d, stderr %q", code, errOut.String())
	}
	r, body := f.last(t)
	if r.RequestURI != "/prefix/api/exchanges/%2F/amq.default/publish" {
		t.Errorf("publish to the default exchange went to %s", r.RequestURI)
	}
	if u, p, _ := r.BasicAuth(); u != "admin" || p != "secret" {
		t.Errorf("credentials from the environment: %q/%q", u, p)
	}
	if want := `{"payload":"from\tstdin","payload_encoding":"string","properties":{"delivery_mode":2},"routing_key":"a/key"}`; body != want {
		t.Errorf("publish body %s, want %s", body, want)
	}
	if out.String() != "routed\ntrue\n" {
		t.Errorf("publish printed %q", out.String())
	}

	// Binary payloads go as base64.
	if _, errOut, code := runFake(hs.URL, "\xff\x00", "publish", "x", "k"); code != 0 {
		t.Fatalf("publish: exit %d, stderr %q", code, errOut)
	}
	if _, body := f.last(t); !strings.Contains(body, `"payload":"/wA=","payload_encoding":"base64"`) {
		t.Errorf("binary publish body %s", body)
	}

	// close_connection passes the reason in X-Reason.
	if _, errOut, code := runFake(hs.URL, "", "close_connection", "c", "time to go"); code != 0 {
		t.Fatalf("close_connection: exit %d, stderr %q", code, errOut)
	}
	if r, _ := f.last(t); r.Header.Get("X-Reason") != "time to go" {
		t.Errorf("X-Reason %q", r.Header.Get("X-Reason"))
	}
}

func TestTableOutput(t *testing.T) {
	_, hs := newFakeAPI(t, http.StatusOK, `[
		{"name":"q1","messages":12345678901,"durable":true,"arguments":{"x-b":[1,"two"]},"node":{"a":{"b":"deep"}}},
		{"name":"queue-two","messages":0,"durable":false,"arguments":{},"rate":0.5,"text":"tab\there"}]`)
	out, errOut, code := runFake(hs.URL, "", "list_queues", "name", "messages", "durable", "arguments", "node.a.b", "missing", "rate", "text")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	want := "" +
		"name       messages     durable  arguments          node.a.b  missing  rate  text\n" +
		"q1         12345678901  true     {\"x-b\":[1,\"two\"]}  deep                     \n" +
		"queue-two  0            false    {}                                    0.5   tab\\there\n"
	if out != want {
		t.Errorf("table:\n%s\nwant:\n%s", out, want)
	}
	out, _, _ = runFake(hs.URL, "", "list_queues", "--json", "name", "node.a", "missing")
	wantJSON := "[\n  {\"name\": \"q1\", \"node.a\": {\"b\":\"deep\"}, \"missing\": null},\n" +
		"  {\"name\": \"queue-two\", \"node.a\": null, \"missing\": null}\n]\n"
	if out != wantJSON {
		t.Errorf("json:\n%s\nwant:\n%s", out, wantJSON)
	}
}

func TestErrorAnswers(t *testing.T) {
	f, hs := newFakeAPI(t, http.StatusBadRequest, `{"error":"bad_request","reason":"inequivalent arg 'durable'"}`)
	out, errOut, code := runFake(hs.URL, "", "declare_queue", "q")
	if code != 1 || out != "" || errOut != "warrenctl: inequivalent arg 'durable'\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	f.set(http.StatusInternalServerError, "oops")
	_, errOut, code = runFake(hs.URL, "", "list_queues")
	if code != 1 || errOut != "warrenctl: 500 Internal Server Error: oops\n" {
		t.Errorf("non-JSON error: exit %d, stderr %q", code, errOut)
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		args       []string
		code       int
		stdoutHas  string
		stderrHas  string
		noRequests bool
	}{
		{args: []string{"help"}, code: 0, stdoutHas: "list_consumers"},
		{args: []string{"--help"}, code: 0, stdoutHas: "import_definitions"},
		{args: []string{"help", "get"}, code: 0, stdoutHas: "--requeue"},
		{args: []string{"get", "--help"}, code: 0, stdoutHas: "--count"},
		{args: nil, code: 2, stderrHas: "Commands:"},
		{args: []string{"frobnicate"}, code: 2, stderrHas: `unknown command "frobnicate"`},
		{args: []string{"--bogus", "list_queues"}, code: 2, stderrHas: "bogus"},
		{args: []string{"purge_queue"}, code: 2, stderrHas: "Usage: warrenctl purge_queue NAME"},
		{args: []string{"purge_queue", "a", "b"}, code: 2, stderrHas: "wrong number of arguments"},
		{args: []string{"delete_queue", "q", "--if-full"}, code: 2, stderrHas: "if-full"},
		{args: []string{"declare_queue", "q", "--arguments", "[1]"}, code: 2, stderrHas: "--arguments must be a JSON object"},
		{args: []string{"declare_binding", "x", "q", "--destination-type", "topic"}, code: 2, stderrHas: "--destination-type"},
		{args: []string{"get", "q", "--count", "0"}, code: 2, stderrHas: "--count"},
		{args: []string{"--url", "localhost:15672", "list_queues"}, code: 2, stderrHas: "bad --url"},
	}
	f, hs := newFakeAPI(t, http.StatusOK, `[]`)
	for _, tt := range tests {
		args := tt.args
		if len(args) > 0 && args[0] != "--url" {
			args = append([]string{"--url", hs.URL}, args...)
		}
		var out, errOut bytes.Buffer
		code := run(args, strings.NewReader(""), &out, &errOut)
		if code != tt.code || !strings.Contains(out.String(), tt.stdoutHas) || !strings.Contains(errOut.String(), tt.stderrHas) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
				tt.args, code, out.String(), errOut.String(), tt.code, tt.stdoutHas, tt.stderrHas)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) != 0 {
		t.Errorf("usage errors sent %d requests", len(f.requests))
	}
}
