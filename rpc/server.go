package rpc

import (
	"context"
	"errors"
	"fmt"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Handler answers one request. Its reply is sent with the request's
// correlation id; an error sends none and rejects (or requeues) the
// request. ctx is cancelled if the server's Shutdown gives up waiting.
type Handler func(ctx context.Context, req amqp.Delivery) (amqp.Publishing, error)

// Server consumes a request queue and replies to each request.
type Server struct {
	ch       *amqp.Channel
	h        Handler
	cfg      serverConfig
	tag      string
	requests <-chan amqp.Delivery
	closed   <-chan *amqp.Error

	// sendMu keeps a reply's frames together against basic.cancel and
	// channel.close: amqp091-go sends those without waiting for a publish
	// on the same channel to finish, and a method between a publish and
	// its content is a connection error (505).
	sendMu sync.Mutex

	ctx      context.Context // handlers' context
	cancel   context.CancelFunc
	inFlight sync.WaitGroup // handlers running
	stopping chan struct{}  // closed by Shutdown
	stopOnce sync.Once
	served   chan struct{} // closed when Serve has returned
}

// ServerOption configures a Server.
type ServerOption func(*serverConfig)

type serverConfig struct {
	workers, prefetch int
	confirms          bool
	requeueOnError    bool
}

// WithWorkers bounds how many handlers run at once (default 4).
func WithWorkers(n int) ServerOption { return func(c *serverConfig) { c.workers = max(n, 1) } }

// WithPrefetch sets the request channel's prefetch (default twice the
// workers).
func WithPrefetch(n int) ServerOption { return func(c *serverConfig) { c.prefetch = max(n, 1) } }

// WithConfirms publishes replies in confirm mode: a request is acked only
// once the broker has confirmed its reply, and requeued if it nacks it.
func WithConfirms() ServerOption { return func(c *serverConfig) { c.confirms = true } }

// WithRequeueOnError says what a handler error does to its request:
// requeue it (true), or reject it without requeue (false, the default) so
// that it goes to the queue's dead-letter exchange, if it has one.
func WithRequeueOnError(requeue bool) ServerOption {
	return func(c *serverConfig) { c.requeueOnError = requeue }
}

// NewServer opens a channel on conn and starts consuming queue, which must
// exist; Serve handles the requests.
func NewServer(conn *amqp.Connection, queue string, h Handler, opts ...ServerOption) (*Server, error) {
	cfg := serverConfig{workers: 4}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.prefetch == 0 {
		cfg.prefetch = 2 * cfg.workers
	}
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("rpc: open channel: %w", err)
	}
	fail := func(what string, err error) (*Server, error) {
		ch.Close()
		return nil, fmt.Errorf("rpc: %s: %w", what, err)
	}
	if err := ch.Qos(cfg.prefetch, 0, false); err != nil {
		return fail("qos", err)
	}
	if cfg.confirms {
		if err := ch.Confirm(false); err != nil {
			return fail("confirm.select", err)
		}
	}
	s := &Server{ch: ch, h: h, cfg: cfg, stopping: make(chan struct{}), served: make(chan struct{})}
	s.closed = ch.NotifyClose(make(chan *amqp.Error, 1))
	s.tag = fmt.Sprintf("rpc-server-%p", s)
	s.requests, err = ch.Consume(queue, s.tag, false, false, false, false, nil)
	if err != nil {
		return fail("consume "+queue, err)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Serve handles requests until Shutdown, then returns nil once every
// handler has finished, or until the channel dies, then returns an error
// wrapping ErrConnectionLost.
func (s *Server) Serve() error {
	defer close(s.served)
	workers := make(chan struct{}, s.cfg.workers)
	for d := range s.requests {
		workers <- struct{}{}
		s.inFlight.Add(1)
		go func() {
			defer func() { <-workers; s.inFlight.Done() }()
			s.handle(d)
		}()
	}
	s.inFlight.Wait()
	select {
	case <-s.stopping:
		return nil
	default:
		return fmt.Errorf("%w: %v", ErrConnectionLost, <-s.closed)
	}
}

// handle runs the handler on one request, replies and settles it.
func (s *Server) handle(d amqp.Delivery) {
	reply, err := s.h(s.ctx, d)
	if err != nil {
		if s.cfg.requeueOnError {
			d.Nack(false, true)
		} else {
			d.Reject(false)
		}
		return
	}
	if d.ReplyTo != "" {
		reply.CorrelationId = d.CorrelationId
		s.sendMu.Lock()
		dc, err := s.ch.PublishWithDeferredConfirmWithContext(s.ctx, "", d.ReplyTo, false, false, reply)
		s.sendMu.Unlock()
		if err != nil {
			return // the channel is gone: the request is delivered again
		}
		if dc != nil { // confirm mode
			ok, err := dc.WaitContext(s.ctx)
			if err != nil {
				return
			}
			if !ok {
				d.Nack(false, true)
				return
			}
		}
	}
	d.Ack(false)
}

// Shutdown stops taking requests and waits until the ones in flight are
// handled, their replies sent and the requests acked (Serve has returned),
// or until ctx is done; then it cancels the handlers' context and closes
// the channel.
// Requests delivered but not handled go back to the queue.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() {
		close(s.stopping)
		s.sendMu.Lock()
		s.ch.Cancel(s.tag, false) // Serve's range ends once the deliveries have drained
		s.sendMu.Unlock()
	})
	var err error
	select {
	case <-s.served:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.cancel()
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if cerr := s.ch.Close(); cerr != nil && !errors.Is(cerr, amqp.ErrClosed) && err == nil {
		err = cerr
	}
	return err
}
