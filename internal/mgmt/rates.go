package mgmt

import (
	"sync"
	"time"

	"github.com/warrenmq/warren/queue"
	"github.com/warrenmq/warren/server"
)

// minSampleGap is the least time between two rate samples. Rates are
// computed from the last two samples, which are taken when the API is
// asked, so a page that refreshes every 5 s sees the rate over those 5 s;
// there is no collector goroutine.
const minSampleGap = time.Second

// sample is the counters at one moment.
type sample struct {
	at     time.Time
	global server.Counters
	queues map[string]queue.Counts
	syncs  uint64 // the store's fsyncs (io_sync_count)
}

// rateSampler keeps the last two samples.
type rateSampler struct {
	mu        sync.Mutex // guards prev and cur
	prev, cur *sample
}

// observe takes a new sample if the last is old enough and returns the two
// to compute rates from (prev is nil until there are two).
func (rs *rateSampler) observe(srv *server.Server) (prev, cur *sample) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	now := time.Now()
	if rs.cur == nil || now.Sub(rs.cur.at) >= minSampleGap {
		s := &sample{at: now, global: srv.Counters(), queues: map[string]queue.Counts{}, syncs: srv.StoreStats().Syncs}
		for _, q := range srv.Queues() {
			s.queues[q.Name] = q.Counts
		}
		rs.prev, rs.cur = rs.cur, s
	}
	return rs.prev, rs.cur
}

// rate is the per-second change of a counter between two samples.
func rate(prev, cur *sample, f func(*sample) uint64) float64 {
	if prev == nil {
		return 0
	}
	dt := cur.at.Sub(prev.at).Seconds()
	a, b := f(prev), f(cur)
	if dt <= 0 || b < a {
		return 0
	}
	return float64(b-a) / dt
}

// stats builds RabbitMQ's message_stats object: each counter as name and
// its rate as name_details.rate.
type stats map[string]any

func (m stats) add(name string, value uint64, r float64) {
	m[name] = value
	m[name+"_details"] = map[string]float64{"rate": r}
}

// globalStats is the overview's message_stats.
func globalStats(prev, cur *sample, now server.Counters) stats {
	m := stats{}
	add := func(name string, get func(server.Counters) uint64) {
		m.add(name, get(now), rate(prev, cur, func(s *sample) uint64 { return get(s.global) }))
	}
	add("publish", func(c server.Counters) uint64 { return c.Received })
	add("confirm", func(c server.Counters) uint64 { return c.Confirmed })
	add("return_unroutable", func(c server.Counters) uint64 { return c.UnroutableReturned })
	add("drop_unroutable", func(c server.Counters) uint64 { return c.UnroutableDropped })
	add("deliver_get", server.Counters.Delivered)
	add("deliver", func(c server.Counters) uint64 { return c.DeliveredConsumeManual })
	add("deliver_no_ack", func(c server.Counters) uint64 { return c.DeliveredConsumeAuto })
	add("get", func(c server.Counters) uint64 { return c.DeliveredGetManual })
	add("get_no_ack", func(c server.Counters) uint64 { return c.DeliveredGetAuto })
	add("get_empty", func(c server.Counters) uint64 { return c.GetEmpty })
	add("redeliver", func(c server.Counters) uint64 { return c.Redelivered })
	add("ack", func(c server.Counters) uint64 { return c.Acknowledged })
	return m
}

// queueStats is a queue's message_stats.
func queueStats(prev, cur *sample, name string, now queue.Counts) stats {
	m := stats{}
	add := func(field string, get func(queue.Counts) uint64) {
		m.add(field, get(now), rate(prev, cur, func(s *sample) uint64 { return get(s.queues[name]) }))
	}
	add("publish", func(c queue.Counts) uint64 { return c.Published })
	add("deliver_get", func(c queue.Counts) uint64 { return c.Delivered })
	add("redeliver", func(c queue.Counts) uint64 { return c.Redelivered })
	add("ack", func(c queue.Counts) uint64 { return c.Acked })
	return m
}
