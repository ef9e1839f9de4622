package rpc

import (
	"context"
	"errors"
	"fmt"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Handler answers one request. Its reply is published to the request's
// reply_to with the request's correlation id (the reply's own
// CorrelationId is overwritten). An error sends no reply and rejects the
// request, or requeues it (WithRequeueOnError). ctx is cancelled when the
// server's channel dies or Shutdown gives up waiting: the request will be
// delivered again, so the work is wasted. A panic is not recovered.
type Handler func(ctx context.Context, req amqp.Delivery) (amqp.Publishing, error)

// Server consumes a request queue and replies to each request.
type Server struct {
	ch       *amqp.Channel
	queue    string
	h        Handler
	cfg      serverConfig
	tag      string
	requests <-chan amqp.Delivery
	cancels  <-chan string      // the broker cancelled the consumer
	closed   <-chan *amqp.Error // the channel closed, and why

	// sendMu keeps a reply's frames together against basic.cancel and
	// channel.close: amqp091-go writes a publish as separate frames and
	// sends those methods without waiting for them, and a method between
	// a publish and its content is a connection error (505). (Acks are
	// safe: amqp091-go orders them with publishes itself.)
	sendMu sync.Mutex

	ctx    context.Context // handlers' context
	cancel context.CancelFunc

	stopping chan struct{} // closed by the first Shutdown
	served   chan struct{} // closed when Serve has returned

	mu      sync.Mutex // guards the fields below
	started bool       // Serve has been called
	stopped bool       // Shutdown has been called
}

// ServerOption configures a Server.
type ServerOption func(*serverConfig)

type serverConfig struct {
	workers, prefetch int
	confirms          bool
	requeueOnError    bool
}

// DefaultWorkers is how many handlers a Server runs at once without
// WithWorkers.
const DefaultWorkers = 4

// WithWorkers bounds how many handlers run at once (default
// DefaultWorkers; at least 1).
func WithWorkers(n int) ServerOption { return func(c *serverConfig) { c.workers = max(n, 1) } }

// WithPrefetch sets the request channel's prefetch count, basic.qos
// (default twice the workers; at least 1).
func WithPrefetch(n int) ServerOption { return func(c *serverConfig) { c.prefetch = max(n, 1) } }

// WithConfirms publishes replies in confirm mode: a request is acked only
// once the broker has confirmed its reply, and requeued if it nacks it.
func WithConfirms() ServerOption { return func(c *serverConfig) { c.confirms = true } }

// WithRequeueOnError says what a handler error does to its request:
// requeue it (true: basic.nack with requeue, so it will be handled again),
// or reject it without requeue (false, the default) so that it goes to the
// queue's dead-letter exchange if it has one, and is dropped if not.
func WithRequeueOnError(requeue bool) ServerOption {
	return func(c *serverConfig) { c.requeueOnError = requeue }
}

// NewServer opens a channel on conn and starts consuming queue, which must
// exist (NewServer does not declare it), with manual acks; Serve handles
// the requests. conn must not have amqp091-go's automatic recovery
// (Config.Recovery).
func NewServer(conn *amqp.Connection, queue string, h Handler, opts ...ServerOption) (*Server, error) {
	cfg := serverConfig{workers: DefaultWorkers}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.prefetch == 0 {
		cfg.prefetch = 2 * cfg.workers
	}
	if conn.IsRecoveryEnabled() {
		return nil, errRecovery
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
	s := &Server{
		ch: ch, queue: queue, h: h, cfg: cfg,
		stopping: make(chan struct{}), served: make(chan struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.cancels = ch.NotifyCancel(make(chan string, 1))
	s.closed = ch.NotifyClose(make(chan *amqp.Error, 1))
	// A second listener cancels the handlers as soon as the channel dies.
	dead := ch.NotifyClose(make(chan *amqp.Error, 1))
	go func() {
		<-dead
		s.cancel()
	}()
	s.tag = fmt.Sprintf("rpc-server-%p", s)
	s.requests, err = ch.Consume(queue, s.tag, false, false, false, false, nil)
	if err != nil {
		return fail("consume "+queue, err)
	}
	return s, nil
}

// Serve handles requests until Shutdown, and then returns nil once the
// handlers in flight have finished. If the channel or connection dies, or
// the broker cancels the consumer (the queue was deleted), it returns an
// error wrapping ErrConnectionLost once the handlers have returned; their
// requests, unacked, are delivered again. Serve may be called only once.
func (s *Server) Serve() error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("rpc: Serve called twice")
	}
	s.started = true
	s.mu.Unlock()
	defer close(s.served)

	var workers sync.WaitGroup
	for range s.cfg.workers {
		workers.Go(s.work)
	}
	workers.Wait()

	select {
	case <-s.stopping:
		return nil
	default:
	}
	cancelled, e := endReason(s.cancels, s.closed)
	if !cancelled {
		return lost(e)
	}
	// The channel is still open, and now has no use.
	s.sendMu.Lock()
	s.ch.Close()
	s.sendMu.Unlock()
	return fmt.Errorf("%w: the broker cancelled the consumer of queue %q (deleted?)", ErrConnectionLost, s.queue)
}

// work handles requests one at a time until they stop. Once Shutdown has
// begun, the requests delivered but not yet started go back to the queue.
// They are nacked when the deliveries have ended, that is once the
// consumer is cancelled: nacked sooner, they could come straight back to
// it.
func (s *Server) work() {
	var notStarted []amqp.Delivery
	for d := range s.requests {
		select {
		case <-s.stopping:
			notStarted = append(notStarted, d)
		default:
			s.handle(d)
		}
	}
	for _, d := range notStarted {
		d.Nack(false, true)
	}
}

// handle runs the handler on one request, replies and settles it.
func (s *Server) handle(d amqp.Delivery) {
	reply, err := s.h(s.ctx, d)
	if s.ctx.Err() != nil {
		return // the channel is gone or going: d will be delivered again
	}
	if err == nil && d.ReplyTo != "" {
		var published bool
		published, err = s.reply(d, reply)
		if !published && err == nil {
			return // the channel is gone, or Shutdown gave up: it will be delivered again
		}
	}
	switch {
	case err == nil:
		d.Ack(false)
	case s.cfg.requeueOnError:
		d.Nack(false, true)
	default:
		d.Reject(false)
	}
}

// reply publishes reply to d's reply_to on the default exchange and, in
// confirm mode, waits for the broker to confirm it; a nack requeues d.
// It reports whether d may be acked, or the error that rejects it (a reply
// the client library refuses to send, such as a bad header value).
func (s *Server) reply(d amqp.Delivery, reply amqp.Publishing) (bool, error) {
	reply.CorrelationId = d.CorrelationId
	s.sendMu.Lock()
	dc, err := s.ch.PublishWithDeferredConfirmWithContext(s.ctx, "", d.ReplyTo, false, false, reply)
	s.sendMu.Unlock()
	if err != nil {
		var amqpErr *amqp.Error
		if errors.As(err, &amqpErr) || s.ctx.Err() != nil {
			return false, nil
		}
		return false, fmt.Errorf("rpc: publish reply: %w", err)
	}
	if dc == nil { // not in confirm mode
		return true, nil
	}
	select {
	case <-dc.Done():
	case <-s.ctx.Done():
		return false, nil
	}
	if !dc.Acked() {
		d.Nack(false, true) // nacked, or the channel died (then this fails, harmlessly)
		return false, nil
	}
	return true, nil
}

// Shutdown stops taking requests (it cancels the consumer) and waits until
// the handlers in flight have finished, their replies have been published
// (and, with WithConfirms, confirmed) and their requests acked; then it
// closes the server's channel, not the connection. Requests delivered to
// the server but not yet started go back to the queue. If ctx is done
// first, Shutdown cancels the handlers' context, closes the channel (the
// unfinished requests are delivered again) and returns ctx.Err(). It is
// safe to call more than once, and before Serve.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	first, started := !s.stopped, s.started
	s.stopped = true
	s.mu.Unlock()
	if first {
		close(s.stopping)
		s.sendMu.Lock()
		s.ch.Cancel(s.tag, false) // fails only if the channel is gone; the deliveries end either way
		s.sendMu.Unlock()
	}
	var err error
	if started {
		select {
		case <-s.served:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	s.cancel()
	s.sendMu.Lock()
	cerr := s.ch.Close() // waits for close-ok: the broker has had every ack
	s.sendMu.Unlock()
	if cerr != nil && !errors.Is(cerr, amqp.ErrClosed) && err == nil {
		err = cerr
	}
	return err
}
