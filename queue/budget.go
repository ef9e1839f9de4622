package queue

import "sync/atomic"

// Budget bounds the memory that the queues sharing it hold for ready
// messages together (Options.Budget), so that many queues with backlogs
// do not hold a window each: a message that would take the queues past it
// is paged out to the store even when its queue's window has room. It
// counts what each queue counts against its window (EntryCost). A queue
// with consumers may always hold BudgetFloor bytes, however full the
// budget: it can read its backlog back and deliver it, and messages that
// its consumers keep up with are not written to disk and read back. So
// the budget is approximate, as the window is: the queues may hold up to
// BudgetFloor more for each queue being consumed, and BudgetChunk more or
// less for each queue holding messages (see addMemLocked).
type Budget struct {
	limit int64
	used  atomic.Int64
}

// BudgetChunk is how far a queue's memory may move before its budget
// hears of it: the budget may be off by this much for each queue holding
// messages.
const BudgetChunk = 64 << 10

// BudgetFloor is what a queue with consumers may hold in memory whatever
// its budget.
const BudgetFloor = 256 << 10

// NewBudget returns a budget of limit bytes.
func NewBudget(limit int64) *Budget { return &Budget{limit: limit} }

// Limit returns the budget's size in bytes.
func (b *Budget) Limit() int64 { return b.limit }

// Used returns what the queues sharing b hold now.
func (b *Budget) Used() int64 { return b.used.Load() }

// room returns how many more bytes a queue holding held may take, at
// least what takes it to floor. A nil budget has no bound.
func (b *Budget) room(held, floor int64) int64 {
	if b == nil {
		return 1 << 62
	}
	return max(b.limit-b.used.Load(), floor-held)
}

// add counts n more bytes (less, if negative) against b, if b is set.
func (b *Budget) add(n int64) {
	if b != nil {
		b.used.Add(n)
	}
}
