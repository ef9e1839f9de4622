package queue

import "sync/atomic"

// Budget bounds the memory that the queues sharing it hold for ready
// messages together (Options.Budget), so that many queues with backlogs
// do not hold a window each: a message that would take the queues past it
// is paged out to the store even when its queue's window has room. It
// counts what each queue counts against its window (EntryCost), reserved
// in steps of BudgetChunk: a queue holding anything has reserved what it
// holds rounded up to a step, and gives steps back once it holds two fewer
// (see addMemLocked), so the budget over-counts by less than two steps a
// queue and takes one atomic add per step, not one per message. A queue
// with consumers may always hold BudgetFloor bytes, however full the
// budget: it can read its backlog back and deliver it, and messages that
// its consumers keep up with are not written to disk and read back.
type Budget struct {
	limit int64
	used  atomic.Int64
}

// BudgetChunk is the step in which queues reserve their memory from their
// budget.
const BudgetChunk = 16 << 10

// BudgetFloor is what a queue with consumers may hold in memory whatever
// its budget.
const BudgetFloor = 256 << 10

// NewBudget returns a budget of limit bytes.
func NewBudget(limit int64) *Budget { return &Budget{limit: limit} }

// Limit returns the budget's size in bytes.
func (b *Budget) Limit() int64 { return b.limit }

// Used returns what the queues sharing b have reserved of it.
func (b *Budget) Used() int64 { return b.used.Load() }

// room returns how many more bytes a queue holding held, of which it has
// reserved reserved, may take: its reservation's rest, and what the budget
// has left, or at least what takes it to floor. A nil budget has no bound.
func (b *Budget) room(held, reserved, floor int64) int64 {
	if b == nil {
		return 1 << 62
	}
	return max(b.limit-b.used.Load()+reserved-held, floor-held)
}

// add counts n more bytes (less, if negative) against b.
func (b *Budget) add(n int64) { b.used.Add(n) }
