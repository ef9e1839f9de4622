// Package rpc is request/reply over AMQP 0-9-1, for Warren and RabbitMQ
// alike, built on github.com/rabbitmq/amqp091-go.
//
// # Client
//
// A Client sends requests and waits for their replies. Many goroutines may
// call at once through one Client: every request carries a correlation id
// of the client's own making (a random per-client prefix and a counter),
// and one reply consumer hands each reply to the call waiting for that id.
// Call sets the request's correlation_id and reply_to and keeps the
// caller's other properties.
//
// Replies come one of two ways:
//
//   - Direct reply-to, the default. The client consumes the pseudo-queue
//     amq.rabbitmq.reply-to in no-ack mode and publishes its requests on
//     that same channel (the broker requires both) with reply_to
//     amq.rabbitmq.reply-to, which the broker rewrites to
//     amq.rabbitmq.reply-to.<token>. A reply published to the default
//     exchange with that key goes straight to the client's consumer: no
//     queue is declared, and none is left behind. A reply whose client has
//     gone is dropped by the broker.
//   - A reply queue, with WithReplyQueue: an exclusive, auto-delete queue
//     with a server-named name, declared by NewClient and consumed in
//     no-ack mode; it goes away with the client's channel. It works with
//     brokers that lack direct reply-to, and replies wait in it (rather
//     than being dropped) while the client is slow.
//
// A call ends with the first of:
//
//   - its reply;
//   - its context: Call returns ctx.Err(), and a reply that comes later is
//     dropped (no other call can receive it);
//   - a return of the request by the broker (requests are published
//     mandatory): an error wrapping ErrNoRoute;
//   - the death of the client's channel or connection, or the broker
//     cancelling the reply consumer: an error wrapping ErrConnectionLost,
//     and the broker's *amqp.Error if it sent one. Calls waiting fail at
//     once, not at their deadline. The request may or may not have been
//     handled. The Client is then dead; make a new one.
//   - Close: ErrClosed.
//
// A request to an exchange that does not exist is a channel error in AMQP
// (404), so it ends the Client and every call in flight on it: declare
// exchanges before calling them.
//
// # Server
//
// A Server consumes a request queue (which it does not declare) on a
// channel of its own, with manual acks and a prefetch (WithPrefetch), and
// runs its Handler on a bounded number of workers (WithWorkers). For each
// request the handler answers, it publishes the reply to the default
// exchange with routing key reply_to and the request's correlation id, and
// acks the request only once the reply is published, or, WithConfirms,
// once the broker has confirmed it (a nack requeues the request).
//
// A request without reply_to is handled and acked, and gets no reply: it
// is a one-way message. On a handler error the request gets no reply and
// is rejected without requeue, so it goes to the queue's dead-letter
// exchange if it has one, or, WithRequeueOnError(true), it is requeued and
// handled again (by this server or another).
//
// Shutdown cancels the consumer, puts the requests delivered but not yet
// started back in the queue, waits for the handlers in flight to finish
// and their replies and acks to reach the broker, and closes the channel.
// Serve then returns nil. If the channel dies instead, Serve returns an
// error wrapping ErrConnectionLost and the requests not yet acked are
// delivered again by the broker.
//
// # Guarantees
//
// Delivery is at least once: a request may be handled twice if a server
// dies between replying and acking, or if its handler errs with
// WithRequeueOnError, so handlers should be idempotent. A client may see
// no reply at all (its context ends the call) if the server never answers
// or the reply is lost with its connection. Replies are matched to calls
// only by correlation id, and a Client accepts only ids it issued and
// still waits for.
//
// Client and Server do not survive their channel, and reject connections
// with amqp091-go's automatic recovery (Config.Recovery): after a failure,
// dial again and make new ones.
package rpc
