package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/warrenmq/warren/server/servertest"
)

// Every subscriber gets every message, in order.
func TestPublishSubscribe(t *testing.T) {
	b := servertest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	logs := []string{"one", "two", "three"}
	if err := run(ctx, b.URL, 3, logs, &out); err != nil {
		t.Fatal(err)
	}
	for s := 1; s <= 3; s++ {
		var got []string
		for _, line := range strings.Split(out.String(), "\n") {
			if p := fmt.Sprintf(" [subscriber %d] ", s); strings.HasPrefix(line, p) {
				got = append(got, strings.Trim(strings.TrimPrefix(line, p), `"`))
			}
		}
		if strings.Join(got, ",") != "one,two,three" {
			t.Errorf("subscriber %d got %q", s, got)
		}
	}
}
