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
	ops := b.Take()
	if len(ops) != 2 || ops[0].Msg != m || !ops[0].Mandatory || ops[0].Dest != "q1" || ops[1].Kind != Nack || ops[1].Tag != 7 || !ops[1].Multiple {
		t.Fatalf("ops = %+v", ops)
	}
	if b.Len() != 0 {
		t.Fatalf("Len after Take = %d", b.Len())
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
