package server_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"golang.org/x/sys/unix"

	"github.com/warrenmq/warren/internal/rawsock"
	"github.com/warrenmq/warren/internal/store"
	"github.com/warrenmq/warren/internal/wire"
	"github.com/warrenmq/warren/server/servertest"
)

// BenchmarkPersistentConfirms publishes b.N persistent 1 KiB messages to a
// durable queue in confirm mode, keeping 1 or 100 confirms outstanding,
// while one consumer (amqp091-go, prefetch 100) acks them. It reports
// msg/s (first publish to the last confirm and ack), the confirm latency
// p50 and p99 in ms, and, for Warren, store commits per second (each is one
// write-ahead log record and its fdatasync), and, at 1 outstanding, the
// median time of those commits in the run (commit-p50-ms: the fsync each
// confirm waited for) and of a bare 1 KiB write and fdatasync in the data
// dir once the run is over (fsync-p50-ms: the same on a quiet machine),
// the floors a confirm can reach. Warren confirms only after the fsync. The
// publisher is amqp091-go; a second run of each publishes with a raw
// client instead (one goroutine writes the publishes the window allows in
// one write and reads the confirms, no library in between: .../raw), and
// consumes with a raw client that acks every message, its acks written
// (multiple) whenever its input is drained; that leaves the broker's part
// of the throughput and latency. Set WARREN_REF_URL to measure a reference
// broker the same way in the same run. Set WARREN_BENCH_URL to measure a
// Warren run apart (cmd/warren, as users run it, with its GOMAXPROCS
// tuner) instead of one in the benchmark's process: its store counters are
// then not reported, and the fsync probe runs in the benchmark's temporary
// dir, so give the broker a data dir on the same file system.
func BenchmarkPersistentConfirms(b *testing.B) {
	var w *servertest.Broker // nil: WARREN_BENCH_URL
	warrenURL := os.Getenv("WARREN_BENCH_URL")
	if warrenURL == "" {
		w = servertest.Start(b)
		warrenURL = w.URL
	}
	targets := map[string]string{"warren": warrenURL}
	if refURL != "" {
		targets["reference"] = refURL
	}
	for _, outstanding := range []int{1, 100} {
		for _, raw := range []bool{false, true} {
			for _, name := range []string{"warren", "reference"} {
				url, ok := targets[name]
				if !ok {
					continue
				}
				sub := fmt.Sprintf("%s/1KiB/outstanding%d", name, outstanding)
				if raw {
					sub += "/raw"
				}
				b.Run(sub, func(b *testing.B) {
					// A Warren in this process reports its store's counters.
					inProcess := name == "warren" && w != nil
					var before store.Stats
					if inProcess {
						before = w.Server.StoreStats()
					}
					elapsed := benchConfirms(b, url, 1024, outstanding, raw, benchSyncs(b, name, w))
					if name == "warren" && outstanding == 1 {
						dir := b.TempDir()
						if inProcess {
							dir = w.Server.DataDir()
						}
						b.ReportMetric(fsyncP50(b, dir), "fsync-p50-ms")
					}
					if !inProcess {
						return
					}
					after := w.Server.StoreStats()
					commits := after.Commits - before.Commits
					if outstanding == 1 && commits > 0 {
						recent := after.Recent[len(after.Recent)-int(min(commits, uint64(len(after.Recent)))):]
						b.ReportMetric(p50ms(recent), "commit-p50-ms")
					}
					b.ReportMetric(float64(commits)/elapsed.Seconds(), "commits/s")
					if commits > 0 {
						b.ReportMetric(float64(after.Ops-before.Ops)/float64(commits), "ops/commit")
						b.ReportMetric(float64((after.CommitTime-before.CommitTime).Microseconds())/1000/float64(commits), "ms/commit")
					}
				})
			}
		}
	}
}

// benchRawDial is rawDial for the benchmarks: the socket is read and
// written with raw system calls (internal/rawsock), as warren-perf's lean
// client does, so that the client's own wake-ups weigh less in the figure.
func benchRawDial(b *testing.B, addr string) *rawClient {
	c := dialRaw(b, addr)
	*c = *newRawClient(rawsock.NewConn(c.nc)) // dialRaw's cleanup closes c.nc
	openRaw(b, c)
	return c
}

// p50ms is the median of ds in ms; it sorts ds.
func p50ms(ds []time.Duration) float64 {
	slices.Sort(ds)
	return float64(ds[len(ds)/2].Microseconds()) / 1000
}

// fsyncP50 is the median time, in ms, of writing 1 KiB to a file filled
// ahead with zeros and fdatasyncing it, in dir: the floor of a confirm at 1
// outstanding, measured in the same run.
func fsyncP50(b *testing.B, dir string) float64 {
	f, err := os.CreateTemp(dir, "fsync-probe")
	if err != nil {
		b.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	const n = 500
	if _, err := f.Write(make([]byte, n*1024)); err != nil {
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	rec := make([]byte, 1024)
	times := make([]time.Duration, n)
	for i := range times {
		start := time.Now()
		if _, err := f.WriteAt(rec, int64(i)*1024); err != nil {
			b.Fatal(err)
		}
		if err := unix.Fdatasync(int(f.Fd())); err != nil {
			b.Fatal(err)
		}
		times[i] = time.Since(start)
	}
	return p50ms(times)
}

// benchConfirms runs one of BenchmarkPersistentConfirms's measurements;
// raw publishes with the raw client.
func benchConfirms(b *testing.B, url string, size, outstanding int, raw bool, syncs func() (uint64, bool)) time.Duration {
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
	qname := fmt.Sprintf("bench-confirms-%d", time.Now().UnixNano())
	if _, err := sub.QueueDeclare(qname, true, false, false, false, nil); err != nil {
		b.Fatal(err)
	}
	defer func() {
		if ch, err := subConn.Channel(); err == nil {
			ch.QueueDelete(qname, false, false, false)
		}
	}()
	if err := pub.Confirm(false); err != nil {
		b.Fatal(err)
	}
	confirms := pub.NotifyPublish(make(chan amqp.Confirmation, outstanding+1))
	msg := amqp.Publishing{Body: make([]byte, size), DeliveryMode: amqp.Persistent}
	consumed := make(chan struct{})
	var consumeErr error // set before consumed is closed
	var rc *rawClient
	if raw {
		uri, err := amqp.ParseURI(url)
		if err != nil {
			b.Fatal(err)
		}
		addr := net.JoinHostPort(uri.Host, strconv.Itoa(uri.Port))
		rc = benchRawDial(b, addr)
		rc.logf = nil
		rawConfirmSelect(b, rc)
		rcons := benchRawDial(b, addr)
		rcons.logf = nil
		rcons.send(b, 1, &wire.BasicQos{PrefetchCount: 100})
		expectMethod[*wire.BasicQosOk](b, rcons, 1)
		rcons.send(b, 1, &wire.BasicConsume{Queue: qname})
		expectMethod[*wire.BasicConsumeOk](b, rcons, 1)
		go func() {
			defer close(consumed)
			consumeErr = rawConsume(rcons, b.N)
		}()
	} else {
		if err := sub.Qos(100, 0, false); err != nil {
			b.Fatal(err)
		}
		deliveries, err := sub.Consume(qname, "", false, false, false, false, nil)
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			defer close(consumed)
			for i := 0; i < b.N; i++ {
				d, ok := <-deliveries
				if !ok {
					consumeErr = fmt.Errorf("deliveries ended after %d", i)
					return
				}
				d.Ack(false)
			}
		}()
	}

	sent := make([]time.Time, b.N+1) // by delivery tag
	latencies := make([]time.Duration, 0, b.N)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var syncsBefore uint64
	if syncs != nil {
		var ok bool
		if syncsBefore, ok = syncs(); !ok {
			syncs = nil
		}
	}
	b.ResetTimer()
	start := time.Now()
	published, nacks := 0, 0
	if raw {
		// Publishes go out in one write per burst, up to the window;
		// each confirm read settles its tag, or all tags up to it.
		publish := appendPublish(nil, 1, &wire.BasicPublish{RoutingKey: qname}, rawPersistentProps(b), msg.Body)
		settled := make([]bool, b.N+1) // by delivery tag
		var burst []byte
		low := 0 // every tag up to low is settled
		for len(latencies) < b.N {
			burst = burst[:0]
			for published < b.N && published-len(latencies) < outstanding {
				published++
				sent[published] = time.Now()
				burst = append(burst, publish...)
			}
			if len(burst) > 0 {
				rc.write(b, burst)
			}
			_, m, err := rc.nextMethod()
			if err != nil {
				b.Fatalf("waiting for confirms after %d: %v", len(latencies), err)
			}
			var tag uint64
			var multiple, ack bool
			switch m := m.(type) {
			case *wire.BasicAck:
				tag, multiple, ack = m.DeliveryTag, m.Multiple, true
			case *wire.BasicNack:
				tag, multiple = m.DeliveryTag, m.Multiple
			default:
				b.Fatalf("waiting for confirms after %d: got %s", len(latencies), describe(m))
			}
			if tag == 0 || tag > uint64(published) || !multiple && settled[tag] {
				b.Fatalf("confirm of tag %d (multiple %v) with %d published, %d settled", tag, multiple, published, len(latencies))
			}
			first := tag
			if multiple {
				first = uint64(low) + 1
			}
			now := time.Now()
			for t := first; t <= tag; t++ {
				if settled[t] {
					continue
				}
				settled[t] = true
				latencies = append(latencies, now.Sub(sent[t]))
				if !ack {
					nacks++
				}
			}
			for low < published && settled[low+1] {
				low++
			}
		}
	}
	for len(latencies) < b.N {
		for published < b.N && published-len(latencies) < outstanding {
			published++
			sent[published] = time.Now()
			if err := pub.PublishWithContext(ctx, "", qname, false, false, msg); err != nil {
				b.Fatal(err)
			}
		}
		select {
		case c, ok := <-confirms:
			if !ok {
				b.Fatal("confirm channel closed")
			}
			if !c.Ack {
				nacks++
			}
			latencies = append(latencies, time.Since(sent[c.DeliveryTag]))
		case <-ctx.Done():
			b.Fatalf("timed out with %d of %d confirmed", len(latencies), b.N)
		}
	}
	select {
	case <-consumed:
	case <-ctx.Done():
		b.Fatal("timed out consuming")
	}
	if consumeErr != nil {
		b.Fatal(consumeErr)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if nacks > 0 {
		b.Fatalf("%d nacks", nacks)
	}
	if syncs != nil {
		if after, ok := syncs(); ok {
			b.ReportMetric(float64(after-syncsBefore)/elapsed.Seconds(), "fsyncs/s")
		}
	}
	slices.Sort(latencies)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msg/s")
	b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
	return elapsed
}

// rawConsume reads n deliveries on c, acking with multiple=true up to the
// last one read whenever its input is drained, as a client that acks each
// message but writes its acks in bursts.
func rawConsume(c *rawClient, n int) error {
	var last uint64 // the newest tag not yet acked
	ack := func() error {
		err := c.writeErr(methodFrame(1, &wire.BasicAck{DeliveryTag: last, Multiple: true}))
		last = 0
		return err
	}
	for got := 0; got < n; {
		if last != 0 && c.br.Buffered() == 0 {
			if err := ack(); err != nil {
				return err
			}
		}
		// Frame by frame (not nextMethod, which would wait past the
		// last delivery's content for a method that the unsent ack
		// holds back).
		f, err := c.readFrame()
		if err != nil {
			return fmt.Errorf("consuming after %d deliveries: %w", got, err)
		}
		if f.Type != wire.FrameMethod {
			continue
		}
		m, err := c.dec.DecodeMethod(f.Payload)
		if err != nil {
			return err
		}
		if d, ok := m.(*wire.BasicDeliver); ok {
			got++
			last = d.DeliveryTag
		}
	}
	if last != 0 {
		return ack()
	}
	return nil
}
