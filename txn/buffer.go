package txn

import (
	"errors"
	"fmt"

	"github.com/warrenmq/warren/queue"
)

// ErrTooLarge is returned when a transaction would hold more than one of
// its limits; errors.Is tells ErrTooManyOps from ErrTooManyBytes.
var (
	ErrTooLarge     = errors.New("transaction holds too much work")
	ErrTooManyOps   = fmt.Errorf("%w: too many publishes and acknowledgements", ErrTooLarge)
	ErrTooManyBytes = fmt.Errorf("%w: too many message body bytes", ErrTooLarge)
)

// SettleKind is the acknowledgement method an op came from.
type SettleKind uint8

// The acknowledgement methods.
const (
	Ack SettleKind = iota
	Nack
	Reject
)

// Op is one held publish (Msg != nil) or acknowledgement. D is where a
// publish goes: the caller routes a publish when it arrives, as RabbitMQ
// does, and delivers it to those destinations at commit.
type Op[D any] struct {
	// A publish.
	Msg       *queue.Message
	Mandatory bool
	Dest      D

	// An acknowledgement.
	Kind     SettleKind
	Tag      uint64
	Multiple bool
	Requeue  bool
}

// Buffer holds a transaction's ops. The zero value has no limit.
type Buffer[D any] struct {
	// MaxBytes bounds the body bytes of held publishes; MaxOps bounds the
	// number of ops. Zero means no limit.
	MaxBytes int64
	MaxOps   int

	ops   []Op[D]
	bytes int64
}

func (b *Buffer[D]) add(op Op[D], size int64) error {
	if b.MaxOps > 0 && len(b.ops)+1 > b.MaxOps {
		return ErrTooManyOps
	}
	if b.MaxBytes > 0 && b.bytes+size > b.MaxBytes {
		return ErrTooManyBytes
	}
	b.ops = append(b.ops, op)
	b.bytes += size
	return nil
}

// Publish holds a publish to dest until commit.
func (b *Buffer[D]) Publish(m *queue.Message, mandatory bool, dest D) error {
	return b.add(Op[D]{Msg: m, Mandatory: mandatory, Dest: dest}, int64(m.Size()))
}

// Settle holds an acknowledgement until commit.
func (b *Buffer[D]) Settle(kind SettleKind, tag uint64, multiple, requeue bool) error {
	return b.add(Op[D]{Kind: kind, Tag: tag, Multiple: multiple, Requeue: requeue}, 0)
}

// Len is the number of held ops.
func (b *Buffer[D]) Len() int { return len(b.ops) }

// Take returns the held ops in arrival order and empties the buffer, for
// commit.
func (b *Buffer[D]) Take() []Op[D] {
	ops := b.ops
	b.ops, b.bytes = nil, 0
	return ops
}

// Rollback discards every held op.
func (b *Buffer[D]) Rollback() { b.ops, b.bytes = nil, 0 }
