package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/rpc"
	"github.com/warrenmq/warren/server"
	"github.com/warrenmq/warren/server/servertest"
)

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
				t.Error(err)
			}
		})
	}
}

// Call sets correlation_id and reply_to and keeps the other properties.
func TestCallKeepsProperties(t *testing.T) {
	e := setup(t, nil)
	reqs := make(chan amqp.Delivery, 1)
	e.serve(func(_ context.Context, req amqp.Delivery) (amqp.Publishing, error) {
		reqs <- req
		return amqp.Publishing{ContentType: "text/x-reply", CorrelationId: "overwritten", Body: []byte("ok")}, nil
	})
	c := e.client()
	d, err := c.Call(ctxT(t), "", e.queue, amqp.Publishing{
		ContentType: "text/plain", Headers: amqp.Table{"k": "v"}, MessageId: "m1",
		Type: "greeting", AppId: "tests", CorrelationId: "mine", ReplyTo: "mine", Body: []byte("hi"),
	})
	if err != nil {
		t.Fatal(err)
	}
	req := <-reqs
	if req.ContentType != "text/plain" || req.Headers["k"] != "v" || req.MessageId != "m1" ||
		req.Type != "greeting" || req.AppId != "tests" || string(req.Body) != "hi" {
		t.Errorf("the request lost properties: %+v", req)
	}
	if req.CorrelationId == "" || req.CorrelationId == "mine" || req.ReplyTo == "" || req.ReplyTo == "mine" {
		t.Errorf("request correlation_id %q reply_to %q: not set by Call", req.CorrelationId, req.ReplyTo)
	}
	if d.CorrelationId != req.CorrelationId || d.ContentType != "text/x-reply" || string(d.Body) != "ok" {
		t.Errorf("reply correlation_id %q (request's %q), content type %q, body %q",
			d.CorrelationId, req.CorrelationId, d.ContentType, d.Body)
	}
}

// A call ends with its context; the reply that comes later is dropped,
// and the next call gets its own.
func TestCallContext(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := setup(t, nil)
			bl := newBlocker()
			sv := e.serve(bl.handle)
			c := e.client(m.opts...)

			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
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
			if err := receive(t, done, "the cancelled call"); !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled call: %v", err)
			}

			// The two late replies go out, and Shutdown returns once they
			// have: they reach the client's channel before the next
			// request is even published, so before its reply.
			close(bl.release)
			sv.shutdown(t)
			e.serve(echo)
			call(t, c, e.queue, "next")
		})
	}
}

// A call that is cancelled before it is published is not published.
func TestCallCancelledBefore(t *testing.T) {
	e := setup(t, nil)
	c := e.client()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Call(ctx, "", e.queue, amqp.Publishing{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("call with a cancelled context: %v", err)
	}
	if n, _ := e.stat(e.queue); n != 0 {
		t.Fatalf("%d requests published", n)
	}
}

// A request the client library refuses (a header of a type AMQP lacks) is
// an error of that call alone.
func TestCallBadHeader(t *testing.T) {
	e := setup(t, nil)
	e.serve(echo)
	c := e.client()
	_, err := c.Call(ctxT(t), "", e.queue, amqp.Publishing{Headers: amqp.Table{"bad": struct{}{}}})
	if err == nil || errors.Is(err, rpc.ErrConnectionLost) {
		t.Fatalf("call with a bad header: %v", err)
	}
	call(t, c, e.queue, "still works")
}

// A request no queue takes fails at once.
func TestCallUnroutable(t *testing.T) {
	e := setup(t, nil)
	c := e.client()
	if _, err := c.Call(ctxT(t), "amq.direct", "nobody-here", amqp.Publishing{}); !errors.Is(err, rpc.ErrNoRoute) {
		t.Fatalf("unroutable call: %v", err)
	}
	e.serve(echo)
	call(t, c, e.queue, "after")
}

// A request to an exchange that does not exist closes the client's
// channel (404): the call fails with ErrConnectionLost and the broker's
// error, and so does every later one.
func TestCallNoExchange(t *testing.T) {
	e := setup(t, nil)
	c := e.client()
	_, err := c.Call(ctxT(t), e.name("missing"), "x", amqp.Publishing{})
	var amqpErr *amqp.Error
	if !errors.Is(err, rpc.ErrConnectionLost) || !errors.As(err, &amqpErr) || amqpErr.Code != amqp.NotFound {
		t.Fatalf("call to a missing exchange: %v, want ErrConnectionLost with 404", err)
	}
	if _, err := c.Call(ctxT(t), "", e.queue, amqp.Publishing{}); !errors.Is(err, rpc.ErrConnectionLost) {
		t.Fatalf("call after the channel closed: %v", err)
	}
}

// Close fails the calls waiting and every later one with ErrClosed; with
// a reply queue, the queue goes with it.
func TestClose(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			e := setup(t, nil)
			bl := newBlocker()
			e.serve(bl.handle)
			defer close(bl.release)
			c := e.client(m.opts...)
			done := make(chan error, 1)
			go func() {
				_, err := c.Call(ctxT(t), "", e.queue, amqp.Publishing{})
				done <- err
			}()
			req := bl.waitEntered(t)
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if err := receive(t, done, "the call in flight"); !errors.Is(err, rpc.ErrClosed) {
				t.Fatalf("call in flight at Close: %v", err)
			}
			if _, err := c.Call(ctxT(t), "", e.queue, amqp.Publishing{}); !errors.Is(err, rpc.ErrClosed) {
				t.Fatalf("call after Close: %v", err)
			}
			if err := c.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if m.name == "queue" {
				ch := e.channel()
				if _, err := ch.QueueDeclarePassive(req.ReplyTo, false, false, false, false, nil); err == nil {
					t.Fatalf("reply queue %s still there after Close", req.ReplyTo)
				}
			}
		})
	}
}

// A reply queue deleted under the client ends it: the broker cancels the
// consumer, and the calls fail with ErrConnectionLost.
func TestReplyQueueDeleted(t *testing.T) {
	e := setup(t, nil)
	bl := newBlocker()
	e.serve(bl.handle)
	defer close(bl.release)
	c := e.client(rpc.WithReplyQueue())
	done := make(chan error, 1)
	go func() {
		_, err := c.Call(context.Background(), "", e.queue, amqp.Publishing{})
		done <- err
	}()
	req := bl.waitEntered(t)
	// The queue is exclusive to the client's connection, e.conn.
	if _, err := e.channel().QueueDelete(req.ReplyTo, false, false, false); err != nil {
		t.Fatal(err)
	}
	if err := receive(t, done, "the call in flight to fail"); !errors.Is(err, rpc.ErrConnectionLost) {
		t.Fatalf("call in flight: %v, want ErrConnectionLost", err)
	}
	if _, err := c.Call(ctxT(t), "", e.queue, amqp.Publishing{}); !errors.Is(err, rpc.ErrConnectionLost) {
		t.Fatalf("later call: %v, want ErrConnectionLost", err)
	}
}

// Connections with amqp091-go's automatic recovery are refused.
func TestRecoveryRefused(t *testing.T) {
	e := setup(t, nil)
	conn, err := amqp.DialConfig(e.url, amqp.Config{Recovery: &amqp.Recovery{}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := rpc.NewClient(conn); err == nil {
		t.Error("NewClient took a connection with recovery")
	}
	if _, err := rpc.NewServer(conn, e.queue, echo); err == nil {
		t.Error("NewServer took a connection with recovery")
	}
}

// Shutdown waits for the request in flight: its reply is sent and it is
// acked, not delivered again. The requests delivered but not started go
// back to the queue without being handled.
func TestServerShutdown(t *testing.T) {
	e := setup(t, nil)
	bl := newBlocker()
	sv := e.serve(bl.handle, rpc.WithWorkers(1), rpc.WithPrefetch(3))
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
	e.publish("waiting 1")
	e.publish("waiting 2")
	waitFor(t, "the server to have all 3 requests", func() bool { n, _ := e.stat(e.queue); return n == 0 })

	shut := make(chan error, 1)
	go func() { shut <- sv.Shutdown(ctxT(t)) }()
	waitFor(t, "the consumer to be cancelled", func() bool { _, n := e.stat(e.queue); return n == 0 })
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a handler in flight", err)
	default:
	}
	close(bl.release)
	if err := receive(t, replied, "the reply"); err != nil {
		t.Fatal(err)
	}
	if err := receive(t, shut, "Shutdown"); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := receive(t, sv.err, "Serve to return"); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	sv.err <- nil
	if n, _ := e.stat(e.queue); n != 2 {
		t.Fatalf("%d requests in the queue after Shutdown, want the 2 not started", n)
	}
	if len(bl.entered) != 0 {
		t.Fatalf("a request not started before Shutdown was handled: %q", (<-bl.entered).Body)
	}
	// The in-flight one was acked: a new server gets only the other two.
	got := make(chan string, 3)
	e.serve(func(_ context.Context, req amqp.Delivery) (amqp.Publishing, error) {
		got <- string(req.Body)
		return amqp.Publishing{}, nil
	})
	for range 2 {
		if body := receive(t, got, "a requeued request"); body == "in flight" {
			t.Fatal("the request handled before Shutdown was delivered again")
		}
	}
	waitFor(t, "the requeued requests to be acked", func() bool { n, _ := e.stat(e.queue); return n == 0 })
	if len(got) != 0 {
		t.Fatalf("delivered again: %q", <-got)
	}
}

// A Shutdown that gives up cancels the handlers, and their requests are
// delivered again rather than settled.
func TestServerShutdownGivesUp(t *testing.T) {
	e := setup(t, nil)
	bl := newBlocker()
	sv := e.serve(bl.handle) // returns ctx.Err() when cancelled
	e.publish("stuck")
	bl.waitEntered(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sv.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown past its context: %v", err)
	}
	if err := receive(t, sv.err, "Serve to return"); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	sv.err <- nil
	waitFor(t, "the request to be back", func() bool { n, _ := e.stat(e.queue); return n == 1 })
}

// Serve may run once; Shutdown may come first, and twice.
func TestServeShutdownOrder(t *testing.T) {
	e := setup(t, nil)
	s, err := rpc.NewServer(e.dial(), e.queue, echo)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(ctxT(t)); err != nil {
		t.Fatalf("Shutdown before Serve: %v", err)
	}
	if err := s.Shutdown(ctxT(t)); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	if err := s.Serve(); err != nil {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
	if err := s.Serve(); err == nil {
		t.Fatal("second Serve did not fail")
	}
}

// A request without reply_to is handled and acked, with no reply.
func TestOneWayRequest(t *testing.T) {
	e := setup(t, nil)
	var handled atomic.Int32
	sv := e.serve(func(_ context.Context, req amqp.Delivery) (amqp.Publishing, error) {
		handled.Add(1)
		return amqp.Publishing{Body: []byte("nobody listens")}, nil
	})
	e.publish("fire and forget")
	waitFor(t, "the request to be handled", func() bool { return handled.Load() == 1 })
	sv.shutdown(t) // an unacked request would be requeued now
	if n, _ := e.stat(e.queue); n != 0 {
		t.Fatalf("the one-way request was not acked: %d in the queue", n)
	}
}

// A handler error rejects the request so that it dead-letters, or
// requeues it with WithRequeueOnError(true).
func TestHandlerErrors(t *testing.T) {
	t.Run("reject", func(t *testing.T) {
		e := setup(t, nil)
		ch := e.channel()
		dlx, dlq := e.name("dlx"), e.name("dead")
		if err := ch.ExchangeDeclare(dlx, "fanout", false, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		e.cleanup(func(ch *amqp.Channel) { ch.ExchangeDelete(dlx, false, false) })
		e.declare(dlq, nil)
		if err := ch.QueueBind(dlq, "", dlx, false, nil); err != nil {
			t.Fatal(err)
		}
		e.queue = e.name("requests-dl")
		e.declare(e.queue, amqp.Table{"x-dead-letter-exchange": dlx})
		dead, err := ch.Consume(dlq, "", true, false, false, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		e.serve(func(context.Context, amqp.Delivery) (amqp.Publishing, error) {
			return amqp.Publishing{}, errors.New("no")
		})
		c := e.client()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := c.Call(ctx, "", e.queue, amqp.Publishing{Body: []byte("bad")})
			done <- err
		}()
		d := receive(t, dead, "the rejected request to dead-letter")
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("call to a failing handler: %v", err)
		}
		deaths, _ := d.Headers["x-death"].([]any)
		if string(d.Body) != "bad" || len(deaths) != 1 || deaths[0].(amqp.Table)["reason"] != "rejected" {
			t.Fatalf("dead letter %q with x-death %v", d.Body, d.Headers["x-death"])
		}
	})
	t.Run("requeue", func(t *testing.T) {
		e := setup(t, nil)
		var tries atomic.Int32
		e.serve(func(ctx context.Context, req amqp.Delivery) (amqp.Publishing, error) {
			if tries.Add(1) == 1 {
				return amqp.Publishing{}, errors.New("not yet")
			}
			if !req.Redelivered {
				return amqp.Publishing{}, errors.New("second try not marked redelivered")
			}
			return echo(ctx, req)
		}, rpc.WithRequeueOnError(true))
		call(t, e.client(), e.queue, "again")
		if n := tries.Load(); n != 2 {
			t.Fatalf("handled %d times, want 2", n)
		}
	})
}

// In confirm mode replies are confirmed before the request is acked.
func TestServerConfirms(t *testing.T) {
	e := setup(t, nil)
	sv := e.serve(echo, rpc.WithConfirms(), rpc.WithWorkers(4))
	c := e.client()
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() { call(t, c, e.queue, fmt.Sprint(i)) })
	}
	wg.Wait()
	sv.shutdown(t)
	if n, _ := e.stat(e.queue); n != 0 {
		t.Fatalf("%d requests left", n)
	}
}

// A request queue deleted under the server ends Serve with
// ErrConnectionLost.
func TestRequestQueueDeleted(t *testing.T) {
	e := setup(t, nil)
	sv := e.serve(echo)
	call(t, e.client(), e.queue, "before")
	if _, err := e.channel().QueueDelete(e.queue, false, false, false); err != nil {
		t.Fatal(err)
	}
	err := receive(t, sv.err, "Serve to return")
	if !errors.Is(err, rpc.ErrConnectionLost) {
		t.Fatalf("Serve after its queue was deleted: %v", err)
	}
	sv.err <- err
}

// A broker that goes away mid-call fails the call at once with
// ErrConnectionLost and the broker's 320, not at its deadline, and every
// later call too; Serve ends the same way.
func TestBrokerStopMidCall(t *testing.T) {
	if refURL != "" {
		t.Skip("stops the broker")
	}
	e := setup(t, nil)
	bl := newBlocker()
	sv := e.serve(bl.handle)
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
	err := receive(t, failed, "the call in flight to fail")
	var amqpErr *amqp.Error
	if !errors.Is(err, rpc.ErrConnectionLost) || !errors.As(err, &amqpErr) || amqpErr.Code != amqp.ConnectionForced {
		t.Fatalf("call in flight: %v, want ErrConnectionLost with 320", err)
	}
	if _, err := c.Call(ctxT(t), "", e.queue, amqp.Publishing{}); !errors.Is(err, rpc.ErrConnectionLost) {
		t.Fatalf("call after the broker went away: %v", err)
	}
	err = receive(t, sv.err, "Serve to return")
	if !errors.Is(err, rpc.ErrConnectionLost) {
		t.Fatalf("Serve: %v", err)
	}
	sv.err <- err

	// A new broker on the same data dir and a new client work again.
	b2 := servertest.Start(t, func(o *server.Options) { o.DataDir = e.b.DataDir })
	e2 := &env{t: t, b: b2, url: b2.URL}
	e2.conn = e2.dial()
	e2.queue = e.queue
	e2.declare(e2.queue, nil)
	e2.serve(echo)
	call(t, e2.client(), e2.queue, "after restart")
}
