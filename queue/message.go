package queue

// Message is one published message. It is immutable once published and may be
// shared by every queue it was routed to.
type Message struct {
	Exchange   string
	RoutingKey string
	// Props is the content header's property flags and property list exactly
	// as the publisher sent them, so deliveries reproduce them byte for byte.
	Props []byte
	Body  []byte
	// Persistent is delivery_mode 2.
	Persistent bool
	// ExpiresAt is the per-message TTL from the expiration property, as Unix
	// nanoseconds, or 0 for none. A queue's own TTL is applied on top of it.
	ExpiresAt int64
}

// Size is the number of payload bytes the message holds.
func (m *Message) Size() int { return len(m.Body) }

// Entry is one message's place in one queue.
type Entry struct {
	Msg *Message
	// Seq orders the queue: requeued entries go back to their Seq position.
	Seq uint64
	// Redelivered is set once the entry has been delivered and requeued.
	Redelivered bool
	// Stored is set when the entry has been logged to the queue's Store:
	// settling or dropping it must delete it there.
	Stored bool
	// Returns counts the times the entry was delivered and requeued since
	// the queue was made or recovered (a quorum queue's x-delivery-count).
	Returns uint32
	// ExpiresAt is Unix nanoseconds after which the entry is dead, 0 for never.
	ExpiresAt int64
}

// DeadReason says why a message left its queue without being acknowledged.
type DeadReason string

// The reasons RabbitMQ records in the x-death header.
const (
	Rejected DeadReason = "rejected"
	Expired  DeadReason = "expired"
	MaxLen   DeadReason = "maxlen"
	// DeliveryLimit: requeued more often than Options.DeliveryLimit.
	DeliveryLimit DeadReason = "delivery_limit"
)

// Dead is a message that died in a queue, for dead-lettering.
type Dead struct {
	Entry  Entry
	Reason DeadReason
}
