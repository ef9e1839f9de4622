// Package binding defines Binding, one routing edge of the AMQP 0-9-1
// exchange graph: from a source exchange to a destination queue or
// exchange, qualified by a routing (binding) key and an arguments table.
//
// The package owns only the value type and its identity rules (Equal and
// ArgsEqual): two bindings are the same edge when source, destination,
// destination kind, key and arguments are all equal, with arguments compared
// deeply and type-aware, as RabbitMQ compares its typed field tables.
//
// The package does no I/O and holds no shared state. Binding values are
// plain data; the Args map is never mutated by this package, and callers must
// not mutate an Args map after handing a Binding to a matcher. Anything that
// stores bindings (see package exchange) is not safe for concurrent use and
// relies on the caller to hold the appropriate lock.
package binding
