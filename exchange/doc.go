// Package exchange implements the routing tables of the four AMQP 0-9-1
// exchange types (direct, fanout, topic, headers) with RabbitMQ 3.x
// semantics, and Route, which resolves a publish through the exchange graph
// (exchange-to-exchange bindings and alternate exchanges).
//
// The package owns only in-memory matching: it does no I/O, knows nothing
// about queues, vhosts or persistence, and imports only package binding.
//
// # Concurrency
//
// A Matcher is not safe for concurrent use: the caller (the server) holds
// the lock that guards the exchange. Add, Remove and RemoveDestination need
// exclusive access. As a relaxation, Match, Bindings and Len do not modify
// shared matcher state except through internally synchronised structures
// (the topic result cache), so several goroutines may call them concurrently
// under a read lock, as long as no mutation runs at the same time. A
// RouteScratch belongs to one goroutine at a time.
//
// Binding argument maps handed to Add are retained, not copied; the caller
// must not mutate them afterwards.
package exchange
