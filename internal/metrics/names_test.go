package metrics_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	amqp "github.com/rabbitmq/amqp091-go"
)

// refFamily is what RabbitMQ serves under one name: its type and the
// label-name sets of its series.
type refFamily struct {
	typ    dto.MetricType
	labels map[string]bool // label names joined by ","
}

// reference reads RabbitMQ's scrapes of one endpoint in testdata.
func reference(t *testing.T, files ...string) map[string]*refFamily {
	t.Helper()
	ref := map[string]*refFamily{}
	for _, file := range files {
		for name, f := range parseFile(t, file) {
			r := ref[name]
			if r == nil {
				r = &refFamily{typ: f.GetType(), labels: map[string]bool{}}
				ref[name] = r
			}
			if r.typ != f.GetType() {
				t.Fatalf("%s: %s in one reference file, %s in another", name, r.typ, f.GetType())
			}
			for _, m := range f.GetMetric() {
				r.labels[labelNames(m)] = true
			}
		}
	}
	return ref
}

func labelNames(m *dto.Metric) string {
	var names []string
	for _, l := range m.GetLabel() {
		names = append(names, l.GetName())
	}
	slices.Sort(names)
	return strings.Join(names, ",")
}

// TestRabbitMQNames checks that every rabbitmq_* metric Warren serves is
// one RabbitMQ 3.10 serves on the same endpoint, with the same type and
// label names, so Warren never invents a rabbitmq_* name.
func TestRabbitMQNames(t *testing.T) {
	b := startBroker(t)

	// Traffic, so that every family has series: a queue with a consumer
	// and messages ready and unacked, confirms, returns and gets.
	ch, err := b.dial(t).Channel()
	must(t, err)
	_, err = ch.QueueDeclare("names", false, false, false, false, nil)
	must(t, err)
	must(t, ch.Confirm(false))
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 3))
	for _, key := range []string{"names", "names", "nowhere"} {
		must(t, ch.PublishWithContext(context.Background(), "", key, key == "nowhere", false, amqp.Publishing{Body: []byte("x")}))
	}
	confirmed(t, confirms, 3)
	ds, err := ch.Consume("names", "", false, false, false, false, nil)
	must(t, err)
	recv(t, ds)
	if _, _, err := ch.Get("names", false); err != nil {
		t.Fatal(err)
	}
	b.waitFor(t, "/metrics/per-object", map[string]float64{`rabbitmq_queue_messages_unacked{queue="names",vhost="/"}`: 2})

	for _, tc := range []struct {
		path string
		ref  []string
	}{
		{"/metrics", []string{"rabbitmq-3.10-aggregated.txt", "rabbitmq-3.10-aggregated-traffic.txt"}},
		{"/metrics/per-object", []string{"rabbitmq-3.10-per-object.txt", "rabbitmq-3.10-per-object-traffic.txt"}},
	} {
		t.Run(strings.TrimPrefix(tc.path, "/"), func(t *testing.T) {
			ref := reference(t, tc.ref...)
			served := 0
			for name, f := range b.families(t, tc.path) {
				if !strings.HasPrefix(name, "rabbitmq_") {
					if !strings.HasPrefix(name, "warren_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
						t.Errorf("%s: neither rabbitmq_, warren_ nor the Go collectors'", name)
					}
					continue
				}
				served++
				r, ok := ref[name]
				if !ok {
					t.Errorf("%s: RabbitMQ 3.10 does not serve it at %s", name, tc.path)
					continue
				}
				if f.GetType() != r.typ {
					t.Errorf("%s: type %s, RabbitMQ's is %s", name, f.GetType(), r.typ)
				}
				for _, m := range f.GetMetric() {
					if !r.labels[labelNames(m)] {
						t.Errorf("%s: labels {%s}, RabbitMQ's are %v", name, labelNames(m), keys(r.labels))
					}
				}
			}
			if served < 20 {
				t.Errorf("only %d rabbitmq_* families served", served)
			}
		})
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, "{"+k+"}")
	}
	slices.Sort(out)
	return out
}
