// Command warren-perf is a load generator for any AMQP 0-9-1 broker,
// modelled on RabbitMQ's PerfTest and taking the same flag names:
//
//	warren-perf -h amqp://guest:guest@localhost:5672/ -x 1 -y 1 -s 1024 -z 10
//
// It declares what it needs (an exchange and queues named after the run,
// unless told otherwise), runs producers and consumers each on their own
// connection, prints rates and latency percentiles every second and a
// JSON summary at the end, deletes what it declared, and ends on its own:
// after -z seconds, or once -C messages are published (and -D consumed),
// or after 10 seconds if neither is given.
//
// `warren-perf compare` runs a set of scenarios against two brokers,
// alternating, and prints the ratios (see compare.go).
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	if len(os.Args) > 1 && os.Args[1] == "compare" {
		err = compareMain(ctx, os.Args[2:], os.Stdout)
	} else {
		_, err = runMain(ctx, os.Args[1:], os.Stdout)
	}
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "warren-perf:", err)
		os.Exit(1)
	}
}

// config is one run's settings.
type config struct {
	uri           string
	producers     int
	consumers     int
	size          int
	autoAck       bool
	multiAckEvery int
	prefetch      int
	confirm       int
	flags         flagList
	duration      time.Duration
	rate          float64
	exchangeType  string
	exchange      string
	routingKey    string
	queue         string
	txSize        int
	queues        int
	bindings      int
	maxPriority   int
	pmessages     int
	cmessages     int
	rpc           bool
	client        string
	replyTo       string
	rpcWorkers    int
	idleConns     int
	brokerPID     int
	interval      time.Duration
	id            string
	jsonFile      string
	quiet         bool
}

func (c *config) persistent() bool { return c.flags.has("persistent") }
func (c *config) mandatory() bool  { return c.flags.has("mandatory") }

// flagList is a repeatable -f.
type flagList []string

func (f *flagList) String() string { return strings.Join(*f, ",") }
func (f *flagList) Set(v string) error {
	for p := range strings.SplitSeq(v, ",") {
		switch p = strings.TrimSpace(strings.ToLower(p)); p {
		case "persistent", "mandatory":
			*f = append(*f, p)
		default:
			return fmt.Errorf("unknown flag %q (persistent or mandatory)", p)
		}
	}
	return nil
}

func (f flagList) has(v string) bool {
	for _, x := range f {
		if x == v {
			return true
		}
	}
	return false
}

// parseConfig reads PerfTest-style flags: each has its short name (-x) and
// its long one (--producers).
func parseConfig(args []string, out io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("warren-perf", flag.ContinueOnError)
	fs.SetOutput(out)
	str := func(p *string, short, long, def, usage string) {
		fs.StringVar(p, short, def, usage)
		fs.StringVar(p, long, def, usage)
	}
	num := func(p *int, short, long string, def int, usage string) {
		if short != "" {
			fs.IntVar(p, short, def, usage)
		}
		fs.IntVar(p, long, def, usage)
	}
	str(&c.uri, "h", "uri", "amqp://guest:guest@localhost:5672/", "broker URI")
	num(&c.producers, "x", "producers", 1, "number of producers (RPC callers with --rpc)")
	num(&c.consumers, "y", "consumers", 1, "number of consumers (RPC servers with --rpc)")
	num(&c.size, "s", "size", 12, "message size in bytes (at least 8 carry the send time)")
	fs.BoolVar(&c.autoAck, "a", false, "consumers use automatic acknowledgement")
	fs.BoolVar(&c.autoAck, "autoack", false, "consumers use automatic acknowledgement")
	num(&c.multiAckEvery, "A", "multi-ack-every", 0, "ack with multiple=true every N messages (0 or 1: ack each)")
	num(&c.prefetch, "q", "qos", 0, "consumer prefetch count (0: unlimited)")
	num(&c.confirm, "c", "confirm", -1, "publisher confirms with at most N unconfirmed messages outstanding per producer (-1: no confirms)")
	fs.Var(&c.flags, "f", "message flag: persistent or mandatory (repeatable); persistent also makes the queues durable")
	fs.Var(&c.flags, "flag", "message flag: persistent or mandatory (repeatable)")
	var seconds float64
	fs.Float64Var(&seconds, "z", 0, "run time in seconds (0: until -C/-D are reached, else 10)")
	fs.Float64Var(&seconds, "time", 0, "run time in seconds")
	fs.Float64Var(&c.rate, "r", 0, "publishing rate limit per producer, messages/s (0: none)")
	fs.Float64Var(&c.rate, "rate", 0, "publishing rate limit per producer, messages/s")
	str(&c.exchangeType, "t", "type", "direct", "exchange type: direct, fanout or topic")
	str(&c.exchange, "e", "exchange", "", "exchange name (default: one named after the run, declared and deleted; amq.* and predeclared names are used as they are)")
	str(&c.routingKey, "k", "routing-key", "", "routing key (default: the queue's name)")
	str(&c.queue, "u", "queue", "", "queue name (default: named after the run); with --queues N, the prefix")
	num(&c.txSize, "m", "producer-tx-size", 0, "producers publish in transactions of N messages (0: no transactions)")
	num(&c.queues, "", "queues", 1, "number of queues; producer and consumer i use queue i mod N")
	num(&c.bindings, "", "bindings", 0, "topic exchanges: total bindings, spread over the queues, each message matching one (default: one per queue)")
	num(&c.maxPriority, "", "max-priority", 0, "declare the queues with x-max-priority N and publish with priorities 0..N in turn (0: no priorities)")
	num(&c.pmessages, "C", "pmessages", 0, "each producer publishes N messages then stops (0: no limit)")
	num(&c.cmessages, "D", "cmessages", 0, "each consumer consumes N messages then stops (0: no limit)")
	fs.StringVar(&c.client, "client", "lean", "client for producers, consumers and RPC callers and servers: lean (warren-perf's own, a few allocation-free frames per message) or amqp091 (amqp091-go and, for --rpc, Warren's rpc package); setup and cleanup always use amqp091-go")
	fs.BoolVar(&c.rpc, "rpc", false, "RPC: producers are callers (one call outstanding each), consumers are servers replying to each request")
	fs.StringVar(&c.replyTo, "reply-to", "direct", "RPC replies: direct (direct reply-to) or queue (an exclusive reply queue per caller)")
	fs.IntVar(&c.rpcWorkers, "rpc-workers", 16, "RPC with --client amqp091: concurrent handlers per server (the lean server handles requests in turn, its prefetch is the larger of -q and this)")
	fs.IntVar(&c.idleConns, "idle-connections", 0, "open N idle connections, report the broker's RSS, and close them (no traffic)")
	fs.IntVar(&c.brokerPID, "broker-pid", 0, "the broker's process id, for its CPU and memory figures (default: found from the URI's port when the broker is on this host)")
	fs.DurationVar(&c.interval, "interval", time.Second, "reporting interval")
	fs.StringVar(&c.id, "id", "", "run id, used in names (default: random)")
	fs.StringVar(&c.jsonFile, "json", "", "also write the JSON summary to this file")
	fs.BoolVar(&c.quiet, "quiet", false, "no per-interval lines")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	c.duration = time.Duration(seconds * float64(time.Second))
	if c.duration == 0 && c.pmessages == 0 && c.cmessages == 0 && c.idleConns == 0 {
		c.duration = 10 * time.Second
	}
	if c.id == "" {
		var b [4]byte
		rand.Read(b[:])
		c.id = "perf-" + hex.EncodeToString(b[:])
	}
	switch {
	case c.producers < 0 || c.consumers < 0 || c.size < 0 || c.queues < 1 || c.prefetch < 0 || c.prefetch > 65535:
		return nil, errors.New("-x, -y, -s, -q must not be negative, --queues must be at least 1, -q at most 65535")
	case c.exchangeType != "direct" && c.exchangeType != "fanout" && c.exchangeType != "topic":
		return nil, fmt.Errorf("-t %q: direct, fanout or topic", c.exchangeType)
	case c.client != "lean" && c.client != "amqp091":
		return nil, fmt.Errorf("--client %q: lean or amqp091", c.client)
	case c.replyTo != "direct" && c.replyTo != "queue":
		return nil, fmt.Errorf("--reply-to %q: direct or queue", c.replyTo)
	case c.txSize > 0 && c.confirm >= 0:
		return nil, errors.New("-m and -c cannot be used together (a channel is transactional or in confirm mode)")
	case c.interval <= 0:
		return nil, errors.New("--interval must be positive")
	case c.maxPriority < 0 || c.maxPriority > 255:
		return nil, errors.New("--max-priority must be from 0 to 255")
	}
	if c.confirm == 0 {
		c.confirm = 1
	}
	return c, nil
}

// runMain runs one load test and prints its report to out.
func runMain(ctx context.Context, args []string, out io.Writer) (*summary, error) {
	cfg, err := parseConfig(args, out)
	if err != nil {
		return nil, err
	}
	s, err := run(ctx, cfg, out)
	if s != nil {
		data, _ := json.Marshal(s)
		fmt.Fprintf(out, "%s\n", data)
		if cfg.jsonFile != "" {
			if werr := os.WriteFile(cfg.jsonFile, append(data, '\n'), 0o644); werr != nil && err == nil {
				err = werr
			}
		}
	}
	return s, err
}
