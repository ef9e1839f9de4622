package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/warrenmq/warren/server/servertest"
)

func TestTopics(t *testing.T) {
	b := servertest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, b.URL, &out); err != nil {
		t.Fatal(err)
	}
	want := ` [critical] kern.critical: a critical kernel error
 [critical] app.critical: the app is down
 [kernel] kern.critical: a critical kernel error
 [kernel] kern.info: kernel booted
 [everything] kern.critical: a critical kernel error
 [everything] kern.info: kernel booted
 [everything] app.critical: the app is down
 [everything] app.web.info: request served
`
	if got := out.String(); !strings.HasSuffix(got, want) {
		t.Fatalf("output:\n%s\nwant it to end with:\n%s", got, want)
	}
}
