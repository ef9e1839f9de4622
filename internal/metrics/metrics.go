package metrics

import (
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/procfs"

	"github.com/warrenmq/warren/internal/store"
	"github.com/warrenmq/warren/server"
)

// Handler serves srv's metrics at /metrics (aggregated) and
// /metrics/per-object (per queue). Each Handler has registries of its own,
// never the global default one, so several brokers can run in one process.
func Handler(srv *server.Server) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", endpoint(srv, false))
	mux.Handle("GET /metrics/per-object", endpoint(srv, true))
	return mux
}

// endpoint is one of Handler's endpoints, with a registry of its own.
func endpoint(srv *server.Server, perObject bool) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newCollector(srv, perObject),
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// labelValue makes a name a valid label value: Prometheus wants UTF-8,
// AMQP names may be any bytes. Invalid bytes are written as \xNN, so two
// names stay two series.
func labelValue(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		if r == utf8.RuneError && n == 1 {
			fmt.Fprintf(&b, "\\x%02x", s[0])
		} else {
			b.WriteString(s[:n])
		}
		s = s[n:]
	}
	return b.String()
}

// RabbitMQ's label values for the one protocol and queue type Warren has.
const (
	protocol  = "amqp091"
	queueType = "rabbit_classic_queue"
)

// Label sets, as RabbitMQ names them.
var (
	protocolLabels          = []string{"protocol"}
	protocolQueueTypeLabels = []string{"protocol", "queue_type"}
	queueLabels             = []string{"vhost", "queue"}
	identityLabels          = []string{"rabbitmq_node", "rabbitmq_cluster", "rabbitmq_cluster_permanent_id"}
)

func desc(name, help string, labels []string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// A counterDesc is a monotonic counter read from a server.Counters.
type counterDesc struct {
	desc  *prometheus.Desc
	value func(server.Counters) uint64
	// labels are its label values: none, protocol, or protocol and
	// queue type.
	labels []string
}

// deadLetterCounters are RabbitMQ's dead-letter totals for classic
// queues: one family per reason, one series per strategy.
var deadLetterCounters = func() []counterDesc {
	var out []counterDesc
	for _, f := range []struct {
		name, help string
		get        func(server.Counters) server.DeadLetterCounts
	}{
		{"rabbitmq_global_messages_dead_lettered_expired_total", "Total number of messages dead-lettered due to message TTL exceeded", func(c server.Counters) server.DeadLetterCounts { return c.DeadLetteredExpired }},
		{"rabbitmq_global_messages_dead_lettered_maxlen_total", "Total number of messages dead-lettered due to overflow drop-head or reject-publish-dlx", func(c server.Counters) server.DeadLetterCounts { return c.DeadLetteredMaxLen }},
		{"rabbitmq_global_messages_dead_lettered_rejected_total", "Total number of messages dead-lettered due to basic.reject or basic.nack", func(c server.Counters) server.DeadLetterCounts { return c.DeadLetteredRejected }},
	} {
		d := desc(f.name, f.help, []string{"queue_type", "dead_letter_strategy"})
		out = append(out,
			counterDesc{d, func(c server.Counters) uint64 { return f.get(c).AtMostOnce }, []string{queueType, "at_most_once"}},
			counterDesc{d, func(c server.Counters) uint64 { return f.get(c).Disabled }, []string{queueType, "disabled"}},
		)
	}
	return out
}()

// brokerCounters are RabbitMQ's node-wide counters of objects coming and
// going, in RabbitMQ's order.
var brokerCounters = []counterDesc{
	{desc("rabbitmq_connections_opened_total", "Total number of connections opened", nil), func(c server.Counters) uint64 { return c.ConnectionsOpened }, nil},
	{desc("rabbitmq_connections_closed_total", "Total number of connections closed or terminated", nil), func(c server.Counters) uint64 { return c.ConnectionsClosed }, nil},
	{desc("rabbitmq_channels_opened_total", "Total number of channels opened", nil), func(c server.Counters) uint64 { return c.ChannelsOpened }, nil},
	{desc("rabbitmq_channels_closed_total", "Total number of channels closed", nil), func(c server.Counters) uint64 { return c.ChannelsClosed }, nil},
	{desc("rabbitmq_queues_declared_total", "Total number of queues declared", nil), func(c server.Counters) uint64 { return c.QueuesDeclared }, nil},
	{desc("rabbitmq_queues_created_total", "Total number of queues created", nil), func(c server.Counters) uint64 { return c.QueuesCreated }, nil},
	{desc("rabbitmq_queues_deleted_total", "Total number of queues deleted", nil), func(c server.Counters) uint64 { return c.QueuesDeleted }, nil},
}

// globalCounters are RabbitMQ's rabbitmq_global_messages_* counters, which
// count since the broker started whatever connections come and go.
var globalCounters = []counterDesc{
	{desc("rabbitmq_global_messages_acknowledged_total", "Total number of messages acknowledged by consumers", protocolQueueTypeLabels),
		func(c server.Counters) uint64 { return c.Acknowledged }, []string{protocol, queueType}},
	{desc("rabbitmq_global_messages_confirmed_total", "Total number of messages confirmed to publishers", protocolLabels),
		func(c server.Counters) uint64 { return c.Confirmed }, []string{protocol}},
	{desc("rabbitmq_global_messages_delivered_consume_auto_ack_total", "Total number of messages delivered to consumers using basic.consume with automatic acknowledgment", protocolQueueTypeLabels),
		func(c server.Counters) uint64 { return c.DeliveredConsumeAuto }, []string{protocol, queueType}},
	{desc("rabbitmq_global_messages_delivered_consume_manual_ack_total", "Total number of messages delivered to consumers using basic.consume with manual acknowledgment", protocolQueueTypeLabels),
		func(c server.Counters) uint64 { return c.DeliveredConsumeManual }, []string{protocol, queueType}},
	{desc("rabbitmq_global_messages_delivered_get_auto_ack_total", "Total number of messages delivered to consumers using basic.get with automatic acknowledgment", protocolQueueTypeLabels),
		func(c server.Counters) uint64 { return c.DeliveredGetAuto }, []string{protocol, queueType}},
	{desc("rabbitmq_global_messages_delivered_get_manual_ack_total", "Total number of messages delivered to consumers using basic.get with manual acknowledgment", protocolQueueTypeLabels),
		func(c server.Counters) uint64 { return c.DeliveredGetManual }, []string{protocol, queueType}},
	{desc("rabbitmq_global_messages_delivered_total", "Total number of messages delivered to consumers", protocolQueueTypeLabels),
		server.Counters.Delivered, []string{protocol, queueType}},
	{desc("rabbitmq_global_messages_get_empty_total", "Total number of times basic.get operations fetched no message", protocolQueueTypeLabels),
		func(c server.Counters) uint64 { return c.GetEmpty }, []string{protocol, queueType}},
	{desc("rabbitmq_global_messages_received_confirm_total", "Total number of messages received from publishers expecting confirmations", protocolLabels),
		func(c server.Counters) uint64 { return c.ReceivedConfirm }, []string{protocol}},
	{desc("rabbitmq_global_messages_received_total", "Total number of messages received from publishers", protocolLabels),
		func(c server.Counters) uint64 { return c.Received }, []string{protocol}},
	{desc("rabbitmq_global_messages_redelivered_total", "Total number of messages redelivered to consumers", protocolQueueTypeLabels),
		func(c server.Counters) uint64 { return c.Redelivered }, []string{protocol, queueType}},
	{desc("rabbitmq_global_messages_routed_total", "Total number of messages routed to queues or streams", protocolLabels),
		func(c server.Counters) uint64 { return c.Routed }, []string{protocol}},
	{desc("rabbitmq_global_messages_unroutable_dropped_total", "Total number of messages published as non-mandatory into an exchange and dropped as unroutable", protocolLabels),
		func(c server.Counters) uint64 { return c.UnroutableDropped }, []string{protocol}},
	{desc("rabbitmq_global_messages_unroutable_returned_total", "Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable", protocolLabels),
		func(c server.Counters) uint64 { return c.UnroutableReturned }, []string{protocol}},
}

// channelCounters are RabbitMQ's rabbitmq_channel_* counters, served on
// the aggregated endpoint only (per object, RabbitMQ labels them by
// channel). RabbitMQ sums the open channels' counters, so its sums drop
// when a channel closes; Warren's count since the broker started, so that
// rate() over them never sees a false reset.
var channelCounters = []counterDesc{
	{desc("rabbitmq_channel_messages_published_total", "Total number of messages published into an exchange on a channel", nil),
		func(c server.Counters) uint64 { return c.Received }, nil},
	{desc("rabbitmq_channel_messages_confirmed_total", "Total number of messages published into an exchange and confirmed on the channel", nil),
		func(c server.Counters) uint64 { return c.Confirmed }, nil},
	{desc("rabbitmq_channel_messages_unroutable_returned_total", "Total number of messages published as mandatory into an exchange and returned to the publisher as unroutable", nil),
		func(c server.Counters) uint64 { return c.UnroutableReturned }, nil},
	{desc("rabbitmq_channel_messages_unroutable_dropped_total", "Total number of messages published as non-mandatory into an exchange and dropped as unroutable", nil),
		func(c server.Counters) uint64 { return c.UnroutableDropped }, nil},
	{desc("rabbitmq_channel_get_ack_total", "Total number of messages fetched with basic.get in manual acknowledgement mode", nil),
		func(c server.Counters) uint64 { return c.DeliveredGetManual }, nil},
	{desc("rabbitmq_channel_get_total", "Total number of messages fetched with basic.get in automatic acknowledgement mode", nil),
		func(c server.Counters) uint64 { return c.DeliveredGetAuto }, nil},
	{desc("rabbitmq_channel_messages_delivered_ack_total", "Total number of messages delivered to consumers in manual acknowledgement mode", nil),
		func(c server.Counters) uint64 { return c.DeliveredConsumeManual }, nil},
	{desc("rabbitmq_channel_messages_delivered_total", "Total number of messages delivered to consumers in automatic acknowledgement mode", nil),
		func(c server.Counters) uint64 { return c.DeliveredConsumeAuto }, nil},
	{desc("rabbitmq_channel_messages_redelivered_total", "Total number of messages redelivered to consumers", nil),
		func(c server.Counters) uint64 { return c.Redelivered }, nil},
	{desc("rabbitmq_channel_messages_acked_total", "Total number of messages acknowledged by consumers", nil),
		func(c server.Counters) uint64 { return c.Acknowledged }, nil},
	{desc("rabbitmq_channel_get_empty_total", "Total number of times basic.get operations fetched no message", nil),
		func(c server.Counters) uint64 { return c.GetEmpty }, nil},
}

// A queueGauge is a per-queue gauge: labelled vhost and queue per object,
// summed without labels when aggregated.
type queueGauge struct {
	name, help string
	value      func(server.QueueInfo) float64
}

var queueGauges = []queueGauge{
	{"rabbitmq_queue_messages_ready", "Messages ready to be delivered to consumers", func(q server.QueueInfo) float64 { return float64(q.Ready) }},
	{"rabbitmq_queue_messages_unacked", "Messages delivered to consumers but not yet acknowledged", func(q server.QueueInfo) float64 { return float64(q.Unacked) }},
	{"rabbitmq_queue_messages", "Sum of ready and unacknowledged messages - total queue depth", func(q server.QueueInfo) float64 { return float64(q.Ready + q.Unacked) }},
	{"rabbitmq_queue_consumers", "Consumers on a queue", func(q server.QueueInfo) float64 { return float64(q.Consumers) }},
	{"rabbitmq_queue_messages_ready_bytes", "Size in bytes of ready messages", func(q server.QueueInfo) float64 { return float64(q.ReadyBytes) }},
}

// Broker-wide gauges.
var (
	connectionsDesc     = desc("rabbitmq_connections", "Connections currently open", nil)
	channelsDesc        = desc("rabbitmq_channels", "Channels currently open", nil)
	consumersDesc       = desc("rabbitmq_consumers", "Consumers currently connected", nil)
	queuesDesc          = desc("rabbitmq_queues", "Queues available", nil)
	globalConsumersDesc = desc("rabbitmq_global_consumers", "Current number of consumers", protocolLabels)
	identityDesc        = desc("rabbitmq_identity_info", "RabbitMQ node & cluster identity info", identityLabels)

	// Sums over channels and connections, aggregated endpoint only.
	channelConsumersDesc  = desc("rabbitmq_channel_consumers", "Consumers on a channel", nil)
	channelUnackedDesc    = desc("rabbitmq_channel_messages_unacked", "Delivered but not yet acknowledged messages", nil)
	channelPrefetchDesc   = desc("rabbitmq_channel_prefetch", "Total limit of unacknowledged messages for all consumers on a channel", nil)
	consumerPrefetchDesc  = desc("rabbitmq_consumer_prefetch", "Limit of unacknowledged messages for each consumer", nil)
	connectionChannelDesc = desc("rabbitmq_connection_channels", "Channels on a connection", nil)
)

// Warren's own metrics.
var (
	buildInfoDesc   = desc("warren_build_info", "Warren's version and the Go version it was built with; always 1", []string{"version", "go_version"})
	commitsDesc     = desc("warren_store_commits_total", "Store batches written to the log and fsynced", nil)
	commitFailsDesc = desc("warren_store_commit_failures_total", "Store batches whose write failed; their changes were lost", nil)
	changesDesc     = desc("warren_store_changes_total", "Changes in written store batches, after coalescing", nil)
	storeBytesDesc  = desc("warren_store_size_bytes", "Size of the store's data as of the last checkpoint", nil)
	ckptsDesc       = desc("warren_store_checkpoints_total", "bbolt transactions applying logged batches", nil)
	ckptFailsDesc   = desc("warren_store_checkpoint_failures_total", "Checkpoints that failed and were retried; their changes stayed in the log", nil)
	ckptChangesDesc = desc("warren_store_checkpoint_changes_total", "Changes applied by checkpoints, after coalescing across batches", nil)
	ckptSecondsDesc = desc("warren_store_checkpoint_seconds_total", "Time spent in checkpoints, fsyncs included", nil)
	compactionsDesc = desc("warren_store_compactions_total", "Times the store's file was copied into a smaller one, giving back the space of drained messages", nil)
	queueMemDesc    = desc("warren_queue_memory_bytes", "What the queues have reserved of their shared memory budget (--queue-memory) for ready messages in memory: what each holds, rounded up to 16 KiB steps", nil)
	memUsedDesc     = desc("warren_memory_used_bytes", "What the memory alarm weighs against rabbitmq_resident_memory_limit_bytes at its last reading: the Go runtime's memory in use, not the heap's free pages nor the store's mapped file, which RSS counts", nil)
	queueMemMaxDesc = desc("warren_queue_memory_limit_bytes", "The queues' shared memory budget (--queue-memory); past it they page messages out; 0 for none", nil)

	// RabbitMQ's process and disk gauges, which its Grafana dashboards
	// plot (read from /proc and statfs at scrape time).
	residentDesc      = desc("rabbitmq_process_resident_memory_bytes", "Memory used in bytes", nil)
	openFDsDesc       = desc("rabbitmq_process_open_fds", "Open file descriptors", nil)
	maxFDsDesc        = desc("rabbitmq_process_max_fds", "Open file descriptors limit", nil)
	openTCPDesc       = desc("rabbitmq_process_open_tcp_sockets", "Open TCP sockets", nil)
	memLimitDesc      = desc("rabbitmq_resident_memory_limit_bytes", "Memory high watermark in bytes (--vm-memory-high-watermark); 0 when the alarm is off", nil)
	memAlarmDesc      = desc("rabbitmq_alarms_memory_used_watermark", "is 1 if VM memory watermark alarm is in effect", nil)
	diskAvailDesc     = desc("rabbitmq_disk_space_available_bytes", "Disk space available in bytes", nil)
	diskLimitDesc     = desc("rabbitmq_disk_space_available_limit_bytes", "Free disk space low watermark in bytes (--disk-free-limit); 0 when the alarm is off", nil)
	diskAlarmDesc     = desc("rabbitmq_alarms_free_disk_space_watermark", "is 1 if free disk space watermark alarm is in effect", nil)
	ioSyncDesc        = desc("rabbitmq_io_sync_ops_total", "Total number of I/O sync operations: the store's fsyncs and fdatasyncs", nil)
	commitLatencyDesc = desc("warren_store_commit_duration_seconds", "Time each store batch took to write to the log, fsync included", nil)
	batchSizeDesc     = desc("warren_store_commit_batch_size", "Changes in each written store batch, after coalescing", nil)
)

// collector reads a broker's state when scraped.
type collector struct {
	srv       *server.Server
	perObject bool
	node      string // rabbitmq_node, as the management API names it
	queues    []*prometheus.Desc
}

func newCollector(srv *server.Server, perObject bool) *collector {
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	c := &collector{srv: srv, perObject: perObject, node: "warren@" + host}
	var labels []string
	if perObject {
		labels = queueLabels
	}
	for _, g := range queueGauges {
		c.queues = append(c.queues, desc(g.name, g.help, labels))
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range brokerCounters {
		ch <- d.desc
	}
	for _, d := range globalCounters {
		ch <- d.desc
	}
	for i := 0; i < len(deadLetterCounters); i += 2 { // two series per family
		ch <- deadLetterCounters[i].desc
	}
	for _, d := range c.queues {
		ch <- d
	}
	for _, d := range []*prometheus.Desc{
		connectionsDesc, channelsDesc, consumersDesc, queuesDesc, globalConsumersDesc, identityDesc,
		buildInfoDesc, commitsDesc, commitFailsDesc, changesDesc, storeBytesDesc, commitLatencyDesc, batchSizeDesc,
		ckptsDesc, ckptFailsDesc, ckptChangesDesc, ckptSecondsDesc, compactionsDesc, queueMemDesc, queueMemMaxDesc, memUsedDesc,
		residentDesc, openFDsDesc, maxFDsDesc, openTCPDesc, memLimitDesc, diskAvailDesc, diskLimitDesc, ioSyncDesc,
	} {
		ch <- d
	}
	if !c.perObject {
		ch <- memAlarmDesc
		ch <- diskAlarmDesc
		for _, d := range channelCounters {
			ch <- d.desc
		}
		for _, d := range []*prometheus.Desc{channelConsumersDesc, channelUnackedDesc, channelPrefetchDesc, consumerPrefetchDesc, connectionChannelDesc} {
			ch <- d
		}
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counters := c.srv.Counters()
	overview := c.srv.Overview()
	queues := c.srv.Queues()

	counter := func(d counterDesc) {
		ch <- prometheus.MustNewConstMetric(d.desc, prometheus.CounterValue, float64(d.value(counters)), d.labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}

	for _, d := range brokerCounters {
		counter(d)
	}
	for _, d := range globalCounters {
		counter(d)
	}
	for _, d := range deadLetterCounters {
		counter(d)
	}
	gauge(connectionsDesc, float64(overview.Connections))
	gauge(channelsDesc, float64(overview.Channels))
	gauge(consumersDesc, float64(overview.Consumers))
	gauge(queuesDesc, float64(len(queues)))
	gauge(globalConsumersDesc, float64(overview.Consumers), protocol)
	ch <- prometheus.MustNewConstMetric(identityDesc, prometheus.UntypedValue, 1, c.node, "warren", "warren")

	if c.perObject {
		vhost := c.srv.Vhost()
		for _, q := range queues {
			for i, g := range queueGauges {
				gauge(c.queues[i], g.value(q), vhost, labelValue(q.Name))
			}
		}
	} else {
		// RabbitMQ serves the sums even when there are no queues.
		for i, g := range queueGauges {
			var sum float64
			for _, q := range queues {
				sum += g.value(q)
			}
			gauge(c.queues[i], sum)
		}
		for _, d := range channelCounters {
			counter(d)
		}
		var unacked, prefetch, globalPrefetch int
		for _, chi := range c.srv.Channels() {
			unacked += chi.Unacked
			prefetch += int(chi.Prefetch)
			globalPrefetch += int(chi.GlobalPrefetch)
		}
		gauge(channelConsumersDesc, float64(overview.Consumers))
		gauge(channelUnackedDesc, float64(unacked))
		gauge(channelPrefetchDesc, float64(globalPrefetch))
		gauge(consumerPrefetchDesc, float64(prefetch))
		gauge(connectionChannelDesc, float64(overview.Channels))
	}

	// The same /proc reader as the process collector.
	if p, err := procfs.Self(); err == nil {
		if st, err := p.Stat(); err == nil {
			gauge(residentDesc, float64(st.ResidentMemory()))
		}
		if n, err := p.FileDescriptorsLen(); err == nil {
			gauge(openFDsDesc, float64(n))
		}
		if l, err := p.Limits(); err == nil {
			gauge(maxFDsDesc, float64(l.OpenFiles))
		}
	}
	gauge(openTCPDesc, float64(overview.Connections))
	if free := c.srv.DiskFreeNow(); free >= 0 {
		gauge(diskAvailDesc, float64(free))
	}
	disk, mem := c.srv.Disk(), c.srv.Memory()
	gauge(diskLimitDesc, float64(disk.Limit))
	gauge(memLimitDesc, float64(mem.Limit))
	gauge(memUsedDesc, float64(mem.Used))
	if !c.perObject {
		// Untyped and in the aggregated endpoint only, as RabbitMQ's.
		ch <- prometheus.MustNewConstMetric(memAlarmDesc, prometheus.UntypedValue, flag(mem.Alarm))
		ch <- prometheus.MustNewConstMetric(diskAlarmDesc, prometheus.UntypedValue, flag(disk.Alarm))
	}
	gauge(buildInfoDesc, 1, server.Version, runtime.Version())
	st := c.srv.StoreStats()
	ch <- prometheus.MustNewConstMetric(commitsDesc, prometheus.CounterValue, float64(st.Commits))
	ch <- prometheus.MustNewConstMetric(commitFailsDesc, prometheus.CounterValue, float64(st.Failed))
	ch <- prometheus.MustNewConstMetric(changesDesc, prometheus.CounterValue, float64(st.Ops))
	gauge(storeBytesDesc, float64(st.Bytes))
	ch <- prometheus.MustNewConstMetric(ckptsDesc, prometheus.CounterValue, float64(st.Checkpoints))
	ch <- prometheus.MustNewConstMetric(ckptFailsDesc, prometheus.CounterValue, float64(st.CheckpointsFailed))
	ch <- prometheus.MustNewConstMetric(ckptChangesDesc, prometheus.CounterValue, float64(st.CheckpointOps))
	ch <- prometheus.MustNewConstMetric(ckptSecondsDesc, prometheus.CounterValue, st.CheckpointTime.Seconds())
	ch <- prometheus.MustNewConstMetric(compactionsDesc, prometheus.CounterValue, float64(st.Compactions))
	ch <- prometheus.MustNewConstMetric(ioSyncDesc, prometheus.CounterValue, float64(st.Syncs))
	used, limit := c.srv.QueueMemory()
	gauge(queueMemDesc, float64(used))
	gauge(queueMemMaxDesc, float64(limit))
	ch <- constHistogram(commitLatencyDesc, st.CommitLatency)
	ch <- constHistogram(batchSizeDesc, st.BatchSize)
}

// constHistogram turns a store histogram into a Prometheus one, whose
// buckets are cumulative.
func constHistogram(d *prometheus.Desc, h store.Histogram) prometheus.Metric {
	buckets := make(map[float64]uint64, len(h.Bounds))
	var n uint64
	for i, b := range h.Bounds {
		n += h.Counts[i]
		buckets[b] = n
	}
	return prometheus.MustNewConstHistogram(d, h.Count(), h.Sum, buckets)
}

// flag is 1 for true and 0 for false, an alarm's value.
func flag(on bool) float64 {
	if on {
		return 1
	}
	return 0
}
