package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/rpc"
	"github.com/warrenmq/warren/server"
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
	e.queue = fmt.Sprintf("rpc-test.%s.%d", strings.ReplaceAll(t.Name(), "/", "."), time.Now().UnixNano())
	ch, err := e.conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	e.declare(ch, e.queue, args)
	return e
}

// declare declares a queue deleted at the end of the test.
func (e *env) declare(ch *amqp.Channel, name string, args amqp.Table) {
	e.t.Helper()
	if _, err := ch.QueueDeclare(name, false, false, false, false, args); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		if ch, err := e.conn.Channel(); err == nil {
			ch.QueueDelete(name, false, false, false)
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

// serve runs a Server on e.queue until the test ends.
func (e *env) serve(h rpc.Handler, opts ...rpc.ServerOption) *rpc.Server {
	e.t.Helper()
	s, err := rpc.NewServer(e.dial(), e.queue, h, opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		s.Shutdown(ctx)
		<-served
	})
	return s
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

// messages returns the ready count of queue q.
func (e *env) messages(q string) int {
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
	return st.Messages
}

func echo(_ context.Context, req amqp.Delivery) (amqp.Publishing, error) {
	return amqp.Publishing{Body: append([]byte("re: "), req.Body...)}, nil
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

var modes = []struct {
	name string
	opts []rpc.ClientOption
}{
	{"direct", nil},
	{"queue", []rpc.ClientOption{rpc.WithReplyQueue()}},
}

// 1,000 concurrent calls through one client each get their own reply.
func TestConcurrentCalls(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := setup(t, nil)
			e.serve(echo, rpc.WithWorkers(8))
			c := e.client(m.opts...)
			const n = 1000
			errs := make(chan error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					body := fmt.Sprint("call ", i)
					d, err := c.Call(ctxT(t), "", e.queue, amqp.Publishing{Body: []byte(body)})
					if err != nil {
						errs <- fmt.Errorf("call %d: %w", i, err)
					} else if string(d.Body) != "re: "+body {
						errs <- fmt.Errorf("call %d got %q", i, d.Body)
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
		})
	}
}

// blocker is a handler that waits for release before replying, and says
// when it has a request.
type blocker struct {
	entered chan string
	release chan struct{}
}

func newBlocker() *blocker {
	return &blocker{entered: make(chan string, 100), release: make(chan struct{})}
}

func (b *blocker) handle(ctx context.Context, req amqp.Delivery) (amqp.Publishing, error) {
	b.entered <- string(req.Body)
	select {
	case <-b.release:
	case <-ctx.Done():
		return amqp.Publishing{}, ctx.Err()
	}
	return echo(ctx, req)
}

func (b *blocker) waitEntered(t *testing.T) string {
	t.Helper()
	select {
	case body := <-b.entered:
		return body
	case <-time.After(waitTimeout):
		t.Fatal("the handler got no request")
		return ""
	}
}

// A call ends with its context; the reply that comes later is dropped,
// and the next call gets its own.
func TestCallContext(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := setup(t, nil)
			bl := newBlocker()
			e.serve(bl.handle)
			c := e.client(m.opts...)

			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			_, err := c.Call(ctx, "", e.queue, amqp.Publishing{Body: []byte("slow")})
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("call past its deadline: %v", err)
			}
			bl.waitEntered(t)

			ctx, cancel = context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				_, err := c.Call(ctx, "", e.queue, amqp.Publishing{Body: []byte("cancelled")})
				done <- err
			}()
			bl.waitEntered(t)
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled call: %v", err)
			}

			close(bl.release) // the two late replies go out now
			d, err := c.Call(ctxT(t), "", e.queue, amqp.Publishing{Body: []byte("next")})
			if err != nil || string(d.Body) != "re: next" {
				t.Fatalf("next call: %q %v", d.Body, err)
			}
		})
	}
}

// Shutdown finishes the request in flight: its reply is sent and it is
// acked, not delivered again.
func TestServerShutdownFinishesInFlight(t *testing.T) {
	e := setup(t, nil)
	bl := newBlocker()
	s := e.serve(bl.handle, rpc.WithWorkers(2))
	c := e.client()
	replied := make(chan error, 1)
	go func() {
		d, err := c.Call(ctxT(t), "", e.queue, amqp.Publishing{Body: []byte("in flight")})
		if err == nil && string(d.Body) != "re: in flight" {
			err = fmt.Errorf("reply %q", d.Body)
		}
		replied <- err
	}()
	bl.waitEntered(t)
	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(ctxT(t)) }()
	close(bl.release)
	if err := <-replied; err != nil {
		t.Fatal(err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := e.messages(e.queue); n != 0 {
		t.Fatalf("%d requests back in the queue after a graceful shutdown", n)
	}
	// No server now: a call waits for its context.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Call(ctx, "", e.queue, amqp.Publishing{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call with the server gone: %v", err)
	}
}

// A handler error rejects the request so it dead-letters, or requeues it
// with WithRequeueOnError(true).
func TestHandlerErrors(t *testing.T) {
	t.Run("reject", func(t *testing.T) {
		e := setup(t, nil)
		dlq := e.queue + ".dead"
		ch, _ := e.conn.Channel()
		e.declare(ch, dlq, nil)
		// A second request queue that dead-letters into dlq.
		q := e.queue + ".dl"
		e.declare(ch, q, amqp.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq})
		e.queue = q
		e.serve(func(context.Context, amqp.Delivery) (amqp.Publishing, error) {
			return amqp.Publishing{}, errors.New("no")
		})
		c := e.client()
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if _, err := c.Call(ctx, "", q, amqp.Publishing{Body: []byte("bad")}); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("call to a failing handler: %v", err)
		}
		deadline := time.Now().Add(waitTimeout)
		for e.messages(dlq) != 1 {
			if time.Now().After(deadline) {
				t.Fatal("the rejected request did not dead-letter")
			}
			time.Sleep(10 * time.Millisecond) // the poll interval
		}
	})
	t.Run("requeue", func(t *testing.T) {
		e := setup(t, nil)
		var mu sync.Mutex
		tries := 0
		e.serve(func(ctx context.Context, req amqp.Delivery) (amqp.Publishing, error) {
			mu.Lock()
			defer mu.Unlock()
			if tries++; tries == 1 {
				return amqp.Publishing{}, errors.New("not yet")
			}
			if !req.Redelivered {
				return amqp.Publishing{}, errors.New("second try not marked redelivered")
			}
			return echo(ctx, req)
		}, rpc.WithRequeueOnError(true))
		d, err := e.client().Call(ctxT(t), "", e.queue, amqp.Publishing{Body: []byte("again")})
		if err != nil || string(d.Body) != "re: again" {
			t.Fatalf("call: %q %v", d.Body, err)
		}
	})
}

// In confirm mode replies are confirmed before the request is acked.
func TestServerConfirms(t *testing.T) {
	e := setup(t, nil)
	e.serve(echo, rpc.WithConfirms(), rpc.WithWorkers(4))
	c := e.client()
	for i := range 20 {
		body := fmt.Sprint(i)
		d, err := c.Call(ctxT(t), "", e.queue, amqp.Publishing{Body: []byte(body)})
		if err != nil || string(d.Body) != "re: "+body {
			t.Fatalf("call %d: %q %v", i, d.Body, err)
		}
	}
	if n := e.messages(e.queue); n != 0 {
		t.Fatalf("%d requests left", n)
	}
}

// A request no queue takes fails at once.
func TestCallUnroutable(t *testing.T) {
	e := setup(t, nil)
	c := e.client()
	if _, err := c.Call(ctxT(t), "amq.direct", "nobody-here", amqp.Publishing{}); !errors.Is(err, rpc.ErrNoRoute) {
		t.Fatalf("unroutable call: %v", err)
	}
	e.serve(echo)
	if _, err := c.Call(ctxT(t), "", e.queue, amqp.Publishing{}); err != nil {
		t.Fatalf("the client broke after an unroutable call: %v", err)
	}
}

func TestCallAfterClose(t *testing.T) {
	e := setup(t, nil)
	c := e.client()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Call(ctxT(t), "", e.queue, amqp.Publishing{}); !errors.Is(err, rpc.ErrClosed) {
		t.Fatalf("call after Close: %v", err)
	}
}

// A broker that goes away mid-call fails the call at once with
// ErrConnectionLost, not at its deadline, and every later call too.
func TestBrokerRestartMidCall(t *testing.T) {
	if refURL != "" {
		t.Skip("stops the broker")
	}
	e := setup(t, nil)
	bl := newBlocker()
	e.serve(bl.handle)
	defer close(bl.release)
	c := e.client()
	failed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		_, err := c.Call(ctx, "", e.queue, amqp.Publishing{Body: []byte("doomed")})
		failed <- err
	}()
	bl.waitEntered(t)
	e.b.Stop()
	select {
	case err := <-failed:
		if !errors.Is(err, rpc.ErrConnectionLost) {
			t.Fatalf("call in flight: %v, want ErrConnectionLost", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the call in flight did not fail when the broker went away")
	}
	if _, err := c.Call(ctxT(t), "", e.queue, amqp.Publishing{}); !errors.Is(err, rpc.ErrConnectionLost) {
		t.Fatalf("call after the broker went away: %v", err)
	}

	// A new broker on the same data dir and a new client work again.
	b2 := servertest.Start(t, func(o *server.Options) { o.DataDir = e.b.DataDir })
	e2 := &env{t: t, b: b2, url: b2.URL}
	e2.conn = e2.dial()
	e2.queue = e.queue
	ch, _ := e2.conn.Channel()
	e2.declare(ch, e2.queue, nil)
	e2.serve(echo)
	if d, err := e2.client().Call(ctxT(t), "", e2.queue, amqp.Publishing{Body: []byte("x")}); err != nil || string(d.Body) != "re: x" {
		t.Fatalf("after restart: %q %v", d.Body, err)
	}
}
