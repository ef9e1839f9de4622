package rpc_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/rpc"
	"github.com/warrenmq/warren/server/servertest"
)

// waitTimeout bounds every wait; it is reached only when a test fails.
const waitTimeout = 10 * time.Second

// refURL, when set, runs the tests that need no broker restart against
// that broker (RabbitMQ) instead of an in-process Warren.
var refURL = os.Getenv("WARREN_REF_URL")

type env struct {
	t     *testing.T
	b     *servertest.Broker // nil against the reference broker
	url   string
	conn  *amqp.Connection
	queue string
}

// setup starts a broker (or uses the reference one), dials it and declares
// a fresh request queue with args.
func setup(t *testing.T, args amqp.Table) *env {
	t.Helper()
	e := &env{t: t, url: refURL}
	if refURL == "" {
		e.b = servertest.Start(t)
		e.url = e.b.URL
	}
	e.conn = e.dial()
	e.queue = e.name("requests")
	e.declare(e.queue, args)
	return e
}

// name is a queue or exchange name unique to the test run, so that tests
// against a shared reference broker do not meet.
func (e *env) name(what string) string {
	return fmt.Sprintf("rpc-test.%s.%s.%d", strings.ReplaceAll(e.t.Name(), "/", "."), what, time.Now().UnixNano())
}

// channel opens a channel closed at the end of the test.
func (e *env) channel() *amqp.Channel {
	e.t.Helper()
	ch, err := e.conn.Channel()
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { ch.Close() })
	return ch
}

// declare declares a queue deleted at the end of the test.
func (e *env) declare(name string, args amqp.Table) {
	e.t.Helper()
	ch, err := e.conn.Channel()
	if err != nil {
		e.t.Fatal(err)
	}
	defer ch.Close()
	if _, err := ch.QueueDeclare(name, false, false, false, false, args); err != nil {
		e.t.Fatal(err)
	}
	e.cleanup(func(ch *amqp.Channel) { ch.QueueDelete(name, false, false, false) })
}

// cleanup runs f on a fresh channel at the end of the test, if the
// connection is still up.
func (e *env) cleanup(f func(*amqp.Channel)) {
	conn := e.conn
	e.t.Cleanup(func() {
		if ch, err := conn.Channel(); err == nil {
			f(ch)
			ch.Close()
		}
	})
}

func (e *env) dial() *amqp.Connection {
	e.t.Helper()
	conn, err := amqp.Dial(e.url)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	return conn
}

// served is a Server running in the background.
type served struct {
	*rpc.Server
	err chan error // Serve's result
}

// serve runs a Server on e.queue, on a connection of its own, until the
// test ends.
func (e *env) serve(h rpc.Handler, opts ...rpc.ServerOption) *served {
	e.t.Helper()
	s, err := rpc.NewServer(e.dial(), e.queue, h, opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	sv := &served{Server: s, err: make(chan error, 1)}
	go func() { sv.err <- s.Serve() }()
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		s.Shutdown(ctx)
		<-sv.err
	})
	return sv
}

// shutdown shuts sv down and checks that Serve returned nil.
func (sv *served) shutdown(t *testing.T) {
	t.Helper()
	if err := sv.Shutdown(ctxT(t)); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := receive(t, sv.err, "Serve to return"); err != nil {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
	sv.err <- nil // for the cleanup
}

func (e *env) client(opts ...rpc.ClientOption) *rpc.Client {
	e.t.Helper()
	c, err := rpc.NewClient(e.conn, opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// stat returns queue q's ready messages and consumers.
func (e *env) stat(q string) (messages, consumers int) {
	e.t.Helper()
	ch, err := e.conn.Channel()
	if err != nil {
		e.t.Fatal(err)
	}
	defer ch.Close()
	st, err := ch.QueueDeclarePassive(q, false, false, false, false, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return st.Messages, st.Consumers
}

// publish publishes a one-way message (no reply_to) to e.queue.
func (e *env) publish(body string) {
	e.t.Helper()
	ch, err := e.conn.Channel()
	if err != nil {
		e.t.Fatal(err)
	}
	defer ch.Close()
	if err := ch.Publish("", e.queue, false, false, amqp.Publishing{Body: []byte(body)}); err != nil {
		e.t.Fatal(err)
	}
}

// waitFor polls cond until it holds, and fails the test if it does not
// within waitTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // the poll interval
	}
}

// receive waits for a value on c, and fails the test if none comes within
// waitTimeout.
func receive[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func echo(_ context.Context, req amqp.Delivery) (amqp.Publishing, error) {
	return amqp.Publishing{Body: append([]byte("re: "), req.Body...)}, nil
}

// ctxT is a context for a call that should succeed: it ends with the test,
// and its deadline is reached only when a test fails.
func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// call calls with ctxT and checks the reply is the echo of body.
func call(t *testing.T, c *rpc.Client, queue, body string) {
	t.Helper()
	d, err := c.Call(ctxT(t), "", queue, amqp.Publishing{Body: []byte(body)})
	if err != nil {
		t.Fatalf("call %q: %v", body, err)
	}
	if string(d.Body) != "re: "+body {
		t.Fatalf("call %q: reply %q", body, d.Body)
	}
}

var modes = []struct {
	name string
	opts []rpc.ClientOption
}{
	{"direct", nil},
	{"queue", []rpc.ClientOption{rpc.WithReplyQueue()}},
}

// blocker is a handler that says when it has a request and waits for
// release before replying.
type blocker struct {
	entered chan amqp.Delivery
	release chan struct{}
}

func newBlocker() *blocker {
	return &blocker{entered: make(chan amqp.Delivery, 100), release: make(chan struct{})}
}

func (b *blocker) handle(ctx context.Context, req amqp.Delivery) (amqp.Publishing, error) {
	b.entered <- req
	select {
	case <-b.release:
	case <-ctx.Done():
		return amqp.Publishing{}, ctx.Err()
	}
	return echo(ctx, req)
}

func (b *blocker) waitEntered(t *testing.T) amqp.Delivery {
	t.Helper()
	return receive(t, b.entered, "the handler to get a request")
}
