package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/warrenmq/warren/server/servertest"
)

func TestRouting(t *testing.T) {
	b := servertest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, b.URL, &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	want := ` [disk-writer] error: disk full
 [console] info: started
 [console] warning: disk at 80%
 [console] error: disk full
`
	if !strings.HasSuffix(got, want) {
		t.Fatalf("output:\n%s\nwant it to end with:\n%s", got, want)
	}
	if strings.Contains(got, "] debug") {
		t.Fatal("a debug message was delivered, but nobody binds debug")
	}
}
