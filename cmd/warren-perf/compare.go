package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// scenario is one line of the comparison: warren-perf flags and the figure
// compared.
type scenario struct {
	name   string
	args   []string
	metric string  // see value
	target float64 // the ratio Warren aims for (0: none)
	note   string  // what the target means
}

// scenarios are the comparison set, and one more at the end. Rates are compared as
// Warren/reference; latencies and memory as reference/Warren, so above 1
// is always Warren ahead.
var scenarios = []scenario{
	{"16B transient autoack", []string{"-x", "1", "-y", "1", "-s", "16", "-a"}, "receive_rate", 5, "consume rate ≥5x, broker CPU per 1M msgs ≤1/5"},
	{"1KiB transient, acks, prefetch 100", []string{"-x", "1", "-y", "1", "-s", "1024", "-q", "100"}, "receive_rate", 0, ""},
	{"1KiB persistent, 100 confirms", []string{"-x", "1", "-y", "1", "-s", "1024", "-f", "persistent", "-c", "100", "-q", "100"}, "confirm_rate", 4, "≥4x, confirming after fsync"},
	{"1KiB persistent, 1 confirm", []string{"-x", "1", "-y", "1", "-s", "1024", "-f", "persistent", "-c", "1", "-q", "100"}, "confirm_rate", 0, ""},
	{"fanout to 10 queues", []string{"-x", "1", "-y", "10", "-s", "1024", "-a", "-t", "fanout", "--queues", "10"}, "receive_rate", 3, "≥3x"},
	{"topic, 1000 bindings, 4 consumers", []string{"-x", "1", "-y", "4", "-s", "16", "-a", "-t", "topic", "--queues", "4", "--bindings", "1000"}, "receive_rate", 3, "≥3x"},
	{"64KiB messages", []string{"-x", "1", "-y", "1", "-s", "65536", "-a"}, "bytes_rate", 0, "≥1 GB/s"},
	{"100x100 on 100 queues, 100 msg/s each", []string{"-x", "100", "-y", "100", "-s", "1024", "-a", "--queues", "100", "-r", "100"}, "latency", 1, "p50 and p99 lower"},
	{"RPC, reply queue", []string{"--rpc", "--reply-to", "queue", "-x", "16", "-y", "1", "-s", "64"}, "call_rate", 2, "≥2x"},
	{"RPC, direct reply-to", []string{"--rpc", "--reply-to", "direct", "-x", "16", "-y", "1", "-s", "64"}, "call_rate", 2, "≥2x"},
	{"transactions of 10", []string{"-x", "1", "-y", "1", "-s", "1024", "-f", "persistent", "-m", "10", "-a"}, "commit_rate", 3, "≥3x"},
	{"10000 idle connections", []string{"--idle-connections", "10000"}, "idle_rss", 0, "≤300 MB RSS"},
	// Not in the set: a message the store holds once for several
	// durable queues (the store's shared puts).
	{"64KiB persistent fanout to 10 durable queues, 100 confirms", []string{"-x", "1", "-y", "10", "-s", "65536", "-f", "persistent", "-c", "100", "-q", "100", "-t", "fanout", "--queues", "10"}, "confirm_rate", 0, ""},
}

// value is a run's figure for a metric.
func value(s *summary, metric string) float64 {
	switch metric {
	case "receive_rate":
		return s.ReceiveRate
	case "confirm_rate":
		return float64(s.Confirmed) / s.Seconds
	case "bytes_rate":
		return s.BytesRate
	case "call_rate":
		return s.CallRate
	case "commit_rate":
		return s.CommitRate
	case "idle_rss":
		return float64(s.BrokerRSSBytes)
	case "latency_p50":
		if s.Latency != nil {
			return s.Latency.P50
		}
	case "latency_p99":
		if s.Latency != nil {
			return s.Latency.P99
		}
	}
	return 0
}

// cpuPerMillion is the broker's CPU seconds per million messages
// delivered, or 0 when unknown.
func cpuPerMillion(s *summary) float64 {
	n := s.Received
	if s.Calls > 0 {
		n = s.Calls
	}
	if s.BrokerPID == 0 || n == 0 {
		return 0
	}
	return s.BrokerCPUSeconds / (float64(n) / 1e6)
}

// comparison is one scenario's results, in the JSON output.
type comparison struct {
	Scenario  string     `json:"scenario"`
	Args      string     `json:"args"`
	Metric    string     `json:"metric"`
	Warren    []*summary `json:"warren"`
	Reference []*summary `json:"reference"`
	Ratios    []float64  `json:"ratios"`
	Error     string     `json:"error,omitempty"`
}

func compareMain(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("warren-perf compare", flag.ContinueOnError)
	fs.SetOutput(out)
	warren := fs.String("warren", "amqp://guest:guest@localhost:5672/", "Warren's URI")
	ref := fs.String("reference", "amqp://guest:guest@localhost:5673/", "the reference broker's URI (RabbitMQ)")
	seconds := fs.Float64("z", 10, "seconds per run")
	runs := fs.Int("runs", 2, "runs per broker and scenario, alternating which goes first")
	only := fs.String("scenarios", "", "comma-separated scenario numbers to run (1-based; default all)")
	jsonFile := fs.String("json", "", "write every run's summary to this file")
	settle := fs.Duration("settle", 15*time.Second, "before each run, wait (at most this long) until both brokers use under a tenth of a core, so a broker still busy with the last run is not measured against the next; 0 to not wait")
	client := fs.String("client", "lean", "client for producers and consumers in every run: lean or amqp091 (see warren-perf -h)")
	list := fs.Bool("list", false, "list the scenarios and exit")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: warren-perf compare [flags]\n\nRuns each scenario against Warren and a reference broker, alternating,\nand prints Warren/reference ratios (above 1: Warren ahead).\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *list {
		for i, s := range scenarios {
			fmt.Fprintf(out, "%2d  %-40s %s\n", i+1, s.name, strings.Join(s.args, " "))
		}
		return nil
	}
	if *runs < 1 || *seconds <= 0 {
		return errors.New("--runs must be at least 1 and -z positive")
	}
	chosen := scenarios
	if *only != "" {
		chosen = nil
		for p := range strings.SplitSeq(*only, ",") {
			i, err := strconv.Atoi(strings.TrimSpace(p))
			if err != nil || i < 1 || i > len(scenarios) {
				return fmt.Errorf("--scenarios: %q is not a scenario number (see --list)", p)
			}
			chosen = append(chosen, scenarios[i-1])
		}
	}
	brokers := [2]string{*warren, *ref}
	pids := []int{brokerPID(*warren), brokerPID(*ref)}
	var results []comparison
	table := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(table, "scenario\tmetric\twarren\treference\tratio\tper run\ttarget")
	for _, sc := range chosen {
		c := comparison{Scenario: sc.name, Args: strings.Join(sc.args, " "), Metric: sc.metric}
		for run := range *runs {
			order := []int{0, 1}
			if run%2 == 1 {
				order = []int{1, 0}
			}
			var pair [2]*summary
			for _, b := range order {
				waitIdle(ctx, pids, *settle)
				args := append([]string{"-h", brokers[b], "--quiet", "--client", *client, "-z", strconv.FormatFloat(*seconds, 'f', -1, 64)}, sc.args...)
				if sc.metric == "idle_rss" {
					args = append([]string{"-h", brokers[b], "--quiet"}, sc.args...)
				}
				s, err := runMain(ctx, args, io.Discard)
				if err == nil && s != nil && len(s.Errors) > 0 {
					err = errors.New(strings.Join(s.Errors, "; "))
				}
				if err != nil {
					c.Error = fmt.Sprintf("%s: %v", []string{"warren", "reference"}[b], err)
				}
				pair[b] = s
				if ctx.Err() != nil {
					return ctx.Err()
				}
			}
			c.Warren = append(c.Warren, pair[0])
			c.Reference = append(c.Reference, pair[1])
			if pair[0] != nil && pair[1] != nil {
				c.Ratios = append(c.Ratios, ratio(sc.metric, pair[0], pair[1]))
			}
		}
		results = append(results, c)
		fmt.Fprintf(out, "# %s: %s\n", sc.name, ratios(c.Ratios))
		printRow(table, sc, c)
	}
	fmt.Fprintln(out)
	table.Flush()
	if *jsonFile != "" {
		data, _ := json.MarshalIndent(results, "", "  ")
		if err := os.WriteFile(*jsonFile, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// ratio compares one run of each: above 1 is Warren ahead.
func ratio(metric string, w, r *summary) float64 {
	switch metric {
	case "latency":
		return safeDiv(value(r, "latency_p50"), value(w, "latency_p50"))
	case "idle_rss":
		return safeDiv(value(r, metric), value(w, metric))
	}
	return safeDiv(value(w, metric), value(r, metric))
}

func safeDiv(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func mean(xs []*summary, f func(*summary) float64) float64 {
	var sum float64
	n := 0
	for _, s := range xs {
		if s != nil {
			sum += f(s)
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

func ratios(rs []float64) string {
	var runs []string
	for _, r := range rs {
		runs = append(runs, fmt.Sprintf("%.2f", r))
	}
	return strings.Join(runs, " ")
}

// printRow adds a scenario's lines to the table.
func printRow(tw io.Writer, sc scenario, c comparison) {
	runs := []string{ratios(c.Ratios)}
	target := sc.note
	if c.Error != "" {
		target += " ERROR: " + c.Error
	}
	w := func(metric string) float64 {
		return mean(c.Warren, func(s *summary) float64 { return value(s, metric) })
	}
	r := func(metric string) float64 {
		return mean(c.Reference, func(s *summary) float64 { return value(s, metric) })
	}
	switch sc.metric {
	case "latency":
		fmt.Fprintf(tw, "%s\tlatency p50 µs\t%.0f\t%.0f\t%.2fx\t%s\t%s\n", sc.name, w("latency_p50"), r("latency_p50"), safeDiv(r("latency_p50"), w("latency_p50")), strings.Join(runs, " "), target)
		fmt.Fprintf(tw, "\tlatency p99 µs\t%.0f\t%.0f\t%.2fx\t\t\n", w("latency_p99"), r("latency_p99"), safeDiv(r("latency_p99"), w("latency_p99")))
	case "idle_rss":
		fmt.Fprintf(tw, "%s\tbroker RSS MB\t%.0f\t%.0f\t%.2fx\t%s\t%s\n", sc.name, w(sc.metric)/1e6, r(sc.metric)/1e6, safeDiv(r(sc.metric), w(sc.metric)), strings.Join(runs, " "), target)
	default:
		unit, scale := "msg/s", 1.0
		switch sc.metric {
		case "bytes_rate":
			unit, scale = "MB/s", 1e6
		case "call_rate":
			unit = "calls/s"
		case "commit_rate":
			unit = "tx/s"
		case "confirm_rate":
			unit = "confirms/s"
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.0f\t%.2fx\t%s\t%s\n", sc.name, unit, w(sc.metric)/scale, r(sc.metric)/scale, safeDiv(w(sc.metric), r(sc.metric)), strings.Join(runs, " "), target)
	}
	wc, rc := mean(c.Warren, cpuPerMillion), mean(c.Reference, cpuPerMillion)
	if wc > 0 && rc > 0 {
		fmt.Fprintf(tw, "\tbroker CPU s/1M msgs\t%.2f\t%.2f\t%.2f\t\t\n", wc, rc, wc/rc)
	}
	wcl := mean(c.Warren, func(s *summary) float64 { return s.ClientCPUSeconds / max(s.Seconds, 1e-9) })
	rcl := mean(c.Reference, func(s *summary) float64 { return s.ClientCPUSeconds / max(s.Seconds, 1e-9) })
	if sc.metric != "idle_rss" {
		fmt.Fprintf(tw, "\tclient CPU (cores)\t%.2f\t%.2f\t\t\t\n", wcl, rcl)
	}
}
