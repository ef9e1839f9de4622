package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/warrenmq/warren/server/servertest"
)

// Each strategy gets every message confirmed, and the queue holds them all.
func TestPublisherConfirms(t *testing.T) {
	b := servertest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, b.URL, 250, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("output:\n%s", out.String())
	}
	for i, s := range strategies {
		if !strings.HasPrefix(lines[i], s.name+":") || !strings.Contains(lines[i], "250 messages confirmed") || !strings.HasSuffix(lines[i], "the queue holds 250") {
			t.Errorf("line %d: %q", i, lines[i])
		}
	}
}
