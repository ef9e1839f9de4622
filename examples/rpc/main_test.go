package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/warrenmq/warren/server/servertest"
)

func TestRPC(t *testing.T) {
	b := servertest.Start(t)
	for _, mode := range []string{"direct", "queue"} {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var out bytes.Buffer
			if err := run(ctx, b.URL, mode, 10, &out); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(out.String(), " [.] fib(0) = 0\n [.] fib(1) = 1\n") || !strings.HasSuffix(out.String(), " [.] fib(10) = 55\n") {
				t.Fatalf("output:\n%s", out.String())
			}
		})
	}
	if err := run(context.Background(), b.URL, "carrier-pigeon", 1, &bytes.Buffer{}); err == nil {
		t.Fatal("an unknown -reply-to was accepted")
	}
}
