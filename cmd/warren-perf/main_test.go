package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/warrenmq/warren/server/servertest"
)

// perf runs warren-perf against a broker and returns its summary and
// output. The run is bounded by its own -C/-z; ctx bounds it again.
func perf(t *testing.T, url string, args ...string) (*summary, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	s, err := runMain(ctx, append([]string{"-h", url}, args...), &out)
	if err != nil {
		t.Fatalf("warren-perf %v: %v\n%s", args, err, out.String())
	}
	if len(s.Errors) > 0 {
		t.Fatalf("warren-perf %v: errors %v", args, s.Errors)
	}
	return s, out.String()
}

// gone checks the run deleted what it declared.
func gone(t *testing.T, url string, queues []string, exchange string) {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range queues {
		ch, _ := conn.Channel()
		if _, err := ch.QueueDeclarePassive(q, false, false, false, false, nil); err == nil {
			t.Errorf("queue %s left behind", q)
			ch.Close()
		}
	}
	if exchange != "" {
		ch, _ := conn.Channel()
		if err := ch.ExchangeDeclarePassive(exchange, "direct", false, false, false, false, nil); err == nil {
			t.Errorf("exchange %s left behind", exchange)
			ch.Close()
		}
	}
}

func TestCountsAndCleanup(t *testing.T) {
	b := servertest.Start(t)
	for _, client := range []string{"lean", "amqp091"} {
		t.Run(client, func(t *testing.T) {
			id := "t1" + client
			s, out := perf(t, b.URL, "--id", id, "--client", client, "-x", "2", "-y", "2", "-s", "100", "-c", "10", "-f", "persistent", "-q", "20", "-A", "5", "-C", "500", "-D", "500", "--quiet")
			if s.Sent != 1000 || s.Confirmed != 1000 || s.Received != 1000 || s.Nacked != 0 {
				t.Errorf("sent %d confirmed %d received %d nacked %d, want 1000 each (0 nacked)", s.Sent, s.Confirmed, s.Received, s.Nacked)
			}
			if s.Latency == nil || s.Latency.Count != 1000 || s.ConfirmLatency == nil || s.ConfirmLatency.Count != 1000 {
				t.Errorf("latency summaries = %+v %+v", s.Latency, s.ConfirmLatency)
			}
			if s.Latency != nil && !(s.Latency.Min <= s.Latency.P50 && s.Latency.P50 <= s.Latency.P99 && s.Latency.P99 <= s.Latency.Max) {
				t.Errorf("percentiles out of order: %+v", s.Latency)
			}
			if want := "-x 2 -y 2 -s 100 -q 20 -c 10 -f persistent --client " + client; s.Product != "Warren" || s.Scenario != want {
				t.Errorf("product %q scenario %q, want Warren and %q", s.Product, s.Scenario, want)
			}
			// The last line is the JSON summary.
			lines := strings.Split(strings.TrimSpace(out), "\n")
			var js summary
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &js); err != nil || js.Sent != 1000 {
				t.Errorf("last line is not the summary: %q (%v)", lines[len(lines)-1], err)
			}
			gone(t, b.URL, []string{"warren-perf-" + id + "-0"}, "warren-perf-"+id)
			// The broker is this process: its CPU was measured.
			if s.BrokerPID != os.Getpid() {
				t.Errorf("broker pid %d, want this test's %d", s.BrokerPID, os.Getpid())
			}
		})
	}
}

func TestModes(t *testing.T) {
	b := servertest.Start(t)
	for _, client := range []string{"lean", "amqp091"} {
		t.Run("transactions "+client, func(t *testing.T) {
			s, _ := perf(t, b.URL, "--id", "tx"+client, "--client", client, "-m", "10", "-f", "persistent", "-C", "100", "-D", "100", "-a", "--quiet")
			if s.Commits != 10 || s.Received != 100 || s.CommitLatency == nil || s.CommitLatency.Count != 10 {
				t.Errorf("commits %d received %d commit latency %+v", s.Commits, s.Received, s.CommitLatency)
			}
		})
		t.Run("priorities "+client, func(t *testing.T) {
			s, _ := perf(t, b.URL, "--id", "prio"+client, "--client", client, "--max-priority", "2", "-c", "5", "-f", "persistent", "-C", "60", "-D", "60", "--quiet")
			if s.Sent != 60 || s.Confirmed != 60 || s.Received != 60 || !strings.Contains(s.Scenario, "--max-priority 2") {
				t.Errorf("sent %d confirmed %d received %d, scenario %q", s.Sent, s.Confirmed, s.Received, s.Scenario)
			}
		})
		t.Run("mandatory "+client, func(t *testing.T) {
			// A key no binding matches: every message comes back.
			s, _ := perf(t, b.URL, "--id", "mand"+client, "--client", client, "-t", "topic", "-k", "nowhere", "-f", "mandatory", "-c", "5", "-C", "50", "--quiet")
			if s.Sent != 50 || s.Returned != 50 || s.Confirmed != 50 {
				t.Errorf("sent %d returned %d confirmed %d, want 50 each", s.Sent, s.Returned, s.Confirmed)
			}
		})
	}
	for _, client := range []string{"lean", "amqp091"} {
		for _, mode := range []string{"direct", "queue"} {
			t.Run("rpc "+mode+" "+client, func(t *testing.T) {
				id := "rpc" + mode + client
				s, _ := perf(t, b.URL, "--id", id, "--client", client, "--rpc", "--reply-to", mode, "-x", "3", "-y", "1", "-C", "40", "--quiet")
				if s.Calls != 120 || s.Received != 120 || s.RPCLatency == nil || s.RPCLatency.Count != 120 {
					t.Errorf("calls %d received %d rpc latency %+v", s.Calls, s.Received, s.RPCLatency)
				}
				gone(t, b.URL, []string{"warren-perf-" + id + "-0"}, "")
			})
		}
	}
	t.Run("no consumers", func(t *testing.T) {
		// -y 0 measures publishing alone: the run lasts until its
		// producers have sent -C each, and nothing is received.
		for _, client := range []string{"lean", "amqp091"} {
			s, _ := perf(t, b.URL, "--id", "noc"+client, "--client", client, "-y", "0", "-c", "5", "-f", "persistent", "-C", "200", "--quiet")
			if s.Sent != 200 || s.Confirmed != 200 || s.Received != 0 {
				t.Errorf("%s: sent %d confirmed %d received %d, want 200, 200 and 0", client, s.Sent, s.Confirmed, s.Received)
			}
			gone(t, b.URL, []string{"warren-perf-noc" + client + "-0"}, "")
		}
	})
	t.Run("no producers", func(t *testing.T) {
		// -x 0 measures consuming alone, from a queue others publish
		// to: the run lasts its -z (with -D it already ended on the
		// count), and its consumer gets what was published meanwhile.
		const n = 50
		queue := "warren-perf-nop"
		published := make(chan struct{})
		go func() {
			defer close(published)
			conn, err := amqp.Dial(b.URL)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			ch, err := conn.Channel()
			if err != nil {
				t.Error(err)
				return
			}
			// Publish once the run's consumer is there.
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				if q, err := ch.QueueDeclarePassive(queue, false, false, false, false, nil); err == nil && q.Consumers > 0 {
					break
				} else if err != nil {
					if ch, err = conn.Channel(); err != nil {
						t.Error(err)
						return
					}
				}
				if time.Now().After(deadline) {
					t.Error("the consumer did not appear")
					return
				}
			}
			for range n {
				if err := ch.Publish("", queue, false, false, amqp.Publishing{Body: []byte("m")}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		s, _ := perf(t, b.URL, "--id", "nop", "-u", queue, "-x", "0", "-z", "3", "--quiet")
		<-published
		if s.Sent != 0 || s.Received != n {
			t.Errorf("sent %d received %d, want 0 and %d", s.Sent, s.Received, n)
		}
		gone(t, b.URL, []string{queue}, "")
	})
	t.Run("fanout", func(t *testing.T) {
		s, _ := perf(t, b.URL, "--id", "fan", "-t", "fanout", "--queues", "3", "-y", "3", "-a", "-C", "100", "-D", "100", "--quiet")
		if s.Sent != 100 || s.Received != 300 {
			t.Errorf("sent %d received %d, want 100 and 300", s.Sent, s.Received)
		}
		gone(t, b.URL, []string{"warren-perf-fan-0", "warren-perf-fan-1", "warren-perf-fan-2"}, "warren-perf-fan")
	})
	t.Run("topic", func(t *testing.T) {
		// 100 bindings over 2 queues: each message matches one.
		s, _ := perf(t, b.URL, "--id", "top", "-t", "topic", "--queues", "2", "--bindings", "100", "-y", "2", "-a", "-C", "200", "-D", "100", "--quiet")
		if s.Sent != 200 || s.Received != 200 {
			t.Errorf("sent %d received %d, want 200 each", s.Sent, s.Received)
		}
	})
}

func TestIntervalLines(t *testing.T) {
	b := servertest.Start(t)
	_, out := perf(t, b.URL, "-z", "0.5", "--interval", "100ms", "-r", "200", "-s", "16")
	if n := strings.Count(out, "sent:"); n < 2 {
		t.Errorf("%d interval lines, want several:\n%s", n, out)
	}
	if !strings.Contains(out, "consumer latency") {
		t.Errorf("no latency in the interval lines:\n%s", out)
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-t", "headers"}, {"--reply-to", "x"}, {"-m", "10", "-c", "5"}, {"--queues", "0"}, {"-f", "fast"}, {"stray"},
		{"--max-priority", "256"}, {"--max-priority", "-1"},
	} {
		if _, err := parseConfig(args, &bytes.Buffer{}); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	if _, err := parseConfig([]string{"--help"}, &bytes.Buffer{}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help: %v", err)
	}
	c, err := parseConfig([]string{"--producers", "3", "-y", "2", "--flag", "persistent", "-f", "mandatory"}, &bytes.Buffer{})
	if err != nil || c.producers != 3 || c.consumers != 2 || !c.persistent() || !c.mandatory() || c.duration != 10*time.Second {
		t.Errorf("parsed %+v, %v", c, err)
	}
}

func TestCompare(t *testing.T) {
	a, b := servertest.Start(t), servertest.Start(t)
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	jsonFile := t.TempDir() + "/compare.json"
	if err := compareMain(ctx, []string{"--warren", a.URL, "--reference", b.URL, "-z", "0.3", "--runs", "2", "--scenarios", "1,10", "--json", jsonFile, "--settle", "1s"}, &out); err != nil {
		t.Fatalf("compare: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{"scenario", "16B transient autoack", "msg/s", "RPC, direct reply-to", "calls/s", "broker CPU s/1M msgs"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	var results []comparison
	data, err := os.ReadFile(jsonFile)
	if err != nil || json.Unmarshal(data, &results) != nil || len(results) != 2 {
		t.Fatalf("json results: %v %s", err, data)
	}
	for _, r := range results {
		if r.Error != "" || len(r.Ratios) != 2 || r.Ratios[0] <= 0 {
			t.Errorf("%s: error %q ratios %v", r.Scenario, r.Error, r.Ratios)
		}
	}
}
