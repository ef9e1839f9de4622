// Package rpc is request/reply over AMQP 0-9-1, for Warren and RabbitMQ
// alike, built on github.com/rabbitmq/amqp091-go.
//
// A Client sends requests and waits for their replies. Many goroutines may
// call at once: every request carries a correlation id of the client's own
// making, and one reply consumer hands each reply to the call waiting for
// that id. Replies come by direct reply-to by default: the client consumes
// the pseudo-queue amq.rabbitmq.reply-to and the broker delivers replies
// straight to it, with no queue to declare or delete. WithReplyQueue uses
// an exclusive, server-named queue instead, for brokers or setups without
// direct reply-to.
//
// A call ends with its reply, with its context (deadline or cancellation:
// a reply that comes later is dropped), with ErrNoRoute when the broker
// returns the request as unroutable, or with an error wrapping
// ErrConnectionLost when the channel or connection dies while it waits.
//
// A Server consumes a request queue with manual acks and a prefetch, runs
// a Handler on a bounded number of workers, and publishes each reply to
// the request's reply_to on the default exchange with the request's
// correlation id. It acks a request only once its reply is published (with
// WithConfirms, once the broker has confirmed it), so a request whose
// server dies mid-way is delivered again. A request without reply_to is
// handled and acked, with no reply. On a handler error the request is
// rejected without requeue (so it can dead-letter), or requeued with
// WithRequeueOnError(true). Shutdown stops taking requests and waits for
// the ones in flight to finish.
//
// Delivery is at least once: a request may be handled twice if a server
// dies between replying and acking, so handlers should be idempotent.
package rpc
