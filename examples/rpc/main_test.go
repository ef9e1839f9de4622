package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/warrenmq/warren/examples/internal/extest"
)

// Both reply modes get every answer, in order.
func TestRPC(t *testing.T) {
	url := extest.BrokerURL(t)
	const n = 10
	var want strings.Builder
	for i := 0; i <= n; i++ {
		fmt.Fprintf(&want, " [x] Requesting fib(%d)\n [.] Got %d\n", i, fib(i))
	}
	if !strings.HasSuffix(want.String(), " [x] Requesting fib(10)\n [.] Got 55\n") {
		t.Fatalf("fib is wrong:\n%s", want.String())
	}
	for _, mode := range []string{"direct", "queue"} {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var out bytes.Buffer
			if err := run(ctx, url, mode, n, &out); err != nil {
				t.Fatal(err)
			}
			if out.String() != want.String() {
				t.Fatalf("output:\n%s\nwant:\n%s", out.String(), want.String())
			}
			if !extest.QueueGone(t, url, queue) {
				t.Errorf("queue %s is still there", queue)
			}
		})
	}
}

func TestRPCUnknownReplyMode(t *testing.T) {
	if err := run(context.Background(), "amqp://127.0.0.1:1/", "carrier-pigeon", 1, &bytes.Buffer{}); err == nil {
		t.Fatal("an unknown -reply-to was accepted")
	}
}
