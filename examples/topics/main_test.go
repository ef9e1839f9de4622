package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/warrenmq/warren/examples/internal/extest"
)

// "*" matches exactly one word and "#" zero or more.
func TestTopics(t *testing.T) {
	url := extest.BrokerURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, url, &out); err != nil {
		t.Fatal(err)
	}
	want := ` [x] Sent kern.critical: a critical kernel error
 [x] Sent kern.info: kernel booted
 [x] Sent kern: kern.# matches this key with # as zero words
 [x] Sent app.critical: the app is down
 [x] Sent app.web.critical: *.critical does not match two words before critical
 [critical] kern.critical: a critical kernel error
 [critical] app.critical: the app is down
 [kernel] kern.critical: a critical kernel error
 [kernel] kern.info: kernel booted
 [kernel] kern: kern.# matches this key with # as zero words
 [everything] kern.critical: a critical kernel error
 [everything] kern.info: kernel booted
 [everything] kern: kern.# matches this key with # as zero words
 [everything] app.critical: the app is down
 [everything] app.web.critical: *.critical does not match two words before critical
`
	if got := out.String(); got != want {
		t.Fatalf("output:\n%s\nwant:\n%s", got, want)
	}
	if !extest.ExchangeGone(t, url, exchange) {
		t.Errorf("exchange %s is still there", exchange)
	}
}
