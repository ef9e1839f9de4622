package main

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/warrenmq/warren/examples/internal/extest"
)

// Every task is done exactly once, and both workers get work.
func TestWorkQueues(t *testing.T) {
	url := extest.BrokerURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out bytes.Buffer
	const tasks = 10
	if err := run(ctx, url, tasks, 10*time.Millisecond, &out); err != nil {
		t.Fatal(err)
	}
	doneLine := regexp.MustCompile(`^ \[worker (\d)\] done (task \d+)\.+$`)
	timesDone := map[string]int{}
	perWorker := map[string]int{}
	for _, line := range strings.Split(out.String(), "\n") {
		if m := doneLine.FindStringSubmatch(line); m != nil {
			perWorker[m[1]]++
			timesDone[m[2]]++
		}
	}
	for i := 1; i <= tasks; i++ {
		if n := timesDone[fmt.Sprint("task ", i)]; n != 1 {
			t.Errorf("task %d done %d times", i, n)
		}
	}
	if len(timesDone) != tasks {
		t.Errorf("tasks done: %v", timesDone)
	}
	if perWorker["1"] == 0 || perWorker["2"] == 0 {
		t.Errorf("tasks per worker %v, want both to work", perWorker)
	}
	summary := fmt.Sprintf(" worker 1 did %d tasks\n worker 2 did %d tasks\n", perWorker["1"], perWorker["2"])
	if !strings.HasSuffix(out.String(), summary) {
		t.Errorf("output:\n%s\nwant it to end with:\n%s", out.String(), summary)
	}
	if !extest.QueueGone(t, url, queue) {
		t.Errorf("queue %s is still there", queue)
	}
}
