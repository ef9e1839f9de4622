// Package queue owns the state of one AMQP queue: its ready messages in
// FIFO order, the messages requeued back into their original position, the
// count of messages delivered but not yet acknowledged, and its consumers
// served round robin.
//
// A Queue does no I/O and starts no goroutine except the timer that expires
// messages with a TTL. Delivery is push-based: Publish, Kick and AddConsumer
// try to hand ready messages to consumers synchronously, under the queue's
// lock, by calling Consumer.Deliver; a consumer that has no credit left
// refuses and is asked again after it calls Kick. Lock order (see
// LOCKING.md): Queue.mu is taken before any lock a Consumer takes in Deliver,
// and no Queue method is called with another Queue's lock held.
//
// Messages that die (rejected without requeue, expired, dropped from the head
// of a full queue) are handed to the Dead hook after the lock is released, so
// the owner can dead-letter them.
package queue
