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

// Each strategy gets every message confirmed, and the queue then holds
// them all. Timings are printed but not checked.
func TestPublisherConfirms(t *testing.T) {
	url := extest.BrokerURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	const n = 250
	if err := run(ctx, url, n, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != len(strategies) {
		t.Fatalf("output:\n%s", out.String())
	}
	for i, s := range strategies {
		if !strings.HasPrefix(lines[i], s.name+":") ||
			!strings.Contains(lines[i], fmt.Sprintf(" %d messages confirmed in ", n)) ||
			!strings.HasSuffix(lines[i], fmt.Sprintf("; the queue holds %d", n)) {
			t.Errorf("line %d: %q", i, lines[i])
		}
	}
	if !extest.QueueGone(t, url, queue) {
		t.Errorf("queue %s is still there", queue)
	}
}
