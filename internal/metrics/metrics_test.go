package metrics_test

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/queue"
	"github.com/warrenmq/warren/server"
	"github.com/warrenmq/warren/server/servertest"
)

// TestTraffic drives known traffic through a broker and checks the values
// both endpoints serve.
func TestTraffic(t *testing.T) {
	b := startBroker(t)
	ctx := context.Background()

	// Before any traffic.
	idle := map[string]float64{
		"rabbitmq_connections": 0, "rabbitmq_channels": 0, "rabbitmq_consumers": 0, "rabbitmq_queues": 0,
		"rabbitmq_queue_messages_ready": 0, "rabbitmq_queue_messages": 0,
		`rabbitmq_global_messages_received_total{protocol="amqp091"}`: 0,
		"warren_store_commit_failures_total":                          0,
	}
	b.waitFor(t, "/metrics", idle)

	conn := b.dial(t)
	ch, err := conn.Channel() // declares, plain publishes, basic.get
	must(t, err)
	chC, err := conn.Channel() // confirm mode
	must(t, err)
	chK, err := conn.Channel() // manual-ack consumer
	must(t, err)
	chA, err := conn.Channel() // auto-ack consumer
	must(t, err)

	// Queues: four kept (q1 durable, declared twice), one deleted.
	_, err = ch.QueueDeclare("q1", true, false, false, false, nil)
	must(t, err)
	_, err = ch.QueueDeclare("q1", true, false, false, false, nil)
	must(t, err)
	for _, q := range []string{"q2", "q3", "q4", "q5"} {
		_, err = ch.QueueDeclare(q, false, false, false, false, nil)
		must(t, err)
	}
	_, err = ch.QueueDelete("q5", false, false, false)
	must(t, err)

	// Without confirms: 5 persistent messages to q1, 2 to q4, and one
	// unroutable non-mandatory, which is dropped.
	for range 5 {
		must(t, ch.PublishWithContext(ctx, "", "q1", false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte("q1")}))
	}
	for range 2 {
		must(t, ch.PublishWithContext(ctx, "", "q4", false, false, amqp.Publishing{Body: []byte("q4")}))
	}
	must(t, ch.PublishWithContext(ctx, "amq.direct", "nowhere", false, false, amqp.Publishing{Body: []byte("dropped")}))

	// With confirms: 3 messages of 8 bytes to q2 and one unroutable
	// mandatory, which is returned (and confirmed too).
	must(t, chC.Confirm(false))
	confirms := chC.NotifyPublish(make(chan amqp.Confirmation, 4))
	returns := chC.NotifyReturn(make(chan amqp.Return, 1))
	for range 3 {
		must(t, chC.PublishWithContext(ctx, "", "q2", false, false, amqp.Publishing{Body: []byte("q2-body!")}))
	}
	must(t, chC.PublishWithContext(ctx, "amq.direct", "nowhere", true, false, amqp.Publishing{Body: []byte("returned")}))
	confirmed(t, confirms, 4)
	select {
	case r := <-returns:
		if r.ReplyCode != amqp.NoRoute {
			t.Fatalf("return: %d %s", r.ReplyCode, r.ReplyText)
		}
	case <-time.After(waitTimeout):
		t.Fatal("unroutable mandatory message not returned")
	}

	// A manual-ack consumer on q1 takes all 5, acks 3, rejects one with
	// requeue (it comes back redelivered and is acked) and keeps the last.
	b.waitFor(t, "/metrics/per-object", map[string]float64{`rabbitmq_queue_messages_ready{queue="q1",vhost="/"}`: 5})
	must(t, chK.Qos(10, 0, false))
	ds, err := chK.Consume("q1", "k", false, false, false, false, nil)
	must(t, err)
	var got []amqp.Delivery
	for range 5 {
		got = append(got, recv(t, ds))
	}
	for _, d := range got[:3] {
		must(t, d.Ack(false))
	}
	must(t, got[3].Reject(true))
	again := recv(t, ds)
	if !again.Redelivered {
		t.Fatal("requeued message not flagged redelivered")
	}
	must(t, again.Ack(false))

	// An auto-ack consumer on q4 takes its 2.
	das, err := chA.Consume("q4", "a", true, false, false, false, nil)
	must(t, err)
	recv(t, das)
	recv(t, das)

	// basic.get: one with auto-ack and one acked from q2 (leaving one
	// ready), and one from the empty q3.
	b.waitFor(t, "/metrics/per-object", map[string]float64{`rabbitmq_queue_messages_ready{queue="q2",vhost="/"}`: 3})
	if _, ok, err := ch.Get("q2", true); err != nil || !ok {
		t.Fatalf("get q2: %v %v", ok, err)
	}
	d, ok, err := ch.Get("q2", false)
	if err != nil || !ok {
		t.Fatalf("get q2: %v %v", ok, err)
	}
	must(t, d.Ack(false))
	if _, ok, err := ch.Get("q3", false); err != nil || ok {
		t.Fatalf("get q3: %v %v", ok, err)
	}

	// A second connection comes and goes with one channel.
	conn2 := b.dial(t)
	_, err = conn2.Channel()
	must(t, err)
	must(t, conn2.Close())

	global := map[string]float64{
		"rabbitmq_connections":              1,
		"rabbitmq_channels":                 4,
		"rabbitmq_consumers":                2,
		"rabbitmq_queues":                   4,
		"rabbitmq_connections_opened_total": 2,
		"rabbitmq_connections_closed_total": 1,
		"rabbitmq_channels_opened_total":    5,
		"rabbitmq_channels_closed_total":    1,
		"rabbitmq_queues_declared_total":    6,
		"rabbitmq_queues_created_total":     5,
		"rabbitmq_queues_deleted_total":     1,

		`rabbitmq_global_consumers{protocol="amqp091"}`:                                                                     2,
		`rabbitmq_global_messages_received_total{protocol="amqp091"}`:                                                       12,
		`rabbitmq_global_messages_received_confirm_total{protocol="amqp091"}`:                                               4,
		`rabbitmq_global_messages_routed_total{protocol="amqp091"}`:                                                         10,
		`rabbitmq_global_messages_unroutable_dropped_total{protocol="amqp091"}`:                                             1,
		`rabbitmq_global_messages_unroutable_returned_total{protocol="amqp091"}`:                                            1,
		`rabbitmq_global_messages_confirmed_total{protocol="amqp091"}`:                                                      4,
		`rabbitmq_global_messages_delivered_consume_auto_ack_total{protocol="amqp091",queue_type="rabbit_classic_queue"}`:   2,
		`rabbitmq_global_messages_delivered_consume_manual_ack_total{protocol="amqp091",queue_type="rabbit_classic_queue"}`: 6,
		`rabbitmq_global_messages_delivered_get_auto_ack_total{protocol="amqp091",queue_type="rabbit_classic_queue"}`:       1,
		`rabbitmq_global_messages_delivered_get_manual_ack_total{protocol="amqp091",queue_type="rabbit_classic_queue"}`:     1,
		`rabbitmq_global_messages_delivered_total{protocol="amqp091",queue_type="rabbit_classic_queue"}`:                    10,
		`rabbitmq_global_messages_redelivered_total{protocol="amqp091",queue_type="rabbit_classic_queue"}`:                  1,
		`rabbitmq_global_messages_acknowledged_total{protocol="amqp091",queue_type="rabbit_classic_queue"}`:                 5,
		`rabbitmq_global_messages_get_empty_total{protocol="amqp091",queue_type="rabbit_classic_queue"}`:                    1,

		"warren_store_commit_failures_total": 0,
	}

	aggregated := maps.Clone(global)
	maps.Copy(aggregated, map[string]float64{
		"rabbitmq_queue_messages_ready":       1,
		"rabbitmq_queue_messages_unacked":     1,
		"rabbitmq_queue_messages":             2,
		"rabbitmq_queue_consumers":            2,
		"rabbitmq_queue_messages_ready_bytes": 8,

		"rabbitmq_channel_consumers":        2,
		"rabbitmq_channel_messages_unacked": 1,
		"rabbitmq_channel_prefetch":         0,
		"rabbitmq_consumer_prefetch":        10,
		"rabbitmq_connection_channels":      4,

		"rabbitmq_channel_messages_published_total":           12,
		"rabbitmq_channel_messages_confirmed_total":           4,
		"rabbitmq_channel_messages_unroutable_returned_total": 1,
		"rabbitmq_channel_messages_unroutable_dropped_total":  1,
		"rabbitmq_channel_get_ack_total":                      1,
		"rabbitmq_channel_get_total":                          1,
		"rabbitmq_channel_messages_delivered_ack_total":       6,
		"rabbitmq_channel_messages_delivered_total":           2,
		"rabbitmq_channel_messages_redelivered_total":         1,
		"rabbitmq_channel_messages_acked_total":               5,
		"rabbitmq_channel_get_empty_total":                    1,
	})
	agg := b.waitFor(t, "/metrics", aggregated)

	perObject := maps.Clone(global)
	for q, v := range map[string][5]float64{ // ready, unacked, consumers, ready bytes
		"q1": {0, 1, 1, 0},
		"q2": {1, 0, 0, 8},
		"q3": {0, 0, 0, 0},
		"q4": {0, 0, 1, 0},
	} {
		l := `{queue="` + q + `",vhost="/"}`
		perObject["rabbitmq_queue_messages_ready"+l] = v[0]
		perObject["rabbitmq_queue_messages_unacked"+l] = v[1]
		perObject["rabbitmq_queue_messages"+l] = v[0] + v[1]
		perObject["rabbitmq_queue_consumers"+l] = v[2]
		perObject["rabbitmq_queue_messages_ready_bytes"+l] = v[3]
	}
	po := b.waitFor(t, "/metrics/per-object", perObject)

	// Per object, the queue metrics are per queue only, the deleted queue
	// is gone, and the channel sums are not served.
	for k := range po {
		if strings.HasPrefix(k, "rabbitmq_queue_") && !strings.Contains(k, `queue="q`) {
			t.Errorf("per-object series without a queue label: %s", k)
		}
		if strings.Contains(k, `queue="q5"`) {
			t.Errorf("deleted queue still served: %s", k)
		}
		if strings.HasPrefix(k, "rabbitmq_channel_") {
			t.Errorf("per-object serves %s", k)
		}
	}

	// Once the connection closes, the message counters keep their values
	// (they count since the broker started); the gauges drop.
	must(t, conn.Close())
	closed := maps.Clone(global)
	maps.Copy(closed, map[string]float64{
		"rabbitmq_connections": 0, "rabbitmq_channels": 0, "rabbitmq_consumers": 0,
		"rabbitmq_connections_closed_total": 2, "rabbitmq_channels_closed_total": 5,
		`rabbitmq_global_consumers{protocol="amqp091"}`: 0,
		"rabbitmq_queue_messages_ready":                 2, // q1's unacked message is back
		"rabbitmq_queue_messages_unacked":               0,
		"rabbitmq_queue_consumers":                      0,
		"rabbitmq_channel_messages_published_total":     12,
		"rabbitmq_channel_messages_acked_total":         5,
	})
	b.waitFor(t, "/metrics", closed)

	// Identity, build info, runtime and process collectors.
	for _, m := range []map[string]float64{agg, po} {
		for _, prefix := range []string{"rabbitmq_identity_info{", "warren_build_info{", "go_goroutines", "process_open_fds", "process_start_time_seconds"} {
			if !hasPrefix(m, prefix) {
				t.Errorf("no %s… series", prefix)
			}
		}
	}
}

func hasPrefix(m map[string]float64, prefix string) bool {
	for k := range m {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// TestStore checks the store's metrics after durable traffic: commits are
// counted, each once in both histograms, and nothing failed.
func TestStore(t *testing.T) {
	b := startBroker(t)
	ch, err := b.dial(t).Channel()
	must(t, err)
	_, err = ch.QueueDeclare("durable", true, false, false, false, nil)
	must(t, err)
	must(t, ch.Confirm(false))
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 20))
	for range 20 {
		must(t, ch.PublishWithContext(context.Background(), "", "durable", false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte("x")}))
	}
	confirmed(t, confirms, 20)

	// Confirmed persistent messages were committed. The store's counters
	// are read one by one, so wait for a scrape that saw no commit in
	// between.
	m := b.waitUntil(t, "/metrics", func(m map[string]float64) bool {
		commits := m["warren_store_commits_total"]
		return commits >= 1 &&
			m["rabbitmq_io_sync_ops_total"] >= commits+2*m["warren_store_checkpoints_total"] &&
			commits == m["warren_store_commit_duration_seconds_count"] &&
			commits == m["warren_store_commit_batch_size_count"] &&
			m["warren_store_changes_total"] == m["warren_store_commit_batch_size_sum"]
	})
	if m["warren_store_commits_total"] < 1 {
		t.Errorf("warren_store_commits_total = %v, want at least 1", m["warren_store_commits_total"])
	}
	// A sync for each log record, and two for each checkpoint.
	if got, want := m["rabbitmq_io_sync_ops_total"], m["warren_store_commits_total"]+2*m["warren_store_checkpoints_total"]; got < want {
		t.Errorf("rabbitmq_io_sync_ops_total = %v, want at least %v", got, want)
	}
	if got, want := m["warren_store_commit_duration_seconds_count"], m["warren_store_commits_total"]; got != want {
		t.Errorf("commit duration count %v, commits %v", got, want)
	}
	if got, want := m["warren_store_commit_batch_size_count"], m["warren_store_commits_total"]; got != want {
		t.Errorf("batch size count %v, commits %v", got, want)
	}
	// 20 messages and the queue's declaration, at least.
	if got := m["warren_store_changes_total"]; got < 21 || got != m["warren_store_commit_batch_size_sum"] {
		t.Errorf("changes %v, batch size sum %v; want equal and at least 21", got, m["warren_store_commit_batch_size_sum"])
	}
	// The checkpointer applies them to bbolt soon after.
	m = b.waitUntil(t, "/metrics", func(m map[string]float64) bool {
		return m["warren_store_checkpoints_total"] >= 1 && m["warren_store_checkpoint_changes_total"] >= 1
	})
	if m["warren_store_checkpoint_seconds_total"] <= 0 || m["warren_store_checkpoint_failures_total"] != 0 {
		t.Errorf("checkpoint seconds %v, failures %v", m["warren_store_checkpoint_seconds_total"], m["warren_store_checkpoint_failures_total"])
	}
	if v, ok := m["warren_store_compactions_total"]; !ok || v != 0 {
		t.Errorf("warren_store_compactions_total = %v (served: %v), want 0 on a small store", v, ok)
	}
	if m["warren_store_size_bytes"] <= 0 {
		t.Errorf("warren_store_size_bytes = %v", m["warren_store_size_bytes"])
	}
	// The 20 ready messages are in memory, within the default budget,
	// from which a queue reserves its memory in steps of
	// queue.BudgetChunk. (Their properties: two bytes of flags and the
	// delivery mode.)
	cost := float64(queue.EntryCost(&queue.Message{Body: []byte("x"), RoutingKey: "durable", Props: make([]byte, 3)}))
	if used, limit := m["warren_queue_memory_bytes"], m["warren_queue_memory_limit_bytes"]; used != queue.BudgetChunk || limit != float64(server.DefaultQueueMemory()) || 20*cost > queue.BudgetChunk {
		t.Errorf("warren_queue_memory_bytes %v, limit %v; want one step, %v (20 messages of %v bytes), and %v", used, limit, queue.BudgetChunk, cost, server.DefaultQueueMemory())
	}

	// The histograms' buckets are cumulative and end at +Inf with the count.
	fams := b.families(t, "/metrics")
	for _, name := range []string{"warren_store_commit_duration_seconds", "warren_store_commit_batch_size"} {
		f, ok := fams[name]
		if !ok || f.GetType().String() != "HISTOGRAM" {
			t.Fatalf("%s: not a histogram", name)
		}
		h := f.GetMetric()[0].GetHistogram()
		var last uint64
		for _, bk := range h.GetBucket() {
			if bk.GetCumulativeCount() < last {
				t.Errorf("%s: bucket le=%v count %d below the previous %d", name, bk.GetUpperBound(), bk.GetCumulativeCount(), last)
			}
			last = bk.GetCumulativeCount()
		}
		if last > h.GetSampleCount() {
			t.Errorf("%s: last bucket %d above count %d", name, last, h.GetSampleCount())
		}
	}
}

// TestOddQueueName: AMQP queue names need not be UTF-8, Prometheus label
// values must be. Such a queue is shown escaped, and the queues after it
// and the rest of the scrape are still there.
func TestOddQueueName(t *testing.T) {
	b := startBroker(t)
	ch, err := b.dial(t).Channel()
	must(t, err)
	for _, name := range []string{"a", "q\xff", "z"} {
		if _, err := ch.QueueDeclare(name, false, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		if err := ch.Publish("", name, false, false, amqp.Publishing{Body: []byte("m")}); err != nil {
			t.Fatal(err)
		}
	}
	got := b.waitFor(t, "/metrics/per-object", map[string]float64{
		`rabbitmq_queue_messages_ready{queue="a",vhost="/"}`:      1,
		`rabbitmq_queue_messages_ready{queue="q\\xff",vhost="/"}`: 1,
		`rabbitmq_queue_messages_ready{queue="z",vhost="/"}`:      1,
	})
	if _, ok := got["warren_store_commits_total"]; !ok {
		t.Error("the scrape lost warren_store_commits_total")
	}
}

// TestRoutedCounts: a message a full reject-publish queue refused was
// routed (RabbitMQ counts it so); a direct reply-to reply is routed and
// delivered.
func TestRoutedCounts(t *testing.T) {
	b := startBroker(t)
	conn := b.dial(t)
	ch, err := conn.Channel()
	must(t, err)
	if _, err := ch.QueueDeclare("full", false, false, false, false, amqp.Table{"x-max-length": int32(1), "x-overflow": "reject-publish"}); err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 2))
	for range 2 {
		if err := ch.Publish("", "full", false, false, amqp.Publishing{Body: []byte("m")}); err != nil {
			t.Fatal(err)
		}
	}
	if c1, c2 := <-confirms, <-confirms; !c1.Ack || c2.Ack {
		t.Fatalf("confirms %v %v, want an ack then a nack", c1, c2)
	}
	rch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	replies, err := rch.Consume("amq.rabbitmq.reply-to", "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rch.QueueDeclare("requests", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := rch.Publish("", "requests", false, false, amqp.Publishing{ReplyTo: "amq.rabbitmq.reply-to", Body: []byte("req")}); err != nil {
		t.Fatal(err)
	}
	req, ok, err := ch.Get("requests", true)
	if err != nil || !ok {
		t.Fatalf("get request: %v %v", ok, err)
	}
	ch2, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch2.Publish("", req.ReplyTo, false, false, amqp.Publishing{Body: []byte("reply")}); err != nil {
		t.Fatal(err)
	}
	recv(t, replies)
	b.waitFor(t, "/metrics", map[string]float64{
		`rabbitmq_global_messages_received_total{protocol="amqp091"}`:                                                     4,
		`rabbitmq_global_messages_routed_total{protocol="amqp091"}`:                                                       4,
		`rabbitmq_global_messages_unroutable_dropped_total{protocol="amqp091"}`:                                           0,
		`rabbitmq_global_messages_delivered_consume_auto_ack_total{protocol="amqp091",queue_type="rabbit_classic_queue"}`: 1,
		`rabbitmq_global_messages_delivered_get_auto_ack_total{protocol="amqp091",queue_type="rabbit_classic_queue"}`:     1,
	})
}

// TestDeadLettered: the same traffic gave these counts on RabbitMQ 3.10:
// an expiry in a queue without a dead-letter exchange, a drop-head
// overflow without one, a rejection in a queue with one.
func TestDeadLettered(t *testing.T) {
	b := startBroker(t)
	ch, err := b.dial(t).Channel()
	must(t, err)
	for _, q := range []struct {
		name string
		args amqp.Table
	}{
		{"dl.ttl", amqp.Table{"x-message-ttl": int32(0)}},
		{"dl.rej", amqp.Table{"x-dead-letter-exchange": "amq.fanout"}},
		{"dl.max", amqp.Table{"x-max-length": int32(1)}},
	} {
		if _, err := ch.QueueDeclare(q.name, false, false, false, false, q.args); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{"dl.ttl", "dl.rej", "dl.max", "dl.max"} {
		if err := ch.Publish("", q, false, false, amqp.Publishing{Body: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	// The publishes went first on this channel, so the message is there.
	d, ok, err := ch.Get("dl.rej", false)
	if err != nil || !ok {
		t.Fatalf("get: %v %v", ok, err)
	}
	if err := d.Reject(false); err != nil {
		t.Fatal(err)
	}
	const cq = `queue_type="rabbit_classic_queue"`
	b.waitFor(t, "/metrics", map[string]float64{
		`rabbitmq_global_messages_dead_lettered_expired_total{dead_letter_strategy="disabled",` + cq + `}`:      1,
		`rabbitmq_global_messages_dead_lettered_expired_total{dead_letter_strategy="at_most_once",` + cq + `}`:  0,
		`rabbitmq_global_messages_dead_lettered_maxlen_total{dead_letter_strategy="disabled",` + cq + `}`:       1,
		`rabbitmq_global_messages_dead_lettered_rejected_total{dead_letter_strategy="at_most_once",` + cq + `}`: 1,
		`rabbitmq_global_messages_dead_lettered_rejected_total{dead_letter_strategy="disabled",` + cq + `}`:     0,
	})
}

// TestProcessGauges: the process and disk gauges RabbitMQ's dashboards
// plot are there and plausible.
func TestProcessGauges(t *testing.T) {
	b := startBroker(t)
	b.dial(t)
	got := b.waitUntil(t, "/metrics", func(m map[string]float64) bool { return m["rabbitmq_process_open_tcp_sockets"] == 1 })
	if got["rabbitmq_process_resident_memory_bytes"] < 1<<20 {
		t.Errorf("resident memory %v bytes", got["rabbitmq_process_resident_memory_bytes"])
	}
	if open, limit := got["rabbitmq_process_open_fds"], got["rabbitmq_process_max_fds"]; open < 3 || limit < open {
		t.Errorf("open fds %v of %v", open, limit)
	}
	if got["rabbitmq_disk_space_available_bytes"] <= 0 {
		t.Errorf("disk space available %v", got["rabbitmq_disk_space_available_bytes"])
	}
	// servertest turns the alarms off (TestAlarmGauges turns them on).
	for _, name := range []string{"rabbitmq_disk_space_available_limit_bytes", "rabbitmq_alarms_free_disk_space_watermark", "rabbitmq_resident_memory_limit_bytes", "rabbitmq_alarms_memory_used_watermark"} {
		if v, ok := got[name]; !ok || v != 0 {
			t.Errorf("%s = %v (present %v), want 0", name, v, ok)
		}
	}
}

// TestAlarmGauges: the free disk space and memory alarms show as
// rabbitmq_alarms_free_disk_space_watermark and
// rabbitmq_alarms_memory_used_watermark 1 while they are raised, with
// their limits.
func TestAlarmGauges(t *testing.T) {
	const limit = 1 << 30
	disk, mem := servertest.NewDisk(limit+1<<20), servertest.NewMemory(limit-1) // near the limits, which the broker then reads often
	b := startBroker(t, disk.Alarm(limit), mem.Alarm(limit))
	b.waitFor(t, "/metrics", map[string]float64{"rabbitmq_alarms_free_disk_space_watermark": 0, "rabbitmq_disk_space_available_limit_bytes": limit, "rabbitmq_alarms_memory_used_watermark": 0, "rabbitmq_resident_memory_limit_bytes": limit, "warren_memory_used_bytes": limit - 1})
	disk.Set(limit - 1<<20)
	b.waitFor(t, "/metrics", map[string]float64{"rabbitmq_alarms_free_disk_space_watermark": 1, "rabbitmq_alarms_memory_used_watermark": 0})
	mem.Set(limit)
	b.waitFor(t, "/metrics", map[string]float64{"rabbitmq_alarms_free_disk_space_watermark": 1, "rabbitmq_alarms_memory_used_watermark": 1, "warren_memory_used_bytes": limit})
	disk.Set(limit + 1<<20)
	mem.Set(0)
	b.waitFor(t, "/metrics", map[string]float64{"rabbitmq_alarms_free_disk_space_watermark": 0, "rabbitmq_alarms_memory_used_watermark": 0})
}
