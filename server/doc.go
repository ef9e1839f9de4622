// Package server is Warren's AMQP 0-9-1 broker: it accepts connections,
// runs the handshake, and wires channels to the domain packages (exchange
// routing, queue, confirm, txn) through the generated codec in
// internal/wire.
//
// Goroutines: one accept loop (Serve); per connection a reader (conn.serve)
// that owns the connection's and its channels' state and does all routing
// and enqueueing, and a writer (outbox.run) that owns the socket's write
// side and flushes once per burst. There is no goroutine per channel and
// none per queue: queues deliver synchronously, from whichever goroutine
// made a message or credit available, into the consumer connection's outbox.
// LOCKING.md gives the one lock order.
//
// Exceptions are *amqpError values: handle returns one, and its reply code
// decides (wire.IsHardError) whether the channel or the connection closes.
// As in RabbitMQ, an exception before tune-ok, or a method frame whose ids
// are unknown, closes the socket without connection.close (readLoop).
package server
