package metrics_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/internal/metrics"
	"github.com/warrenmq/warren/server"
	"github.com/warrenmq/warren/server/servertest"
)

// waitTimeout bounds every wait for the broker to settle; it is only ever
// reached when a test fails.
const waitTimeout = 10 * time.Second

// broker is a test broker with its metrics served over HTTP on loopback.
type broker struct {
	*servertest.Broker
	metrics *httptest.Server
}

func startBroker(t *testing.T, modify ...func(*server.Options)) *broker {
	t.Helper()
	b := servertest.Start(t, modify...)
	hs := httptest.NewServer(metrics.Handler(b.Server))
	t.Cleanup(hs.Close)
	return &broker{Broker: b, metrics: hs}
}

// dial opens a client connection, closed when the test ends.
func (b *broker) dial(t *testing.T) *amqp.Connection {
	t.Helper()
	c, err := amqp.Dial(b.URL)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// families scrapes path ("/metrics" or "/metrics/per-object").
func (b *broker) families(t *testing.T, path string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(b.metrics.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s: %s", path, resp.Status, body)
	}
	fams, err := parse(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return fams
}

// scrape returns the samples of path, keyed by series (see series).
func (b *broker) scrape(t *testing.T, path string) map[string]float64 {
	t.Helper()
	return samples(b.families(t, path))
}

func parse(r io.Reader) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(r)
}

// parseFile parses a text exposition in testdata.
func parseFile(t *testing.T, name string) map[string]*dto.MetricFamily {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fams, err := parse(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return fams
}

// samples flattens families into series → value. A histogram gives its
// _count and _sum; its buckets are left out.
func samples(fams map[string]*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			labels := m.GetLabel()
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[series(name, labels)] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[series(name, labels)] = m.GetGauge().GetValue()
			case dto.MetricType_UNTYPED:
				out[series(name, labels)] = m.GetUntyped().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[series(name+"_count", labels)] = float64(m.GetHistogram().GetSampleCount())
				out[series(name+"_sum", labels)] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

// series names one series as the text format does, labels sorted by name:
// name{a="1",b="2"}.
func series(name string, labels []*dto.LabelPair) string {
	if len(labels) == 0 {
		return name
	}
	parts := make([]string, 0, len(labels))
	for _, l := range labels {
		parts = append(parts, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	slices.Sort(parts)
	return name + "{" + strings.Join(parts, ",") + "}"
}

// diff lists the series of want that got lacks or has another value.
func diff(got, want map[string]float64) []string {
	var out []string
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s: missing, want %v", k, w))
		case g != w:
			out = append(out, fmt.Sprintf("%s = %v, want %v", k, g, w))
		}
	}
	slices.Sort(out)
	return out
}

// waitFor scrapes path until every series of want has its value (counts
// lag a moment behind the client), and fails the test if they do not
// within waitTimeout. It returns the last scrape.
func (b *broker) waitFor(t *testing.T, path string, want map[string]float64) map[string]float64 {
	t.Helper()
	var d []string
	got := b.poll(t, path, func(got map[string]float64) bool {
		d = diff(got, want)
		return len(d) == 0
	})
	if got == nil {
		t.Fatalf("%s did not settle:\n\t%s", path, strings.Join(d, "\n\t"))
	}
	return got
}

// waitUntil scrapes path until ok accepts a scrape, and returns it; it
// fails the test if none does within waitTimeout.
func (b *broker) waitUntil(t *testing.T, path string, ok func(map[string]float64) bool) map[string]float64 {
	t.Helper()
	got := b.poll(t, path, ok)
	if got == nil {
		t.Fatalf("%s did not settle", path)
	}
	return got
}

// poll scrapes path until ok accepts a scrape and returns it, or returns
// nil after waitTimeout.
func (b *broker) poll(t *testing.T, path string, ok func(map[string]float64) bool) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		got := b.scrape(t, path)
		if ok(got) {
			return got
		}
		if time.Now().After(deadline) {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// recv takes the next delivery, failing the test if none comes.
func recv(t *testing.T, ds <-chan amqp.Delivery) amqp.Delivery {
	t.Helper()
	select {
	case d, ok := <-ds:
		if !ok {
			t.Fatal("delivery channel closed")
		}
		return d
	case <-time.After(waitTimeout):
		t.Fatal("no delivery")
	}
	panic("unreachable")
}

// confirmed waits for n publisher confirms, failing the test on a nack or
// if they do not come.
func confirmed(t *testing.T, confirms <-chan amqp.Confirmation, n int) {
	t.Helper()
	for range n {
		select {
		case c := <-confirms:
			if !c.Ack {
				t.Fatalf("publish %d nacked", c.DeliveryTag)
			}
		case <-time.After(waitTimeout):
			t.Fatal("no confirm")
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
