package server

import (
	"sync/atomic"

	"github.com/warrenmq/warren/queue"
)

// connStats are one connection's message counters, the sources of
// RabbitMQ's rabbitmq_global_messages_* metrics. Each is written by the
// goroutine doing the work (the reader for publishes and acks, a queue's
// publisher for deliveries, the store loop for confirms) with an atomic
// add on the connection's own counters, so publishers on different
// connections do not contend on one global counter, and nothing takes a
// lock for them. Scrapes sum the open
// connections' counters and those folded into the server's totals when
// connections end.
type connStats struct {
	received               atomic.Uint64 // publishes whose content arrived
	receivedConfirm        atomic.Uint64 // of those, on a channel in confirm mode
	routed                 atomic.Uint64 // reached at least one queue
	unroutableDropped      atomic.Uint64 // reached none and were not mandatory
	unroutableReturned     atomic.Uint64 // reached none and were returned
	confirmed              atomic.Uint64 // basic.ack confirms settled (one per publish)
	deliveredConsumeAuto   atomic.Uint64 // basic.deliver to no-ack consumers
	deliveredConsumeManual atomic.Uint64 // basic.deliver to consumers that ack
	deliveredGetAuto       atomic.Uint64 // basic.get-ok with no-ack
	deliveredGetManual     atomic.Uint64 // basic.get-ok to be acked
	redelivered            atomic.Uint64 // deliveries and gets flagged redelivered
	acknowledged           atomic.Uint64 // deliveries settled by basic.ack
	getEmpty               atomic.Uint64 // basic.get-empty answers
}

// Counters is a snapshot of the broker's message counters since it
// started, summed over every connection: the values behind RabbitMQ's
// rabbitmq_global_messages_*_total metrics and the management API's
// message_stats.
type Counters struct {
	Received               uint64 `json:"received"`
	ReceivedConfirm        uint64 `json:"received_confirm"`
	Routed                 uint64 `json:"routed"`
	UnroutableDropped      uint64 `json:"unroutable_dropped"`
	UnroutableReturned     uint64 `json:"unroutable_returned"`
	Confirmed              uint64 `json:"confirmed"`
	DeliveredConsumeAuto   uint64 `json:"delivered_consume_auto_ack"`
	DeliveredConsumeManual uint64 `json:"delivered_consume_manual_ack"`
	DeliveredGetAuto       uint64 `json:"delivered_get_auto_ack"`
	DeliveredGetManual     uint64 `json:"delivered_get_manual_ack"`
	Redelivered            uint64 `json:"redelivered"`
	Acknowledged           uint64 `json:"acknowledged"`
	GetEmpty               uint64 `json:"get_empty"`

	// Messages that died in a queue (expired, dropped by a length limit,
	// rejected without requeue), by whether the queue has a dead-letter
	// exchange: RabbitMQ's rabbitmq_global_messages_dead_lettered_*_total
	// with dead_letter_strategy "at_most_once" and "disabled".
	DeadLetteredExpired  DeadLetterCounts `json:"dead_lettered_expired"`
	DeadLetteredMaxLen   DeadLetterCounts `json:"dead_lettered_maxlen"`
	DeadLetteredRejected DeadLetterCounts `json:"dead_lettered_rejected"`

	ConnectionsOpened uint64 `json:"connections_opened"`
	ConnectionsClosed uint64 `json:"connections_closed"`
	ChannelsOpened    uint64 `json:"channels_opened"`
	ChannelsClosed    uint64 `json:"channels_closed"`
	QueuesDeclared    uint64 `json:"queues_declared"`
	QueuesCreated     uint64 `json:"queues_created"`
	QueuesDeleted     uint64 `json:"queues_deleted"`
}

// DeadLetterCounts split dead messages by what became of them.
type DeadLetterCounts struct {
	AtMostOnce uint64 `json:"at_most_once"` // republished to the dead-letter exchange
	Disabled   uint64 `json:"disabled"`     // dropped: the queue has no dead-letter exchange
}

// Delivered is every message handed to a client: consumed or got, with or
// without acknowledgement (rabbitmq_global_messages_delivered_total).
func (c Counters) Delivered() uint64 {
	return c.DeliveredConsumeAuto + c.DeliveredConsumeManual + c.DeliveredGetAuto + c.DeliveredGetManual
}

// add adds a connection's counters to c.
func (c *Counters) add(s *connStats) {
	c.Received += s.received.Load()
	c.ReceivedConfirm += s.receivedConfirm.Load()
	c.Routed += s.routed.Load()
	c.UnroutableDropped += s.unroutableDropped.Load()
	c.UnroutableReturned += s.unroutableReturned.Load()
	c.Confirmed += s.confirmed.Load()
	c.DeliveredConsumeAuto += s.deliveredConsumeAuto.Load()
	c.DeliveredConsumeManual += s.deliveredConsumeManual.Load()
	c.DeliveredGetAuto += s.deliveredGetAuto.Load()
	c.DeliveredGetManual += s.deliveredGetManual.Load()
	c.Redelivered += s.redelivered.Load()
	c.Acknowledged += s.acknowledged.Load()
	c.GetEmpty += s.getEmpty.Load()
}

// brokerStats count rare events: connections, channels and queues coming
// and going.
type brokerStats struct {
	connectionsOpened atomic.Uint64
	connectionsClosed atomic.Uint64
	channelsOpened    atomic.Uint64
	channelsClosed    atomic.Uint64
	queuesDeclared    atomic.Uint64
	queuesCreated     atomic.Uint64
	queuesDeleted     atomic.Uint64
	// dead counts dead messages by reason (deadExpired, deadMaxLen,
	// deadRejected) and strategy (0 at most once, 1 disabled).
	dead [3][2]atomic.Uint64
}

const (
	deadExpired = iota
	deadMaxLen
	deadRejected
)

// countDead counts a queue's dead messages.
func (b *brokerStats) countDead(dead []queue.Dead, hasDLX bool) {
	strategy := 0
	if !hasDLX {
		strategy = 1
	}
	for _, d := range dead {
		switch d.Reason {
		case queue.Expired:
			b.dead[deadExpired][strategy].Add(1)
		case queue.MaxLen:
			b.dead[deadMaxLen][strategy].Add(1)
		case queue.Rejected:
			b.dead[deadRejected][strategy].Add(1)
		}
	}
}

// Counters returns the message counters since the broker started.
func (s *Server) Counters() Counters {
	s.mu.Lock()
	c := s.closedTotals
	for cn := range s.conns {
		c.add(&cn.stats)
	}
	s.mu.Unlock()
	c.add(&s.adminStats)
	b := &s.vhost.stats
	c.ConnectionsOpened = b.connectionsOpened.Load()
	c.ConnectionsClosed = b.connectionsClosed.Load()
	c.ChannelsOpened = b.channelsOpened.Load()
	c.ChannelsClosed = b.channelsClosed.Load()
	c.QueuesDeclared = b.queuesDeclared.Load()
	c.QueuesCreated = b.queuesCreated.Load()
	c.QueuesDeleted = b.queuesDeleted.Load()
	load := func(reason int) DeadLetterCounts {
		return DeadLetterCounts{AtMostOnce: b.dead[reason][0].Load(), Disabled: b.dead[reason][1].Load()}
	}
	c.DeadLetteredExpired, c.DeadLetteredMaxLen, c.DeadLetteredRejected = load(deadExpired), load(deadMaxLen), load(deadRejected)
	return c
}
