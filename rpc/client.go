package rpc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	amqp "github.com/rabbitmq/amqp091-go"
)

// DirectReplyTo is the pseudo-queue a client consumes for direct reply-to.
const DirectReplyTo = "amq.rabbitmq.reply-to"

var (
	// ErrClosed is returned by Call after Close.
	ErrClosed = errors.New("rpc: client closed")
	// ErrConnectionLost is wrapped by the error of every call that was
	// waiting, or is made, after the client's channel or connection died.
	ErrConnectionLost = errors.New("rpc: connection lost")
	// ErrNoRoute is returned when the broker returns a request as
	// unroutable: no queue was bound to take it.
	ErrNoRoute = errors.New("rpc: request unroutable")
)

// Client makes calls. It is safe for concurrent use.
type Client struct {
	ch      *amqp.Channel
	replyTo string // the reply_to of every request
	prefix  string // of every correlation id: unique to this client
	seq     atomic.Uint64
	done    chan struct{} // closed when the reply loop has ended

	// sendMu keeps a request's frames together against channel.close:
	// amqp091-go does not, and a method between a publish and its content
	// is a connection error (505).
	sendMu sync.Mutex

	mu      sync.Mutex // guards the fields below
	pending map[string]chan amqp.Delivery
	err     error // why the client stopped; nil while it works
}

// ClientOption configures a Client.
type ClientOption func(*clientConfig)

type clientConfig struct {
	replyQueue bool
}

// WithReplyQueue has the client receive replies on an exclusive,
// server-named queue it declares, instead of by direct reply-to.
func WithReplyQueue() ClientOption {
	return func(c *clientConfig) { c.replyQueue = true }
}

// NewClient opens a channel on conn and starts consuming replies on it.
func NewClient(conn *amqp.Connection, opts ...ClientOption) (*Client, error) {
	var cfg clientConfig
	for _, o := range opts {
		o(&cfg)
	}
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("rpc: open channel: %w", err)
	}
	replyTo := DirectReplyTo
	if cfg.replyQueue {
		q, err := ch.QueueDeclare("", false, true, true, false, nil)
		if err != nil {
			ch.Close()
			return nil, fmt.Errorf("rpc: declare reply queue: %w", err)
		}
		replyTo = q.Name
	}
	// Direct reply-to needs the consumer, in no-ack mode, on the channel
	// the requests are published on.
	replies, err := ch.Consume(replyTo, "", true, cfg.replyQueue, false, false, nil)
	if err != nil {
		ch.Close()
		return nil, fmt.Errorf("rpc: consume %s: %w", replyTo, err)
	}
	var id [8]byte
	rand.Read(id[:])
	c := &Client{
		ch: ch, replyTo: replyTo, prefix: hex.EncodeToString(id[:]) + "-",
		done: make(chan struct{}), pending: map[string]chan amqp.Delivery{},
	}
	returns := ch.NotifyReturn(make(chan amqp.Return, 16))
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	go c.loop(replies, returns, closed)
	return c, nil
}

// loop hands each reply to its call until the channel ends, then fails the
// calls still waiting.
func (c *Client) loop(replies <-chan amqp.Delivery, returns <-chan amqp.Return, closed <-chan *amqp.Error) {
	defer close(c.done)
	for {
		select {
		case d, ok := <-replies:
			if !ok {
				c.stop(fmt.Errorf("%w: %v", ErrConnectionLost, <-closed))
				return
			}
			if w := c.take(d.CorrelationId); w != nil {
				w <- d
			}
			// else: a late reply to a call that gave up, dropped
		case r, ok := <-returns:
			if ok {
				if w := c.take(r.CorrelationId); w != nil {
					close(w) // Call reads a closed channel as unroutable
				}
			} else {
				returns = nil
			}
		}
	}
}

// take removes and returns the call waiting for id, if any.
func (c *Client) take(id string) chan amqp.Delivery {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.pending[id]
	delete(c.pending, id)
	return w
}

// stop records why the client ended (the first reason wins) and fails the
// calls waiting.
func (c *Client) stop(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
	}
	for id, w := range c.pending {
		close(w)
		delete(c.pending, id)
	}
}

// Call publishes msg to exchange with routingKey as a request and waits
// for its reply. It sets msg's CorrelationId and ReplyTo; its other fields
// are sent as given. The request is mandatory: an unroutable one fails at
// once with ErrNoRoute.
func (c *Client) Call(ctx context.Context, exchange, routingKey string, msg amqp.Publishing) (amqp.Delivery, error) {
	id := c.prefix + strconv.FormatUint(c.seq.Add(1), 36)
	w := make(chan amqp.Delivery, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return amqp.Delivery{}, err
	}
	c.pending[id] = w
	c.mu.Unlock()

	msg.CorrelationId, msg.ReplyTo = id, c.replyTo
	c.sendMu.Lock()
	err := c.ch.PublishWithContext(ctx, exchange, routingKey, true, false, msg)
	c.sendMu.Unlock()
	if err != nil {
		c.take(id)
		if ctx.Err() != nil {
			return amqp.Delivery{}, ctx.Err()
		}
		return amqp.Delivery{}, fmt.Errorf("%w: publish: %v", ErrConnectionLost, err)
	}
	select {
	case d, ok := <-w:
		if ok {
			return d, nil
		}
		c.mu.Lock()
		err := c.err
		c.mu.Unlock()
		if err == nil {
			err = ErrNoRoute
		}
		return amqp.Delivery{}, err
	case <-ctx.Done():
		c.take(id)
		return amqp.Delivery{}, ctx.Err()
	}
}

// Close stops the client: calls waiting fail with ErrClosed, and so does
// every later one. It closes the client's channel, not the connection.
func (c *Client) Close() error {
	c.stop(ErrClosed)
	c.sendMu.Lock()
	err := c.ch.Close()
	c.sendMu.Unlock()
	<-c.done
	if errors.Is(err, amqp.ErrClosed) {
		err = nil // the connection had gone already
	}
	return err
}
