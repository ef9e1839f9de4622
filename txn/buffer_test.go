package txn

import (
	"errors"
	"testing"

	"github.com/warrenmq/warren/queue"
)

func TestBufferKeepsOrderAndEmpties(t *testing.T) {
	var b Buffer[string]
	m := &queue.Message{Body: []byte("x")}
	if err := b.Publish(m, true, "q1"); err != nil {
		t.Fatal(err)
	}
	if err := b.Settle(Nack, 7, true, false); err != nil {
		t.Fatal(err)
	}
	var ops []Op[string]
	b.Drain(func(op Op[string]) { ops = append(ops, op) })
	if len(ops) != 2 || ops[0].Msg != m || !ops[0].Mandatory || ops[0].Dest != "q1" || ops[1].Kind != Nack || ops[1].Tag != 7 || !ops[1].Multiple {
		t.Fatalf("ops = %+v", ops)
	}
	if b.Len() != 0 {
		t.Fatalf("Len after Drain = %d", b.Len())
	}
}

func TestBufferLimits(t *testing.T) {
	b := Buffer[string]{MaxOps: 2, MaxBytes: 10}
	if err := b.Publish(&queue.Message{Body: make([]byte, 11)}, false, ""); !errors.Is(err, ErrTooManyBytes) || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized publish: err = %v", err)
	}
	b.Settle(Ack, 1, false, false)
	b.Settle(Ack, 2, false, false)
	if err := b.Settle(Ack, 3, false, false); !errors.Is(err, ErrTooManyOps) || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("third op: err = %v", err)
	}
	b.Rollback()
	if err := b.Settle(Ack, 3, false, false); err != nil {
		t.Fatalf("after rollback: %v", err)
	}
}

// A committed or rolled-back buffer keeps its room: the next transaction
// of the same size allocates nothing, and no op of the last one is seen
// again.
func TestBufferReusesRoom(t *testing.T) {
	var b Buffer[int]
	m := &queue.Message{Body: []byte("x")}
	fill := func(n int) {
		for i := 0; i < n; i++ {
			if err := b.Publish(m, false, i); err != nil {
				t.Fatal(err)
			}
		}
	}
	fill(10)
	b.Drain(func(Op[int]) {})
	allocs := testing.AllocsPerRun(100, func() {
		fill(10)
		seen := 0
		b.Drain(func(op Op[int]) {
			if op.Dest != seen {
				t.Fatalf("op %d has dest %d", seen, op.Dest)
			}
			seen++
		})
		if seen != 10 {
			t.Fatalf("drained %d ops, want 10", seen)
		}
	})
	if allocs != 0 {
		t.Errorf("a transaction of 10 on a used buffer allocates %.0f times, want 0", allocs)
	}
	fill(3)
	b.Rollback()
	n := 0
	b.Drain(func(Op[int]) { n++ })
	if n != 0 {
		t.Fatalf("Drain after Rollback saw %d ops", n)
	}
}
