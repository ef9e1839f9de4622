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

// Every task is done exactly once, and both workers get work.
func TestWorkQueues(t *testing.T) {
	b := servertest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer
	const tasks = 10
	if err := run(ctx, b.URL, tasks, &out); err != nil {
		t.Fatal(err)
	}
	perWorker := map[string]int{}
	for i := 1; i <= tasks; i++ {
		task := fmt.Sprintf("done task %d.", i)
		n := 0
		for _, line := range strings.Split(out.String(), "\n") {
			if strings.Contains(line, task) {
				n++
				perWorker[strings.Fields(line)[1]]++
			}
		}
		if n != 1 {
			t.Errorf("task %d done %d times", i, n)
		}
	}
	if len(perWorker) != 2 {
		t.Errorf("work per worker %v, want both to work", perWorker)
	}
}
