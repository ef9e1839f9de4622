package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/warrenmq/warren/examples/internal/extest"
)

// Exactly the committed messages arrive, and only the committed acks
// count.
func TestTransactions(t *testing.T) {
	url := extest.BrokerURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, url, &out); err != nil {
		t.Fatal(err)
	}
	want := `published a, b, c:                     0 ready
committed:                             3 ready
published x, y and rolled back:        3 ready
 [x] Received a (redelivered: false)
acked in a rollback, channel closed:   3 ready
 [x] Received a (redelivered: true)
 [x] Received b (redelivered: false)
 [x] Received c (redelivered: false)
acked in a commit, channel closed:     0 ready
`
	if out.String() != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out.String(), want)
	}
	if !extest.QueueGone(t, url, queue) {
		t.Errorf("queue %s is still there", queue)
	}
}
