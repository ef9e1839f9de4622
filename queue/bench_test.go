package queue

import "testing"

// countingConsumer accepts everything and only counts, so that a benchmark
// measures the queue and not the consumer.
type countingConsumer struct{ n int }

func (c *countingConsumer) Deliver(q *Queue, e Entry) bool {
	c.n++
	return true
}

// BenchmarkPublishDeliver publishes to a queue whose one consumer takes every
// message at once, and acks it. Entries are values, so this should not
// allocate.
func BenchmarkPublishDeliver(b *testing.B) {
	q := New("bench", NoLimits())
	c := &countingConsumer{}
	if err := q.AddConsumer(c, false, false, 0); err != nil {
		b.Fatal(err)
	}
	m := &Message{RoutingKey: "k", Body: make([]byte, 64)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := q.Publish(m); err != nil {
			b.Fatal(err)
		}
		q.Ack(make([]Entry, 1))
	}
	if s := q.Stats(); s.Ready != 0 || s.Unacked != 0 {
		b.Fatalf("Stats %+v", s)
	}
}

// BenchmarkPublishGet publishes to a queue with no consumers and takes the
// message with basic.get.
func BenchmarkPublishGet(b *testing.B) {
	q := New("bench", NoLimits())
	m := &Message{RoutingKey: "k", Body: make([]byte, 64)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := q.Publish(m); err != nil {
			b.Fatal(err)
		}
		if _, _, ok := q.Get(true); !ok {
			b.Fatal("Get: empty")
		}
	}
}

// BenchmarkPublishGetBacklog publishes a backlog of 2000 messages and then
// drains it with basic.get; the ring grows past 1024 entries and is released
// when drained, so each round reallocates it.
func BenchmarkPublishGetBacklog(b *testing.B) {
	const backlog = 2000
	q := New("bench", NoLimits())
	m := &Message{RoutingKey: "k", Body: make([]byte, 64)}
	b.ReportAllocs()
	for b.Loop() {
		for range backlog {
			if _, err := q.Publish(m); err != nil {
				b.Fatal(err)
			}
		}
		for range backlog {
			if _, _, ok := q.Get(true); !ok {
				b.Fatal("Get: empty")
			}
		}
	}
}

// TestPublishDeliverAllocs pins the zero-allocation delivery path.
func TestPublishDeliverAllocs(t *testing.T) {
	q := New("allocs", NoLimits())
	c := &countingConsumer{}
	if err := q.AddConsumer(c, false, false, 0); err != nil {
		t.Fatal(err)
	}
	m := &Message{Body: make([]byte, 8)}
	if n := testing.AllocsPerRun(1000, func() {
		q.Publish(m)
		q.Ack(make([]Entry, 1))
	}); n != 0 {
		t.Fatalf("Publish+deliver+Ack allocates %.1f times", n)
	}
	if n := testing.AllocsPerRun(1000, func() {
		q.RemoveConsumer(c)
		q.Publish(m)
		q.Get(true)
		q.AddConsumer(c, false, false, 0)
	}); n != 0 {
		t.Fatalf("Publish+Get allocates %.1f times", n)
	}
}
