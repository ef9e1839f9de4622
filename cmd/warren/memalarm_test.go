package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestMemoryWatermarkFlag: the memory alarm, weighing the broker's real
// memory. A consumer with unlimited prefetch takes every message and acks
// none, so the broker holds them all (queues page out ready messages, not
// unacked ones). The publisher is blocked, low on memory, once the broker
// holds about the watermark, the node shows the alarm, and once the
// consumer acks what it has the alarm clears and every message arrives.
func TestMemoryWatermarkFlag(t *testing.T) {
	const (
		limit = 128 << 20
		size  = 64 << 10
		n     = 4096 // 256 MiB of bodies: twice the limit
	)
	_, lines := startWarren(t, nil, "--amqp-addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--vm-memory-high-watermark-absolute", strconv.Itoa(limit))
	addrs := waitForStart(t, lines)
	// Queues page out at half the watermark, as RabbitMQ's, since
	// --queue-memory was not given.
	if got := metric(t, "http://"+addrs["metrics"]+"/metrics", "warren_queue_memory_limit_bytes"); got != limit/2 {
		t.Fatalf("warren_queue_memory_limit_bytes %v, want half the watermark, %d", got, limit/2)
	}
	// The connections are not closed: a blocked one reads nothing,
	// connection.close included, and the broker is killed at cleanup.
	pubConn, consConn := dialGuest(t, addrs["amqp"]), dialGuest(t, addrs["amqp"])
	blocked := pubConn.NotifyBlocked(make(chan amqp.Blocking, 16))
	cons, err := consConn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cons.QueueDeclare("mem", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	msgs, err := cons.Consume("mem", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The consumer keeps only the count and the last tag. Once ackNow is
	// closed it acks what it has taken (multiple), and then each message
	// as it comes.
	var got atomic.Int64
	ackNow := make(chan struct{})
	consumed := make(chan error, 1)
	go func() {
		var last uint64
		acking := false
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					consumed <- amqp.ErrClosed
					return
				}
				last = m.DeliveryTag
				if acking {
					if err := m.Ack(false); err != nil {
						consumed <- err
						return
					}
				}
				if got.Add(1) == n {
					consumed <- nil
					return
				}
			case <-ackNow:
				ackNow, acking = nil, true
				if last > 0 {
					if err := cons.Ack(last, true); err != nil {
						consumed <- err
						return
					}
				}
			}
		}
	}()
	pub, err := pubConn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	published := make(chan error, 1)
	go func() {
		body := make([]byte, size)
		for range n {
			if err := pub.Publish("", "mem", false, false, amqp.Publishing{Body: body}); err != nil {
				published <- err
				return
			}
		}
		published <- nil
	}()

	select {
	case b := <-blocked:
		if !b.Active || b.Reason != "low on memory" {
			t.Fatalf("got %+v, want connection.blocked, low on memory", b)
		}
	case err := <-published:
		t.Fatalf("all %d messages published (err %v) and no connection.blocked", n, err)
	case <-time.After(60 * time.Second):
		t.Fatalf("no connection.blocked after %d of %d messages were delivered", got.Load(), n)
	}
	if k := got.Load(); k >= n {
		t.Fatalf("blocked with all %d messages delivered", k)
	}
	var nodes []struct {
		MemUsed  int64 `json:"mem_used"`
		MemLimit int64 `json:"mem_limit"`
		MemAlarm bool  `json:"mem_alarm"`
	}
	getJSON(t, "http://"+addrs["http"]+"/api/nodes", &nodes)
	if len(nodes) != 1 || !nodes[0].MemAlarm || nodes[0].MemLimit != limit || nodes[0].MemUsed < limit {
		t.Fatalf("nodes during the block: %+v, want one with the alarm, mem_limit %d and mem_used at or above it", nodes, limit)
	}

	close(ackNow)
	select {
	case b := <-blocked:
		if b.Active {
			t.Fatalf("got %+v, want connection.unblocked", b)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("no connection.unblocked after the consumer acked")
	}
	for _, c := range []chan error{published, consumed} {
		select {
		case err := <-c:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("after the alarm cleared, %d of %d messages arrived", got.Load(), n)
		}
	}
}

// TestQueueMemoryFromEnvironment: --queue-memory given through the
// environment or the config file wins over its default, which follows the
// memory alarm's watermark.
func TestQueueMemoryFromEnvironment(t *testing.T) {
	config := filepath.Join(t.TempDir(), "warren.conf")
	if err := os.WriteFile(config, []byte("queue-memory = 23456789\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		env  []string
		want float64
	}{
		{nil, 64 << 20},
		{[]string{"WARREN_QUEUE_MEMORY=12345678"}, 12345678},
		{[]string{"WARREN_CONFIG=" + config}, 23456789},
	} {
		_, lines := startWarren(t, c.env, "--amqp-addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--vm-memory-high-watermark-absolute", strconv.Itoa(128<<20))
		addrs := waitForStart(t, lines)
		if got := metric(t, "http://"+addrs["metrics"]+"/metrics", "warren_queue_memory_limit_bytes"); got != c.want {
			t.Errorf("with %q: warren_queue_memory_limit_bytes %v, want %v", c.env, got, c.want)
		}
	}
}

// getJSON gets url as guest and decodes its JSON into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("guest", "guest")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// metric gets a Prometheus endpoint and returns the value of the series
// named name (without labels).
func metric(t *testing.T, url, name string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return f
		}
	}
	t.Fatalf("%s not served at %s", name, url)
	return 0
}
