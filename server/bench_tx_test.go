package server_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/internal/store"
	"github.com/warrenmq/warren/server/servertest"
)

// txMessages and txMessageSize make one benchmark transaction: 10
// persistent 1 KiB publishes, then tx.commit.
const (
	txMessages    = 10
	txMessageSize = 1024
)

// BenchmarkTransactions runs b.N transactions of 10 persistent 1 KiB
// messages each, published to one durable queue, split over 1 or 16
// transactional channels that commit concurrently (the 16 on a connection
// each, or all on one). It reports tx/s (commits
// per second as the clients see them, first publish to the last
// commit-ok), msg/s, and the transaction latency p50 and p99 in ms: from a
// transaction's first publish to its commit-ok, as an application waits
// for it. For Warren it also reports store commits per second, committed
// transactions per store commit (above 1 when concurrent transactions share
// a store commit, and so its fsyncs) and the mean store commit time. Set
// WARREN_REF_URL to measure a reference broker the same way in the same
// run.
//
// Nothing consumes: the queue holds up to 10*b.N KiB until it is deleted
// at the end, so every store commit during the run is a transaction's (a
// consumer's acks would add commits of their own) and the figures are
// those of publishing alone.
func BenchmarkTransactions(b *testing.B) {
	w := servertest.Start(b)
	targets := map[string]string{"warren": w.URL}
	if refURL != "" {
		targets["reference"] = refURL
	}
	for _, c := range []struct{ channels, conns int }{{1, 1}, {16, 16}, {16, 1}} {
		for _, name := range []string{"warren", "reference"} {
			url, ok := targets[name]
			if !ok {
				continue
			}
			b.Run(fmt.Sprintf("%s/tx%dx1KiB/channels%d/conns%d", name, txMessages, c.channels, c.conns), func(b *testing.B) {
				var stats []store.Stats // at the first publish and the last commit-ok
				elapsed := benchTransactions(b, url, c.channels, c.conns, func() {
					if name == "warren" {
						stats = append(stats, w.Server.StoreStats())
					}
				})
				if name == "warren" {
					before, after := stats[0], stats[1]
					commits := after.Commits - before.Commits
					b.ReportMetric(float64(commits)/elapsed.Seconds(), "commits/s")
					if commits > 0 {
						b.ReportMetric(float64(b.N)/float64(commits), "tx/commit")
						b.ReportMetric(float64((after.CommitTime-before.CommitTime).Microseconds())/1000/float64(commits), "ms/commit")
					}
				}
			})
		}
	}
}

// benchTransactions runs b.N transactions over the given number of
// channels, spread over nconns connections, and returns the time from the
// first publish to the last commit-ok. mark runs just before the first
// publish and just after the last commit-ok, so store counters read there
// cover the transactions alone, not the queue's declaration or deletion.
// With one connection, the channels' commits share fsyncs only if the
// broker goes on reading a connection's frames while a commit is synced.
func benchTransactions(b *testing.B, url string, channels, nconns int, mark func()) time.Duration {
	conns := make([]*amqp.Connection, nconns)
	for i := range conns {
		conn, err := amqp.Dial(url)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		conns[i] = conn
	}
	chans := make([]*amqp.Channel, channels)
	for i := range chans {
		ch, err := conns[i%nconns].Channel()
		if err != nil {
			b.Fatal(err)
		}
		chans[i] = ch
	}
	qname := fmt.Sprintf("bench-tx.%s.%d", runID, nameSeq.Add(1))
	if _, err := chans[0].QueueDeclare(qname, true, false, false, false, nil); err != nil {
		b.Fatal(err)
	}
	defer func() {
		// A fresh channel: the benchmark's may have been closed by an
		// error.
		if ch, err := conns[0].Channel(); err == nil {
			ch.QueueDelete(qname, false, false, false)
			ch.Close()
		}
	}()
	for _, ch := range chans {
		if err := ch.Tx(); err != nil {
			b.Fatal(err)
		}
	}
	msg := amqp.Publishing{Body: make([]byte, txMessageSize), DeliveryMode: amqp.Persistent}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	latencies := make([][]time.Duration, channels)
	errs := make([]error, channels)
	var wg sync.WaitGroup
	mark()
	b.ResetTimer()
	start := time.Now()
	for i, ch := range chans {
		n := b.N / channels
		if i < b.N%channels {
			n++
		}
		latencies[i] = make([]time.Duration, 0, n)
		wg.Go(func() {
			for range n {
				t0 := time.Now()
				for range txMessages {
					if err := ch.PublishWithContext(ctx, "", qname, false, false, msg); err != nil {
						errs[i] = fmt.Errorf("channel %d: publish: %w", i, err)
						return
					}
				}
				if err := ch.TxCommit(); err != nil {
					errs[i] = fmt.Errorf("channel %d: tx.commit: %w", i, err)
					return
				}
				latencies[i] = append(latencies[i], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	mark()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	// Every committed message is in the queue.
	if q, err := chans[0].QueueDeclarePassive(qname, true, false, false, false, nil); err != nil {
		b.Fatal(err)
	} else if q.Messages != b.N*txMessages {
		b.Fatalf("queue holds %d messages, want %d", q.Messages, b.N*txMessages)
	}
	all := slices.Concat(latencies...)
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "tx/s")
	b.ReportMetric(float64(b.N*txMessages)/elapsed.Seconds(), "msg/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	return elapsed
}
