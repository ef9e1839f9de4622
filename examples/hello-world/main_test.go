package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/warrenmq/warren/examples/internal/extest"
)

func TestHelloWorld(t *testing.T) {
	url := extest.BrokerURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, url, &out); err != nil {
		t.Fatal(err)
	}
	if want := " [x] Sent Hello World!\n [x] Received Hello World!\n"; out.String() != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out.String(), want)
	}
	if !extest.QueueGone(t, url, queue) {
		t.Errorf("queue %s is still there", queue)
	}
}
