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

// maxKeptOps is the most ops' room a buffer keeps for its next
// transaction; a larger one's is let go.
const maxKeptOps = 1024

// Drain calls f with each held op in arrival order, for commit, and
// empties the buffer. The buffer keeps its room for the next transaction,
// so a channel committing transactions of the same size allocates none.
func (b *Buffer[D]) Drain(f func(Op[D])) {
	ops := b.ops
	b.ops, b.bytes = nil, 0 // (an op f adds goes to a buffer of its own)
	for _, op := range ops {
		f(op)
	}
	if b.ops == nil {
		b.ops = keep(ops)
	}
}

// Rollback discards every held op.
func (b *Buffer[D]) Rollback() { b.ops, b.bytes = keep(b.ops), 0 }

// keep returns ops emptied, with nothing left for the garbage collector to
// trace, or nil if it is too large to keep.
func keep[D any](ops []Op[D]) []Op[D] {
	if cap(ops) > maxKeptOps {
		return nil
	}
	clear(ops)
	return ops[:0]
}
