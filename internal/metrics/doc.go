// Package metrics serves a broker's Prometheus metrics the way RabbitMQ
// 3.10's rabbitmq_prometheus plugin does, so its dashboards and alerts
// work against Warren unchanged.
//
// Handler serves two endpoints:
//
//   - /metrics: aggregated. Queue metrics are summed over every queue and
//     carry no labels, as RabbitMQ's default endpoint does.
//   - /metrics/per-object: one series per queue, labelled vhost and queue.
//
// Both also serve the broker-wide rabbitmq_* metrics (connections,
// channels, consumers, queues, the rabbitmq_global_messages_* counters),
// Warren's own warren_* metrics (the store's commits, their latency and
// batch sizes, its size) and the Go runtime and process collectors.
//
// Every rabbitmq_* name, type and label set is RabbitMQ's own; the tests
// check them against scrapes of a real RabbitMQ 3.10 in testdata/. Metrics
// RabbitMQ labels by channel or connection are left out of the per-object
// endpoint: Warren labels by vhost and queue only, never by connection or
// channel, whose ids would make a new series per client.
//
// Nothing here is updated on the message path. A custom
// prometheus.Collector reads the broker's live state when scraped, through
// server.Server's administrative interface (Counters, Overview, Queues,
// Channels, StoreStats), so a publish takes no lock for metrics.
package metrics
