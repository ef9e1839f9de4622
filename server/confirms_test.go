package server

import (
	"testing"
	"time"

	"github.com/warrenmq/warren/confirm"
	"github.com/warrenmq/warren/internal/store"
	"github.com/warrenmq/warren/queue"
)

// TestConfirmAfterItsBatchIsReported: publishes A and B are written in one
// store batch; the channel registers on it for A, and the batch is
// reported done before B's confirm is settled. B must not wait for a
// report that will never come.
func TestConfirmAfterItsBatchIsReported(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c := &conn{vh: &vhost{store: st}, out: newOutbox(nil, func(func()) {})}
	ch := &channel{c: c, id: 1, confirm: &confirm.Tracker{}}
	m := &queue.Message{Persistent: true, Body: []byte("m")}

	st.Hold() // A and B in one batch
	a := st.Put(1, 1, m, 0, false)
	ch.settleConfirm(a, a, false) // registers on the batch
	b := st.Put(1, 2, m, 0, false)
	st.Release()
	if b != a {
		t.Fatalf("A in batch %d, B in %d", a, b)
	}
	for {
		ch.confirmMu.Lock()
		done := len(ch.awaiting) == 0 // A settled by the batch's report
		ch.confirmMu.Unlock()
		if done {
			break
		}
		time.Sleep(time.Millisecond)
	}
	ch.settleConfirm(b, b, false)

	ch.confirmMu.Lock()
	ch.confirm.Emit(func(uint64, bool, bool) {})
	left := ch.confirm.Outstanding()
	ch.confirmMu.Unlock()
	if left != 0 {
		t.Fatalf("%d confirms still wait for their batch, which is done", left)
	}
}
