package server_test

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/internal/wire"
	"github.com/warrenmq/warren/server/servertest"
)

// benchTargets returns the brokers to measure: an in-process Warren, and
// the broker at WARREN_REF_URL (a reference RabbitMQ) if set, so both run
// with the same client in the same run.
func benchTargets(b *testing.B) map[string]string {
	targets := map[string]string{"warren": servertest.Start(b).URL}
	if refURL != "" {
		targets["reference"] = refURL
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

// BenchmarkRawPublishConsume measures the broker rather than a client
// library: the publisher writes pre-encoded frames 100 messages at a time
// and the consumer (no-ack) counts basic.deliver frames without decoding
// them. Neither allocates, so allocs/op and B/op are the broker's own (for
// the in-process Warren; for the reference they are only the client's).
func BenchmarkRawPublishConsume(b *testing.B) {
	targets := benchTargets(b)
	for _, size := range []int{16, 1024} {
		for _, name := range []string{"warren", "reference"} {
			raw, ok := targets[name]
			if !ok {
				continue
			}
			u, err := url.Parse(raw)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("%s/%dB", name, size), func(b *testing.B) {
				benchRaw(b, u.Host, size)
			})
		}
	}
}

func benchRaw(b *testing.B, addr string, size int) {
	pub, sub := dialRaw(b, addr), dialRaw(b, addr)
	pub.logf, sub.logf = nil, nil
	handshake(b, pub)
	handshake(b, sub)
	openChannel(b, pub, 1)
	openChannel(b, sub, 1)
	q := fmt.Sprintf("bench-raw-%d", time.Now().UnixNano())
	sub.send(b, 1, &wire.QueueDeclare{Queue: q, Exclusive: true})
	expectMethod[*wire.QueueDeclareOk](b, sub, 1)
	sub.send(b, 1, &wire.BasicConsume{Queue: q, NoAck: true})
	expectMethod[*wire.BasicConsumeOk](b, sub, 1)

	one, err := wire.AppendMethodFrame(nil, 1, &wire.BasicPublish{RoutingKey: q})
	if err != nil {
		b.Fatal(err)
	}
	one = wire.AppendHeaderFrame(one, 1, wire.ClassBasic, uint64(size), []byte{0, 0})
	one = wire.AppendBodyFrames(one, 1, make([]byte, size), pub.tune.FrameMax)
	const perBatch = 100
	batch := make([]byte, 0, len(one)*perBatch)
	for range perBatch {
		batch = append(batch, one...)
	}

	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	written := make(chan error, 1)
	go func() {
		for left := b.N; left > 0; {
			chunk := batch
			if left < perBatch {
				chunk = batch[:left*len(one)]
			}
			if _, err := pub.nc.Write(chunk); err != nil {
				written <- err
				return
			}
			left -= len(chunk) / len(one)
		}
		written <- nil
	}()
	sub.nc.SetReadDeadline(time.Now().Add(5 * time.Minute)) // a failure bound
	for got := 0; got < b.N; {
		f, err := sub.r.ReadFrame()
		if err != nil {
			b.Fatalf("after %d of %d deliveries: %v", got, b.N, err)
		}
		p := f.Payload
		if f.Type == wire.FrameMethod && len(p) >= 4 && p[1] == 60 && p[3] == 60 { // basic.deliver
			got++
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if err := <-written; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msg/s")
}
