package server_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/server/servertest"
)

// benchTargets returns the brokers to measure: an in-process Warren, and
// the broker at WARREN_BENCH_REF_URL (a reference RabbitMQ, say) if set, so
// both run with the same client in the same run.
func benchTargets(b *testing.B) map[string]string {
	targets := map[string]string{"warren": servertest.Start(b).URL}
	if ref := os.Getenv("WARREN_BENCH_REF_URL"); ref != "" {
		targets["reference"] = ref
	}
	return targets
}

// BenchmarkPublishConsume publishes b.N messages on one connection and
// consumes them on another, through loopback with amqp091-go. It reports
// msg/s end to end (publish of the first to receipt of the last).
func BenchmarkPublishConsume(b *testing.B) {
	targets := benchTargets(b)
	for _, size := range []int{16, 1024} {
		for _, mode := range []string{"autoack", "ack-prefetch100"} {
			for _, name := range []string{"warren", "reference"} {
				url, ok := targets[name]
				if !ok {
					continue
				}
				b.Run(fmt.Sprintf("%s/%dB/%s", name, size, mode), func(b *testing.B) {
					benchPublishConsume(b, url, size, mode == "autoack")
				})
			}
		}
	}
}

func benchPublishConsume(b *testing.B, url string, size int, autoAck bool) {
	pubConn, err := amqp.Dial(url)
	if err != nil {
		b.Fatal(err)
	}
	defer pubConn.Close()
	subConn, err := amqp.Dial(url)
	if err != nil {
		b.Fatal(err)
	}
	defer subConn.Close()
	pub, err := pubConn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	sub, err := subConn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	q, err := sub.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	if !autoAck {
		if err := sub.Qos(100, 0, false); err != nil {
			b.Fatal(err)
		}
	}
	deliveries, err := sub.Consume(q.Name, "", autoAck, true, false, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, size)
	msg := amqp.Publishing{Body: body}
	ctx := context.Background()

	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		for i := 0; i < b.N; i++ {
			if err := pub.PublishWithContext(ctx, "", q.Name, false, false, msg); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	timeout := time.After(5 * time.Minute) // a failure bound, not a measurement
	for i := 0; i < b.N; i++ {
		select {
		case d, ok := <-deliveries:
			if !ok {
				b.Fatalf("deliveries closed after %d of %d", i, b.N)
			}
			if !autoAck {
				d.Ack(false)
			}
		case <-timeout:
			b.Fatalf("received %d of %d", i, b.N)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msg/s")
}
