package txn

import (
	"errors"

	"github.com/warrenmq/warren/queue"
)

// ErrTooLarge is returned when a transaction would hold more than its limit.
var ErrTooLarge = errors.New("transaction holds too much work")

// SettleKind is the acknowledgement method an op came from.
type SettleKind uint8

// The acknowledgement methods.
const (
	Ack SettleKind = iota
	Nack
	Reject
)

// Op is one held publish (Msg != nil) or acknowledgement.
type Op struct {
	// A publish.
	Msg       *queue.Message
	Mandatory bool

	// An acknowledgement.
	Kind     SettleKind
	Tag      uint64
	Multiple bool
	Requeue  bool
}

// Buffer holds a transaction's ops. The zero value has no limit.
type Buffer struct {
	// MaxBytes bounds the body bytes of held publishes; MaxOps bounds the
	// number of ops. Zero means no limit.
	MaxBytes int64
	MaxOps   int

	ops   []Op
	bytes int64
}

func (b *Buffer) add(op Op, size int64) error {
	if (b.MaxOps > 0 && len(b.ops)+1 > b.MaxOps) || (b.MaxBytes > 0 && b.bytes+size > b.MaxBytes) {
		return ErrTooLarge
	}
	b.ops = append(b.ops, op)
	b.bytes += size
	return nil
}

// Publish holds a publish until commit.
func (b *Buffer) Publish(m *queue.Message, mandatory bool) error {
	return b.add(Op{Msg: m, Mandatory: mandatory}, int64(m.Size()))
}

// Settle holds an acknowledgement until commit.
func (b *Buffer) Settle(kind SettleKind, tag uint64, multiple, requeue bool) error {
	return b.add(Op{Kind: kind, Tag: tag, Multiple: multiple, Requeue: requeue}, 0)
}

// Len is the number of held ops.
func (b *Buffer) Len() int { return len(b.ops) }

// Take returns the held ops in arrival order and empties the buffer, for
// commit.
func (b *Buffer) Take() []Op {
	ops := b.ops
	b.ops, b.bytes = nil, 0
	return ops
}

// Rollback discards every held op.
func (b *Buffer) Rollback() { b.ops, b.bytes = nil, 0 }
