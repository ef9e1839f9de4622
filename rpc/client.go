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

// Client makes calls. It is safe for concurrent use.
//
// A Client owns one channel, on which it publishes every request and
// consumes every reply. It stops for good when that channel dies: make a
// new Client (on a new connection if the old one is gone).
type Client struct {
	ch      *amqp.Channel
	replyTo string // the reply_to of every request
	prefix  string // of every correlation id: unique to this client
	seq     atomic.Uint64
	done    chan struct{} // closed when the reply loop has ended

	// sendMu keeps a request's frames together against channel.close:
	// amqp091-go writes a publish as separate frames and sends
	// channel.close without waiting for them, and a method between a
	// publish and its content is a connection error (505).
	sendMu sync.Mutex

	mu      sync.Mutex // guards the fields below
	pending map[string]chan result
	closed  bool  // Close has been called
	err     error // why the client stopped; nil while it works
}

// result ends one call.
type result struct {
	d   amqp.Delivery
	err error
}

// ClientOption configures a Client.
type ClientOption func(*clientConfig)

type clientConfig struct {
	replyQueue bool
}

// WithReplyQueue has the client receive replies on an exclusive,
// auto-delete, server-named queue it declares, instead of by direct
// reply-to.
func WithReplyQueue() ClientOption {
	return func(c *clientConfig) { c.replyQueue = true }
}

// NewClient opens a channel on conn and starts consuming replies on it.
// Closing the Client closes that channel, not conn. conn must not have
// amqp091-go's automatic recovery (Config.Recovery).
func NewClient(conn *amqp.Connection, opts ...ClientOption) (*Client, error) {
	var cfg clientConfig
	for _, o := range opts {
		o(&cfg)
	}
	if conn.IsRecoveryEnabled() {
		return nil, errRecovery
	}
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("rpc: open channel: %w", err)
	}
	fail := func(what string, err error) (*Client, error) {
		ch.Close()
		return nil, fmt.Errorf("rpc: %s: %w", what, err)
	}
	replyTo := DirectReplyTo
	if cfg.replyQueue {
		q, err := ch.QueueDeclare("", false, true, true, false, nil)
		if err != nil {
			return fail("declare reply queue", err)
		}
		replyTo = q.Name
	}
	// Listeners go first, so that nothing is missed. amqp091-go blocks its
	// reader on a full listener channel, so the reply loop drains them.
	returns := ch.NotifyReturn(make(chan amqp.Return, 16))
	cancels := ch.NotifyCancel(make(chan string, 1))
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	// Direct reply-to needs the consumer, in no-ack mode, on the channel
	// the requests are published on.
	replies, err := ch.Consume(replyTo, "", true, cfg.replyQueue, false, false, nil)
	if err != nil {
		return fail("consume "+replyTo, err)
	}
	var id [8]byte
	rand.Read(id[:])
	c := &Client{
		ch: ch, replyTo: replyTo, prefix: hex.EncodeToString(id[:]) + "-",
		done: make(chan struct{}), pending: map[string]chan result{},
	}
	go c.loop(replies, returns, cancels, closed)
	return c, nil
}

// loop hands each reply and each returned request to its call until the
// channel has closed, and fails the calls still waiting once the replies
// stop.
func (c *Client) loop(replies <-chan amqp.Delivery, returns <-chan amqp.Return, cancels <-chan string, closed <-chan *amqp.Error) {
	defer close(c.done)
	for replies != nil || returns != nil {
		select {
		case d, ok := <-replies:
			if ok {
				c.finish(d.CorrelationId, result{d: d}) // or, late, dropped
				continue
			}
			replies = nil
			cancelled, e := endReason(cancels, closed)
			if !cancelled {
				c.stop(lost(e))
				continue
			}
			// The broker cancelled the consumer (someone deleted the
			// reply queue): no reply can come, so the channel goes too,
			// which ends returns.
			c.stop(fmt.Errorf("%w: the broker cancelled the reply consumer on %s", ErrConnectionLost, c.replyTo))
			go func() {
				c.sendMu.Lock()
				defer c.sendMu.Unlock()
				c.ch.Close()
			}()
		case r, ok := <-returns:
			if !ok {
				returns = nil
				continue
			}
			c.finish(r.CorrelationId, result{err: fmt.Errorf("%w: %d %s", ErrNoRoute, r.ReplyCode, r.ReplyText)})
		}
	}
}

// finish ends the call waiting for id, if there is one.
func (c *Client) finish(id string, r result) {
	if w := c.take(id); w != nil {
		w <- r // never blocks: w has room for the one result it gets
	}
}

// take removes and returns the call waiting for id, if any.
func (c *Client) take(id string) chan result {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.pending[id]
	delete(c.pending, id)
	return w
}

// stop records why the client ended (the first reason wins) and fails the
// calls waiting with it.
func (c *Client) stop(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
	}
	for id, w := range c.pending {
		w <- result{err: c.errLocked()}
		delete(c.pending, id)
	}
}

// errLocked is the error a call gets now: ErrClosed after Close, else why
// the client stopped, or nil. c.mu must be held.
func (c *Client) errLocked() error {
	if c.closed {
		return ErrClosed
	}
	return c.err
}

// Call publishes msg to exchange with routingKey as a request and waits
// for its reply. It sets msg's CorrelationId (unique to the call) and
// ReplyTo; its other fields are sent as given.
//
// Call returns the reply; or ctx.Err() when ctx is done first (a reply
// that comes later is dropped); or an error wrapping ErrNoRoute when the
// broker returns the request as unroutable (it is published mandatory);
// or an error wrapping ErrConnectionLost when the client's channel or
// connection dies while it waits; or ErrClosed after Close. A request to
// an exchange that does not exist makes the broker close the channel, so
// it fails with ErrConnectionLost (404) and ends the Client.
//
// Publishing is not interruptible: if the broker has blocked the
// connection (a resource alarm), Call can stay in the publish past ctx's
// deadline.
func (c *Client) Call(ctx context.Context, exchange, routingKey string, msg amqp.Publishing) (amqp.Delivery, error) {
	id := c.prefix + strconv.FormatUint(c.seq.Add(1), 36)
	w := make(chan result, 1)
	c.mu.Lock()
	if err := c.errLocked(); err != nil {
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
		if ctxErr := ctx.Err(); ctxErr != nil {
			return amqp.Delivery{}, ctxErr
		}
		var amqpErr *amqp.Error
		if !errors.As(err, &amqpErr) {
			return amqp.Delivery{}, fmt.Errorf("rpc: publish: %w", err) // e.g. a bad header value
		}
		c.mu.Lock()
		stopped := c.errLocked()
		c.mu.Unlock()
		if stopped != nil {
			return amqp.Delivery{}, stopped
		}
		return amqp.Delivery{}, lost(amqpErr)
	}
	select {
	case r := <-w:
		return r.d, r.err
	case <-ctx.Done():
		c.take(id)
		return amqp.Delivery{}, ctx.Err()
	}
}

// Close stops the client: the calls waiting fail with ErrClosed, and so
// does every later one. It closes the client's channel (and so, with
// WithReplyQueue, deletes the reply queue), not the connection. It is safe
// to call more than once.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
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
