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

// Every subscriber gets every message, in order, and nothing else.
func TestPublishSubscribe(t *testing.T) {
	url := extest.BrokerURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	logs := []string{"one", "two", "three"}
	const subscribers = 3
	if err := run(ctx, url, subscribers, logs, &out); err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for _, l := range logs {
		fmt.Fprintf(&want, " [x] Sent %q\n", l)
	}
	for s := 1; s <= subscribers; s++ {
		for _, l := range logs {
			fmt.Fprintf(&want, " [subscriber %d] %q\n", s, l)
		}
	}
	if out.String() != want.String() {
		t.Fatalf("output:\n%s\nwant:\n%s", out.String(), want.String())
	}
	if !extest.ExchangeGone(t, url, exchange) {
		t.Errorf("exchange %s is still there", exchange)
	}
}
