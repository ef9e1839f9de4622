package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/warrenmq/warren/examples/internal/extest"
)

// Each subscriber gets the severities it bound, and nobody gets debug.
func TestRouting(t *testing.T) {
	url := extest.BrokerURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, url, &out); err != nil {
		t.Fatal(err)
	}
	want := ` [x] Sent info: started
 [x] Sent warning: disk at 80%
 [x] Sent error: disk full
 [x] Sent debug: nobody binds debug, so this goes nowhere
 [disk-writer] error: disk full
 [console] info: started
 [console] warning: disk at 80%
 [console] error: disk full
`
	if got := out.String(); got != want {
		t.Fatalf("output:\n%s\nwant:\n%s", got, want)
	}
	if !extest.ExchangeGone(t, url, exchange) {
		t.Errorf("exchange %s is still there", exchange)
	}
}
