package server_test

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/warrenmq/warren/server/servertest"
)

// benchSyncs returns a function reading how many fsyncs broker name (warren
// or reference) has made so far, or nil if that cannot be read, for the
// benchmarks' fsyncs/s; a reading that fails is logged and the figure left
// out:
//   - Warren in the benchmark's process: its store's Syncs;
//   - Warren run apart: the rabbitmq_io_sync_ops_total of its metrics,
//     WARREN_BENCH_METRICS_URL (its --metrics-addr, e.g.
//     http://127.0.0.1:15692/metrics);
//   - the reference RabbitMQ through rabbitmqctl: WARREN_REF_RABBITMQCTL
//     is the command line to run (e.g. "rabbitmqctl -n rabbit@host"), with
//     `eval 'file_handle_cache_stats:get().'` added, and the io_sync count
//     read from its answer: the file handle cache's live count, which is
//     all of a classic queue's syncs. (RabbitMQ's own metrics copy it only
//     every collect_statistics_interval, 5 s by default: too seldom for a
//     run of a few seconds.)
func benchSyncs(b *testing.B, name string, w *servertest.Broker) func() (uint64, bool) {
	switch {
	case name == "warren" && w != nil:
		return func() (uint64, bool) { return w.Server.StoreStats().Syncs, true }
	case name == "warren" && os.Getenv("WARREN_BENCH_METRICS_URL") != "":
		return metricsSyncs(b, os.Getenv("WARREN_BENCH_METRICS_URL"))
	case name == "reference" && os.Getenv("WARREN_REF_RABBITMQCTL") != "":
		return rabbitmqctlSyncs(b, strings.Fields(os.Getenv("WARREN_REF_RABBITMQCTL")))
	}
	return nil
}

// metricsSyncs reads rabbitmq_io_sync_ops_total from a Prometheus
// endpoint.
func metricsSyncs(b *testing.B, url string) func() (uint64, bool) {
	return func() (uint64, bool) {
		resp, err := http.Get(url)
		if err != nil {
			b.Logf("fsync count: %v", err)
			return 0, false
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Logf("fsync count: %s: %s", url, resp.Status)
			return 0, false
		}
		n, err := syncsFromMetrics(resp.Body)
		if err != nil {
			b.Logf("fsync count from %s: %v", url, err)
			return 0, false
		}
		return n, true
	}
}

// syncsFromMetrics finds rabbitmq_io_sync_ops_total in a Prometheus text
// exposition.
func syncsFromMetrics(r io.Reader) (uint64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && (f[0] == "rabbitmq_io_sync_ops_total" || strings.HasPrefix(f[0], "rabbitmq_io_sync_ops_total{")) {
			v, err := strconv.ParseFloat(f[1], 64)
			return uint64(v), err
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, io.ErrUnexpectedEOF
}

// ioSyncCount matches the io_sync count in file_handle_cache_stats:get()'s
// answer: {{io_sync,count},N}.
var ioSyncCount = regexp.MustCompile(`\{\{io_sync,count\},(\d+)\}`)

// rabbitmqctlSyncs reads RabbitMQ's io_sync count through rabbitmqctl.
func rabbitmqctlSyncs(b *testing.B, cmd []string) func() (uint64, bool) {
	return func() (uint64, bool) {
		out, err := exec.Command(cmd[0], append(cmd[1:], "eval", "file_handle_cache_stats:get().")...).CombinedOutput()
		if err != nil {
			b.Logf("fsync count: %s: %v\n%s", strings.Join(cmd, " "), err, out)
			return 0, false
		}
		m := ioSyncCount.FindSubmatch(out)
		if m == nil {
			b.Logf("fsync count: no io_sync count in %q", out)
			return 0, false
		}
		n, err := strconv.ParseUint(string(m[1]), 10, 64)
		return n, err == nil
	}
}

// TestBenchSyncsParsers: the fsync counts are read from both answers as
// the brokers give them (RabbitMQ 3.10's rabbitmqctl answer, trimmed).
func TestBenchSyncsParsers(t *testing.T) {
	prom := "# HELP rabbitmq_io_sync_ops_total Total number of I/O sync operations\n" +
		"# TYPE rabbitmq_io_sync_ops_total counter\nrabbitmq_io_sync_ops_total 25892\nrabbitmq_io_write_ops_total 7\n"
	if n, err := syncsFromMetrics(strings.NewReader(prom)); err != nil || n != 25892 {
		t.Errorf("from metrics: %d, %v; want 25892", n, err)
	}
	if _, err := syncsFromMetrics(strings.NewReader("rabbitmq_io_write_ops_total 7\n")); err == nil {
		t.Error("from metrics without the counter: no error")
	}
	ctl := "[{{io_read,bytes},1},\n {{io_seek,count},212},\n {{io_sync,count},25892},\n {{io_sync,time},9245481},\n {{io_write,count},25892}]\n"
	if m := ioSyncCount.FindStringSubmatch(ctl); m == nil || m[1] != "25892" {
		t.Errorf("from rabbitmqctl: %v; want 25892", m)
	}
}
