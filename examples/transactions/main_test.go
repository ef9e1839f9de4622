package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/warrenmq/warren/server/servertest"
)

// Exactly the committed messages arrive, and only the committed ack counts.
func TestTransactions(t *testing.T) {
	b := servertest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, b.URL, &out); err != nil {
		t.Fatal(err)
	}
	want := `3 published, not committed:        0 ready
committed:                         3 ready
2 more published, rolled back:     3 ready
got "a", acked it, rolled back: it is still unacked
acked "a" again and committed
after the committed ack:           2 ready
left in the queue: "b"
left in the queue: "c"
`
	if out.String() != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out.String(), want)
	}
}
