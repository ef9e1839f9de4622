// Package txn holds the work of one transactional AMQP channel (tx.select)
// until tx.commit applies it as one unit or tx.rollback discards it.
//
// A Buffer records publishes and acknowledgements in arrival order. It does no
// I/O and is not safe for concurrent use: the channel's owner (the connection
// reader) drives it and applies the ops it returns at commit.
package txn
