package store

// Publisher flow control. The logger runs at most maxUnapplied bytes of
// messages ahead of the checkpointer, and what it has not logged yet waits
// in the pending batch, in memory. Publishers that wait for confirms stop
// by themselves once their confirms stop coming. Those that do not, and
// transient messages that queues page out (confirmed at once), would grow
// the pending batch without bound while bbolt falls behind. So the broker
// stops reading from a connection whose publish was written to the store
// while the store is Over, until Throttle's channel is closed, as
// RabbitMQ's credit flow holds a publisher back when the message store of
// its queues falls behind.

const (
	// maxBacklog is the bytes (op.bytes) logged into batches and not yet
	// checkpointed above which the store is Over: the logger's own bound
	// and one checkpoint's worth more waiting for it.
	maxBacklog = maxUnapplied + checkpointBytes
	// flowResume is the backlog down to which publishers held back by
	// Throttle go on: half of maxBacklog, so that they are not held and
	// let go again with every batch.
	flowResume = maxBacklog / 2
)

// Over reports whether the store is behind: more than maxBacklog bytes of
// changes wait in memory to reach bbolt. A closing store is never Over.
// It takes no lock: publishers may call it after every publish.
func (s *Store) Over() bool {
	return s.backlog.Load() > maxBacklog && !s.closingNow.Load()
}

// Throttle returns a channel that is closed once the store's backlog is
// down to flowResume (or the store closes), or nil if it is not Over now.
func (s *Store) Throttle() <-chan struct{} {
	s.flowMu.Lock()
	defer s.flowMu.Unlock()
	if !s.Over() {
		return nil
	}
	if s.flow == nil {
		s.flow = make(chan struct{})
	}
	return s.flow
}

// resumeFlow lets the publishers held back by Throttle go once the backlog
// is down to flowResume or the store is closing. Call it, holding no
// store lock, after the backlog shrinks (a checkpoint, a failed batch).
func (s *Store) resumeFlow() {
	if s.backlog.Load() > flowResume && !s.closingNow.Load() {
		return
	}
	s.flowMu.Lock()
	if s.flow != nil {
		close(s.flow)
		s.flow = nil
	}
	s.flowMu.Unlock()
}
