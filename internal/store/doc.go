// Package store is Warren's only disk state: one bbolt file, warren.db in
// the data directory, holding durable topology (exchanges, queues,
// bindings) and queue entries (persistent messages of durable queues, and
// messages any queue paged out of memory). It implements queue.Store.
//
// # Logging, the commit loop and checkpoints
//
// Changes are logged, not written: Put, Delivered, Delete, DeleteRange and
// the topology methods append an op to the pending batch under Store.mu
// and return its id at once, so a queue may call them with its lock held.
// Store.mu is a leaf: nothing else is locked while it is held (Store.doneMu,
// which Wait sleeps on, and Store.logMu are other leaves).
//
// The commit loop (the logger) takes the pending batch as soon as it has
// ops or waiters (there is no timer: whatever is logged while a batch is
// being written goes into the next one), writes its ops as one record of
// the write-ahead log (wal.go: warren.wal.0 and warren.wal.1) with one
// fdatasync, and then, holding no lock, tells the batch's WatchSynced
// waiters: a publisher confirm or a tx.commit-ok needs nothing more. A
// batch whose write fails is dropped whole and logged at Error level.
// A small batch (a confirm at low load waits for it) is written and
// synced with raw system calls when the broker runs on more than one P
// and the last commit was fast, which keeps the runtime's monitor thread
// asleep through the fdatasync (rawio.go, rawCommit). A raw call keeps
// its P, and a stop-the-world (a GC starting, a GOMAXPROCS change) waits
// for it: the first fdatasync to stall after fast ones pauses the whole
// broker for as long as it lasts; the next commit, seeing it slow, goes
// through the runtime.
//
// The checkpointer then applies the logged batches to bbolt, many at a
// time (every 100 ms, or sooner when 8 MiB are waiting or a Wait asks), in
// one ordinary bbolt transaction that also records the last log record it
// holds, and tells the batches' Watch waiters (queues, which then read the
// entries back with Load) and Wait. The logger waits while more than
// maxUnapplied bytes of messages are logged and not yet checkpointed, and
// the store is Over while more than maxBacklog wait in all (logged or
// still pending): the broker then stops reading from the connections that
// publish into it (flow.go). So the memory that holds them stays near
// maxBacklog, even with publishers that do not wait for confirms (a held
// connection is still read one frame a second). A message published
// and settled between two checkpoints never reaches bbolt. Open applies whatever log
// records bbolt lacks before anything else reads the file, so a crash loses
// nothing that was synced.
//
// bbolt never shrinks its file, and keeps each free page of it in memory.
// After a checkpoint that leaves most of the file free and little in use
// (a drained backlog), the checkpointer copies the data into a new file
// and renames it over the old one (compact.go). New files have 16 KiB
// pages (filePageSize), so that the free page list of a large drained
// file is a quarter of what 4 KiB pages would make it.
//
// Within the pending batch, a Delete of an entry whose Put is still
// pending cancels the Put (and any pending Delivered), so a message
// published and settled before its batch is written is not even logged.
// Messages are kept by pointer and encoded by the logger and the
// checkpointer. Transient entries (paged out) are never logged: the next
// Open drops them anyway.
//
// # Layout
//
// Top-level buckets:
//
//	meta        "schema" → uint32 big-endian SchemaVersion (1)
//	            "checkpoint" → uint64 BE, the last log record applied
//	exchanges   name → version 1, flags (1 auto-delete, 2 internal),
//	            type (uvarint length + bytes), args (AMQP field table)
//	queues      name → version 1, flags (1 auto-delete), id (uint64 BE),
//	            args (field table)
//	bindings    uvarint-length-prefixed source, destination, kind byte
//	            (0 queue, 1 exchange), routing key, then a uint64 BE
//	            sequence number that tells apart bindings differing only in
//	            args → version 1, args (field table)
//	messages    queue id (uint64 BE) → a bucket per queue, holding:
//	    p       seq (uint64 BE) → record: persistent entries (a priority
//	            queue's seqs carry the priority in their top byte, so
//	            each priority is one range; Recover splits by it)
//	    t       seq → record: transient (paged-out) entries, dropped by Recover
//	    d       seq → 1: delivered marks (only for entries that exist)
//	    n       count and body bytes of p, two uint64 BE, updated in the same
//	            transaction as p, so Recover never scans entries
//
// A record is a version byte (1; its top bit, 0x80, marks an entry
// delivered before its record was written, in place of a mark in d),
// expiresAt (int64 BE, Unix ns, 0 for none), then exchange, routing key and
// properties each as a uvarint length and bytes, then the body up to the
// end. Decoding checks every length
// against the bytes left: a corrupt record is an error, never a panic.
//
// Queue buckets p, t and d are created on first use. A queue bucket with no
// queue record belongs to a non-durable queue that paged out; Recover drops
// it after a restart.
//
// Check and CheckDir verify bbolt's pages and these invariants.
package store
