package rpc_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/rpc"
	"github.com/warrenmq/warren/server/servertest"
)

// BenchmarkRPC makes b.N calls of 64 bytes through one Client to a Server
// with 16 workers on its own connection, from 1 or 16 goroutines, with
// direct reply-to and with a reply queue. It reports calls/s and the round
// trip p50 and p99 in ms. Set WARREN_REF_URL to measure a reference broker
// the same way in the same run.
func BenchmarkRPC(b *testing.B) {
	w := servertest.Start(b)
	targets := map[string]string{"warren": w.URL}
	if refURL != "" {
		targets["reference"] = refURL
	}
	for _, m := range modes {
		for _, callers := range []int{1, 16} {
			for _, name := range []string{"warren", "reference"} {
				url, ok := targets[name]
				if !ok {
					continue
				}
				b.Run(fmt.Sprintf("%s/%s/callers%d", name, m.name, callers), func(b *testing.B) {
					benchRPC(b, url, callers, m.opts)
				})
			}
		}
	}
}

func benchRPC(b *testing.B, url string, callers int, opts []rpc.ClientOption) {
	dial := func() *amqp.Connection {
		conn, err := amqp.Dial(url)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { conn.Close() })
		return conn
	}
	sconn, cconn := dial(), dial()
	ch, err := sconn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	q := fmt.Sprintf("bench-rpc.%d", time.Now().UnixNano())
	if _, err := ch.QueueDeclare(q, false, false, false, false, nil); err != nil {
		b.Fatal(err)
	}
	defer ch.QueueDelete(q, false, false, false)
	srv, err := rpc.NewServer(sconn, q, func(_ context.Context, req amqp.Delivery) (amqp.Publishing, error) {
		return amqp.Publishing{Body: req.Body}, nil
	}, rpc.WithWorkers(16))
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve()
	defer srv.Shutdown(context.Background())
	client, err := rpc.NewClient(cconn, opts...)
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	body := make([]byte, 64)

	latencies := make([][]time.Duration, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i := range callers {
		n := b.N / callers
		if i < b.N%callers {
			n++
		}
		latencies[i] = make([]time.Duration, 0, n)
		wg.Go(func() {
			for range n {
				t0 := time.Now()
				if _, err := client.Call(ctx, "", q, amqp.Publishing{Body: body}); err != nil {
					errs[i] = err
					return
				}
				latencies[i] = append(latencies[i], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	all := slices.Concat(latencies...)
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
}
