// Command warren runs the Warren AMQP 0-9-1 broker.
//
// With no arguments it listens on :5672 and keeps its data in ./warren-data.
// The management API and web UI are on :15672 and Prometheus metrics on
// :15692, as in RabbitMQ. Every flag can also be set with a WARREN_*
// environment variable (the flag name upper-cased, dashes as underscores) or
// a `name = value` line in the config file named by --config; a flag on the
// command line wins over the environment, which wins over the file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/warrenmq/warren/internal/gctune"
	"github.com/warrenmq/warren/internal/proctune"
	"github.com/warrenmq/warren/internal/store"
	"github.com/warrenmq/warren/server"
)

// procsInterval is how often --adaptive-procs looks at the load.
const procsInterval = 50 * time.Millisecond

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "warren:", err)
		os.Exit(1)
	}
}

// parseUsers reads --users: name:password pairs separated by commas.
func parseUsers(s string) (map[string]string, error) {
	users := map[string]string{}
	for pair := range strings.SplitSeq(s, ",") {
		name, pass, ok := strings.Cut(strings.TrimSpace(pair), ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("--users: %q is not name:password", pair)
		}
		if _, dup := users[name]; dup {
			return nil, fmt.Errorf("--users: %q given twice", name)
		}
		users[name] = pass
	}
	return users, nil
}

func envName(flagName string) string {
	return "WARREN_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// isSet says whether flag name was given (command line, environment or
// config file).
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// memoryWatermark is server.Options.MemoryHighWatermark for the two
// memory alarm flags: absolute bytes if above 0, else relative of the
// memory the process may use; -1 (off) for a relative 0, or if that memory
// cannot be read.
func memoryWatermark(relative float64, absolute int64, log *slog.Logger) (int64, error) {
	switch {
	case !(relative >= 0 && relative <= 1): // NaN too
		return 0, fmt.Errorf("--vm-memory-high-watermark must be from 0 to 1 (0 turns the alarm off)")
	case absolute < 0:
		return 0, fmt.Errorf("--vm-memory-high-watermark-absolute must not be negative (0 uses --vm-memory-high-watermark)")
	case absolute > 0:
		return absolute, nil
	case relative == 0:
		return -1, nil
	}
	n, ok := server.MemoryWatermark(relative)
	if !ok {
		log.Warn("cannot read the machine's memory: the memory alarm is off (set --vm-memory-high-watermark-absolute)")
		return -1, nil
	}
	return n, nil
}

func run(args []string) error {
	d := server.DefaultOptions()
	fs := flag.NewFlagSet("warren", flag.ContinueOnError)
	amqpAddr := fs.String("amqp-addr", d.AMQPAddr, "TCP address for AMQP 0-9-1 clients, host:port")
	dataDir := fs.String("data-dir", d.DataDir, "directory for persistent state (created if missing)")
	maxMessage := fs.Int64("max-message-size", d.MaxMessageSize, "largest message body accepted, in bytes")
	heartbeat := fs.Duration("heartbeat", d.Heartbeat, "heartbeat interval offered to clients (0 disables)")
	consumerTimeout := fs.Duration("consumer-timeout", d.ConsumerTimeout, "a channel holding a delivery unacknowledged for longer is closed with 406 and its deliveries requeued (RabbitMQ's consumer_timeout); 0 disables")
	queueWindow := fs.Int64("queue-window", d.QueueWindow, "bytes of ready messages each queue keeps in memory; the rest are paged out to the data dir")
	queueMemory := fs.Int64("queue-memory", d.QueueMemory, "bytes of ready messages all queues keep in memory together, past which they page out as past their windows (default: a fifth of the machine's or container's memory, or half the memory alarm's watermark if that is lower); negative for no bound but the windows")
	diskFreeLimit := fs.Int64("disk-free-limit", d.DiskFreeLimit, "free bytes on the data dir's file system, counting the store's reusable free pages, below which publishing connections are blocked until space is freed (RabbitMQ's disk_free_limit); 0 turns the alarm off")
	memWatermark := fs.Float64("vm-memory-high-watermark", server.DefaultMemoryWatermarkShare, "share (0 to 1) of the machine's or container's memory at which the memory alarm blocks publishing connections until the broker's memory falls below it (RabbitMQ's vm_memory_high_watermark.relative); 0 turns the alarm off")
	memAbsolute := fs.Int64("vm-memory-high-watermark-absolute", 0, "the memory alarm's limit in bytes, in place of --vm-memory-high-watermark when above 0 (RabbitMQ's vm_memory_high_watermark.absolute)")
	maxTxOps := fs.Int("max-tx-ops", d.MaxTxOps, "most publishes and acknowledgements one transaction may hold; past it the channel is closed with 406 and nothing of the transaction is applied")
	maxTxBytes := fs.Int64("max-tx-bytes", d.MaxTxBytes, "most message body bytes one transaction may hold; past it the channel is closed with 406 and nothing of the transaction is applied")
	frameMax := fs.Uint("frame-max", uint(d.FrameMax), "frame_max offered to clients in connection.tune, bytes (at least 4096)")
	channelMax := fs.Uint("channel-max", uint(d.ChannelMax), "channel_max offered to clients in connection.tune (1 to 65535)")
	handshakeTimeout := fs.Duration("handshake-timeout", d.HandshakeTimeout, "time a client has from connecting to connection.open")
	closeTimeout := fs.Duration("close-timeout", d.CloseTimeout, "time the broker waits for close-ok after closing a connection")
	users := fs.String("users", "guest:guest", "the broker's users as comma-separated name:password pairs (for AMQP and the management API)")
	loopbackUsers := fs.String("loopback-users", "guest", "comma-separated users that may only connect from a loopback address; empty for none")
	httpAddr := fs.String("http-addr", ":15672", "TCP address for the management HTTP API (RabbitMQ-compatible) and the web UI; empty to turn off")
	metricsAddr := fs.String("metrics-addr", ":15692", "TCP address for Prometheus metrics at /metrics and /metrics/per-object; empty to turn off")
	gcMinHeap := fs.Int64("gc-min-heap", 64<<20, "heap size, in bytes, below which the garbage collector is not run more often than that size asks (GOGC is raised while the live heap is small, up to 10x; 0 leaves GOGC alone, as does setting GOGC)")
	adaptiveProcs := fs.Bool("adaptive-procs", true, "run on one P (GOMAXPROCS=1) while that serves the load, which saves threads' wake-ups on light loads, and on all CPUs when goroutines queue for it; false, or setting GOMAXPROCS, leaves GOMAXPROCS alone")
	pprofAddr := fs.String("pprof-addr", "", "TCP address for Go's pprof profiles at /debug/pprof/; empty (the default) to turn off")
	check := fs.Bool("check", false, "check the data dir's store for consistency, print the result and exit (1 if it has problems)")
	logFormat := checkedStringFlag(fs, "log-format", "text", "log format: text or json", oneOf("text", "json"))
	logLevel := checkedStringFlag(fs, "log-level", "info", "log level: debug, info, warn or error", isLogLevel)
	fs.String(configFlag, "", "optional config file of key = value lines (see above); its keys are the flag names, and it cannot set config")
	fs.Usage = func() { usage(fs) }
	// Command line, then WARREN_* variables, then the config file (config.go).
	if err := configure(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	hopts := &slog.HandlerOptions{Level: level}
	var logger *slog.Logger
	switch *logFormat {
	case "text":
		logger = slog.New(slog.NewTextHandler(os.Stderr, hopts))
	case "json":
		logger = slog.New(slog.NewJSONHandler(os.Stderr, hopts))
	default:
		return fmt.Errorf("--log-format: %q is not text or json", *logFormat)
	}

	if *check {
		if err := store.CheckDir(*dataDir); err != nil {
			return fmt.Errorf("check %s: %w", *dataDir, err)
		}
		fmt.Fprintf(os.Stdout, "%s: store is consistent\n", *dataDir)
		return nil
	}
	if err := os.MkdirAll(*dataDir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	var err error
	opts := d
	opts.AMQPAddr = *amqpAddr
	opts.DataDir = *dataDir
	opts.MaxMessageSize = *maxMessage
	opts.QueueWindow = *queueWindow
	if opts.QueueMemory = *queueMemory; opts.QueueMemory == 0 {
		return fmt.Errorf("--queue-memory must not be 0 (negative for no bound)")
	}
	if !isSet(fs, "queue-memory") {
		opts.QueueMemory = 0 // the server's default, which weighs the watermark
	}
	switch opts.DiskFreeLimit = *diskFreeLimit; {
	case *diskFreeLimit < 0:
		return fmt.Errorf("--disk-free-limit must not be negative (0 turns the alarm off)")
	case *diskFreeLimit == 0:
		opts.DiskFreeLimit = -1 // off, in server.Options
	}
	if opts.MemoryHighWatermark, err = memoryWatermark(*memWatermark, *memAbsolute, logger); err != nil {
		return err
	}
	if *maxTxOps <= 0 || *maxTxBytes <= 0 {
		return fmt.Errorf("--max-tx-ops and --max-tx-bytes must be positive")
	}
	opts.MaxTxOps, opts.MaxTxBytes = *maxTxOps, *maxTxBytes
	opts.Heartbeat = *heartbeat
	if *heartbeat == 0 {
		opts.Heartbeat = -1
	}
	opts.ConsumerTimeout = *consumerTimeout
	if *consumerTimeout == 0 {
		opts.ConsumerTimeout = -1
	}
	if *frameMax > 1<<31 || *channelMax == 0 || *channelMax > 65535 {
		return fmt.Errorf("--frame-max must be at most 2147483648 and --channel-max from 1 to 65535")
	}
	opts.FrameMax, opts.ChannelMax = uint32(*frameMax), uint16(*channelMax)
	if *handshakeTimeout <= 0 || *closeTimeout <= 0 {
		return fmt.Errorf("--handshake-timeout and --close-timeout must be positive")
	}
	opts.HandshakeTimeout, opts.CloseTimeout = *handshakeTimeout, *closeTimeout
	if opts.Users, err = parseUsers(*users); err != nil {
		return err
	}
	opts.LoopbackUsers = []string{}
	for u := range strings.SplitSeq(*loopbackUsers, ",") {
		if u = strings.TrimSpace(u); u != "" {
			opts.LoopbackUsers = append(opts.LoopbackUsers, u)
		}
	}
	opts.Logger = logger
	if *gcMinHeap < 0 {
		return fmt.Errorf("--gc-min-heap must not be negative")
	}
	defer gctune.Start(uint64(*gcMinHeap)).Stop()
	if *adaptiveProcs {
		defer proctune.Start(procsInterval, logger).Stop()
	}
	srv, err := server.New(opts)
	if err != nil {
		return err
	}
	hl, err := startHTTP(srv, opts.LoopbackUsers, logger, *httpAddr, *metricsAddr, *pprofAddr)
	if err != nil {
		srv.Shutdown(context.Background())
		return err
	}
	logger.Info("warren starting", "version", server.Version, "amqp", srv.Addr().String(),
		"http", hl.addrs["http"], "metrics", hl.addrs["metrics"], "pprof", hl.addrs["pprof"],
		"data_dir", *dataDir, "pid", strconv.Itoa(os.Getpid()))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hl.shutdown(sctx)
	if err := srv.Shutdown(sctx); err != nil {
		logger.Warn("shutdown timed out; connections closed", "err", err)
	}
	<-served
	logger.Info("stopped")
	return nil
}
