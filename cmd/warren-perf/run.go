package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/warrenmq/warren/rpc"
)

// summary is the JSON report at the end of a run.
type summary struct {
	ID        string  `json:"id"`
	Broker    string  `json:"broker"`
	Product   string  `json:"product"`
	Scenario  string  `json:"scenario"`
	Seconds   float64 `json:"seconds"`
	Sent      uint64  `json:"sent"`
	Confirmed uint64  `json:"confirmed"`
	Nacked    uint64  `json:"nacked"`
	Returned  uint64  `json:"returned"`
	Received  uint64  `json:"received"`
	Commits   uint64  `json:"commits,omitempty"`
	Calls     uint64  `json:"calls,omitempty"`
	// Rates over the whole run, per second.
	SendRate    float64 `json:"send_rate"`
	ReceiveRate float64 `json:"receive_rate"`
	BytesRate   float64 `json:"receive_bytes_rate"`
	CallRate    float64 `json:"call_rate,omitempty"`
	CommitRate  float64 `json:"commit_rate,omitempty"`
	// Latencies: end to end (from the send time in the body), confirm,
	// transaction commit, RPC round trip.
	Latency         *latencySummary `json:"latency,omitempty"`
	ConfirmLatency  *latencySummary `json:"confirm_latency,omitempty"`
	CommitLatency   *latencySummary `json:"commit_latency,omitempty"`
	RPCLatency      *latencySummary `json:"rpc_latency,omitempty"`
	IdleConnections int             `json:"idle_connections,omitempty"`
	// The broker's process, when it runs on this host.
	BrokerPID        int      `json:"broker_pid,omitempty"`
	BrokerCPUSeconds float64  `json:"broker_cpu_seconds,omitempty"`
	BrokerRSSBytes   int64    `json:"broker_rss_bytes,omitempty"`
	ClientCPUSeconds float64  `json:"client_cpu_seconds"`
	Errors           []string `json:"errors,omitempty"`
}

// runner is one run's shared state. Counters are atomics; each worker has
// its own histograms.
type runner struct {
	cfg    *config
	prefix string // names of what this run declares

	sent, confirmed, nacked, returned, received, receivedBytes, commits, calls atomic.Uint64

	mu       sync.Mutex // guards the fields below
	hists    []*workerHists
	errs     []string
	declared struct {
		exchange string
		queues   []string
	}
}

type workerHists struct {
	latency, confirm, commit, rpc hist
}

func (r *runner) newHists() *workerHists {
	h := &workerHists{}
	r.mu.Lock()
	r.hists = append(r.hists, h)
	r.mu.Unlock()
	return h
}

func (r *runner) fail(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) < 20 {
		r.errs = append(r.errs, fmt.Sprintf(format, args...))
	}
}

// queueName is queue i's name.
func (r *runner) queueName(i int) string {
	if r.cfg.queue != "" && r.cfg.queues == 1 {
		return r.cfg.queue
	}
	return fmt.Sprintf("%s-%d", r.prefix, i)
}

// routingKey is what producer p publishes with, message n.
func (r *runner) routingKey(p, n int) string {
	switch {
	case r.cfg.routingKey != "":
		return r.cfg.routingKey
	case r.cfg.exchangeType == "fanout":
		return ""
	case r.cfg.exchangeType == "topic":
		return fmt.Sprintf("perf.%d.x", (p+n*7919)%r.topicBindings())
	}
	return r.queueName(p % r.cfg.queues)
}

func (r *runner) topicBindings() int { return max(r.cfg.bindings, r.cfg.queues) }

// redacted is the URI without its password.
func redacted(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return "?"
	}
	return u.Redacted()
}

func run(ctx context.Context, cfg *config, out io.Writer) (*summary, error) {
	r := &runner{cfg: cfg, prefix: "warren-perf-" + cfg.id}
	if cfg.queue != "" {
		r.prefix = cfg.queue
	}
	setup, err := amqp.DialConfig(cfg.uri, amqp.Config{Properties: amqp.Table{"connection_name": r.prefix + "-setup"}})
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer setup.Close()
	product, _ := setup.Properties["product"].(string)
	s := &summary{ID: cfg.id, Broker: redacted(cfg.uri), Product: product, Scenario: scenarioOf(cfg)}
	pid := cfg.brokerPID
	if pid == 0 {
		pid = brokerPID(cfg.uri)
	}
	s.BrokerPID = pid
	cpu0, clientCPU0 := processCPU(pid), processCPU(0)
	defer func() {
		if pid != 0 {
			s.BrokerCPUSeconds = processCPU(pid) - cpu0
			if s.BrokerRSSBytes == 0 {
				s.BrokerRSSBytes = processRSS(pid)
			}
		}
		s.ClientCPUSeconds = processCPU(0) - clientCPU0
	}()

	if cfg.idleConns > 0 {
		s.IdleConnections, s.BrokerRSSBytes, err = idleConnections(ctx, cfg, pid)
		return s, err
	}
	if err := r.declare(setup); err != nil {
		r.cleanup(setup)
		return nil, err
	}
	defer r.cleanup(setup)

	runCtx := ctx
	if cfg.duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, cfg.duration)
		defer cancel()
	}
	stopAll, cancelAll := context.WithCancel(runCtx)
	defer cancelAll()

	// Consumers (or RPC servers) first, so nothing published waits.
	var wg, producers sync.WaitGroup
	ready := make(chan error, cfg.consumers)
	for i := range cfg.consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch {
			case cfg.rpc && cfg.client == "lean":
				r.leanRPCServer(stopAll, i, ready)
			case cfg.rpc:
				r.rpcServer(stopAll, i, ready)
			case cfg.client == "lean":
				r.leanConsumer(stopAll, i, ready)
			default:
				r.consumer(stopAll, i, ready)
			}
		}()
	}
	for range cfg.consumers {
		if err := <-ready; err != nil {
			cancelAll()
			wg.Wait()
			return nil, err
		}
	}
	start := time.Now()
	for i := range cfg.producers {
		producers.Add(1)
		go func() {
			defer producers.Done()
			switch {
			case cfg.rpc && cfg.client == "lean":
				r.leanRPCCaller(stopAll, i)
			case cfg.rpc:
				r.rpcCaller(stopAll, i)
			case cfg.client == "lean":
				r.leanProducer(stopAll, i)
			default:
				r.producer(stopAll, i)
			}
		}()
	}
	// Consumers with a message count stop on their own; without one, they
	// stop with the producers (or the clock). With no producers (-x 0)
	// the run ends with its consumers' -D or its time, not at once.
	producersDone := make(chan struct{})
	if cfg.producers > 0 {
		go func() {
			producers.Wait()
			if cfg.cmessages == 0 && cfg.duration == 0 {
				cancelAll()
			}
			close(producersDone)
		}()
	}
	// With no consumers (-y 0) the run ends with its producers or its
	// time, not at once.
	consumersDone := make(chan struct{})
	if cfg.consumers > 0 {
		go func() {
			wg.Wait()
			close(consumersDone)
		}()
	}

	var total struct{ latency, confirm, commit, rpc snapshot }
	ticker := time.NewTicker(cfg.interval)
	defer ticker.Stop()
	last, lastAt := r.counts(), start
	report := func(now time.Time) {
		var iv struct{ latency, confirm, commit, rpc snapshot }
		r.mu.Lock()
		for _, h := range r.hists {
			h.latency.takeInto(&total.latency, &iv.latency)
			h.confirm.takeInto(&total.confirm, &iv.confirm)
			h.commit.takeInto(&total.commit, &iv.commit)
			h.rpc.takeInto(&total.rpc, &iv.rpc)
		}
		r.mu.Unlock()
		cur := r.counts()
		dt := now.Sub(lastAt).Seconds()
		if !cfg.quiet && dt > 0 {
			line := fmt.Sprintf("id: %s, time: %.3fs, sent: %.0f msg/s, received: %.0f msg/s", cfg.id, now.Sub(start).Seconds(), float64(cur.sent-last.sent)/dt, float64(cur.received-last.received)/dt)
			if cfg.confirm > 0 {
				line += fmt.Sprintf(", confirmed: %.0f msg/s, nacked: %.0f msg/s", float64(cur.confirmed-last.confirmed)/dt, float64(cur.nacked-last.nacked)/dt)
			}
			if cfg.mandatory() {
				line += fmt.Sprintf(", returned: %.0f msg/s", float64(cur.returned-last.returned)/dt)
			}
			line += percentiles("consumer latency", &iv.latency)
			line += percentiles("confirm latency", &iv.confirm)
			line += percentiles("commit latency", &iv.commit)
			line += percentiles("rpc latency", &iv.rpc)
			fmt.Fprintln(out, line)
		}
		last, lastAt = cur, now
	}
loop:
	for {
		select {
		case now := <-ticker.C:
			report(now)
		case <-producersDone:
			if cfg.cmessages == 0 || cfg.consumers == 0 {
				cancelAll()
				break loop
			}
			producersDone = nil
		case <-consumersDone:
			cancelAll()
			break loop
		case <-stopAll.Done():
			break loop
		}
	}
	cancelAll()
	producers.Wait()
	wg.Wait()
	end := time.Now()
	report(end)

	elapsed := end.Sub(start).Seconds()
	c := r.counts()
	s.Seconds = elapsed
	s.Sent, s.Confirmed, s.Nacked, s.Returned, s.Received = c.sent, c.confirmed, c.nacked, c.returned, c.received
	s.Commits, s.Calls = c.commits, c.calls
	s.SendRate, s.ReceiveRate = float64(c.sent)/elapsed, float64(c.received)/elapsed
	s.BytesRate = float64(r.receivedBytes.Load()) / elapsed
	s.CallRate, s.CommitRate = float64(c.calls)/elapsed, float64(c.commits)/elapsed
	s.Latency, s.ConfirmLatency = total.latency.summary(), total.confirm.summary()
	s.CommitLatency, s.RPCLatency = total.commit.summary(), total.rpc.summary()
	r.mu.Lock()
	s.Errors = r.errs
	r.mu.Unlock()
	return s, nil
}

func percentiles(what string, s *snapshot) string {
	if s.n == 0 {
		return ""
	}
	return fmt.Sprintf(", min/median/75th/95th/99th %s: %.0f/%.0f/%.0f/%.0f/%.0f µs", what,
		us(s.min), us(s.quantile(0.5)), us(s.quantile(0.75)), us(s.quantile(0.95)), us(s.quantile(0.99)))
}

type counts struct{ sent, confirmed, nacked, returned, received, commits, calls uint64 }

func (r *runner) counts() counts {
	return counts{r.sent.Load(), r.confirmed.Load(), r.nacked.Load(), r.returned.Load(), r.received.Load(), r.commits.Load(), r.calls.Load()}
}

// scenarioOf describes a configuration in one line.
func scenarioOf(c *config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "-x %d -y %d -s %d", c.producers, c.consumers, c.size)
	if c.rpc {
		fmt.Fprintf(&b, " --rpc --reply-to %s", c.replyTo)
	}
	if c.autoAck {
		b.WriteString(" -a")
	}
	if c.prefetch > 0 {
		fmt.Fprintf(&b, " -q %d", c.prefetch)
	}
	if c.confirm > 0 {
		fmt.Fprintf(&b, " -c %d", c.confirm)
	}
	for _, f := range c.flags {
		fmt.Fprintf(&b, " -f %s", f)
	}
	if c.txSize > 0 {
		fmt.Fprintf(&b, " -m %d", c.txSize)
	}
	if c.rate > 0 {
		fmt.Fprintf(&b, " -r %g", c.rate)
	}
	if c.exchangeType != "direct" {
		fmt.Fprintf(&b, " -t %s", c.exchangeType)
	}
	if c.queues > 1 {
		fmt.Fprintf(&b, " --queues %d", c.queues)
	}
	if c.bindings > 0 {
		fmt.Fprintf(&b, " --bindings %d", c.bindings)
	}
	if c.maxPriority > 0 {
		fmt.Fprintf(&b, " --max-priority %d", c.maxPriority)
	}
	if !c.rpc && c.idleConns == 0 {
		fmt.Fprintf(&b, " --client %s", c.client)
	}
	return b.String()
}

// declare makes the exchange, the queues and the bindings.
func (r *runner) declare(conn *amqp.Connection) error {
	cfg := r.cfg
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	durable := cfg.persistent()
	for i := range cfg.queues {
		name := r.queueName(i)
		var args amqp.Table
		if cfg.maxPriority > 0 {
			args = amqp.Table{"x-max-priority": int32(cfg.maxPriority)}
		}
		if _, err := ch.QueueDeclare(name, durable, false, false, false, args); err != nil {
			return fmt.Errorf("declare queue %s: %w", name, err)
		}
		r.mu.Lock()
		r.declared.queues = append(r.declared.queues, name)
		r.mu.Unlock()
	}
	if cfg.rpc {
		return nil // requests go through the default exchange
	}
	x := cfg.exchange
	if x == "" {
		x = r.prefix
	}
	if !strings.HasPrefix(x, "amq.") {
		if err := ch.ExchangeDeclare(x, cfg.exchangeType, durable, false, false, false, nil); err != nil {
			return fmt.Errorf("declare exchange %s: %w", x, err)
		}
		r.mu.Lock()
		r.declared.exchange = x
		r.mu.Unlock()
	}
	cfg.exchange = x
	switch cfg.exchangeType {
	case "topic":
		for j := range r.topicBindings() {
			if err := ch.QueueBind(r.queueName(j%cfg.queues), fmt.Sprintf("perf.%d.*", j), x, false, nil); err != nil {
				return fmt.Errorf("bind: %w", err)
			}
		}
	default:
		for i := range cfg.queues {
			key := r.queueName(i)
			if cfg.routingKey != "" {
				key = cfg.routingKey
			}
			if err := ch.QueueBind(r.queueName(i), key, x, false, nil); err != nil {
				return fmt.Errorf("bind: %w", err)
			}
		}
	}
	return nil
}

// cleanup deletes what the run declared.
func (r *runner) cleanup(conn *amqp.Connection) {
	ch, err := conn.Channel()
	if err != nil {
		r.fail("cleanup: %v", err)
		return
	}
	defer ch.Close()
	r.mu.Lock()
	queues, x := r.declared.queues, r.declared.exchange
	r.mu.Unlock()
	for _, q := range queues {
		if _, err := ch.QueueDelete(q, false, false, false); err != nil {
			r.fail("delete queue %s: %v", q, err)
			return
		}
	}
	if x != "" {
		if err := ch.ExchangeDelete(x, false, false); err != nil {
			r.fail("delete exchange %s: %v", x, err)
		}
	}
}

func (r *runner) dial(name string) (*amqp.Connection, error) {
	return amqp.DialConfig(r.cfg.uri, amqp.Config{Properties: amqp.Table{"connection_name": name}})
}

// pacer spaces publishes to a rate.
type pacer struct {
	every time.Duration
	next  time.Time
}

func (p *pacer) wait(ctx context.Context) bool {
	if p.every == 0 {
		return ctx.Err() == nil
	}
	now := time.Now()
	if p.next.IsZero() || now.Sub(p.next) > time.Second {
		p.next = now // do not burst to catch up after a stall
	}
	if d := p.next.Sub(now); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
	p.next = p.next.Add(p.every)
	return ctx.Err() == nil
}

func newPacer(rate float64) *pacer {
	if rate <= 0 {
		return &pacer{}
	}
	return &pacer{every: time.Duration(float64(time.Second) / rate)}
}

func (r *runner) producer(ctx context.Context, i int) {
	cfg := r.cfg
	conn, err := r.dial(fmt.Sprintf("%s-producer-%d", r.prefix, i))
	if err != nil {
		r.fail("producer %d: %v", i, err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		r.fail("producer %d: %v", i, err)
		return
	}
	h := r.newHists()
	body := make([]byte, cfg.size)
	pub := amqp.Publishing{Body: body}
	if cfg.persistent() {
		pub.DeliveryMode = amqp.Persistent
	}
	mandatory := cfg.mandatory()
	if mandatory {
		returns := ch.NotifyReturn(make(chan amqp.Return, 64))
		go func() {
			for range returns {
				r.returned.Add(1)
			}
		}()
	}

	// Confirms: at most cfg.confirm outstanding; sendTimes[tag % n] holds
	// when tag was sent (tags below tag-n are confirmed by then).
	var slots chan struct{}
	var sendTimes []atomic.Int64
	confirmsDone := make(chan struct{})
	if cfg.confirm > 0 {
		if err := ch.Confirm(false); err != nil {
			r.fail("producer %d: confirm.select: %v", i, err)
			return
		}
		slots = make(chan struct{}, cfg.confirm)
		sendTimes = make([]atomic.Int64, cfg.confirm)
		confirms := ch.NotifyPublish(make(chan amqp.Confirmation, cfg.confirm))
		go func() {
			defer close(confirmsDone)
			for c := range confirms {
				if c.DeliveryTag == 0 {
					continue
				}
				h.confirm.record(time.Duration(time.Now().UnixNano() - sendTimes[c.DeliveryTag%uint64(cfg.confirm)].Load()))
				if c.Ack {
					r.confirmed.Add(1)
				} else {
					r.nacked.Add(1)
				}
				<-slots
			}
		}()
	} else {
		close(confirmsDone)
	}
	if cfg.txSize > 0 {
		if err := ch.Tx(); err != nil {
			r.fail("producer %d: tx.select: %v", i, err)
			return
		}
	}

	p := newPacer(cfg.rate)
	var txStart time.Time
	for n := 0; cfg.pmessages == 0 || n < cfg.pmessages; n++ {
		if !p.wait(ctx) {
			break
		}
		if slots != nil {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				break
			}
		}
		now := time.Now().UnixNano()
		stamp(body, now)
		if sendTimes != nil {
			sendTimes[uint64(n+1)%uint64(cfg.confirm)].Store(now)
		}
		if cfg.txSize > 0 && n%cfg.txSize == 0 {
			txStart = time.Now()
		}
		pub.Priority = uint8(n % (cfg.maxPriority + 1))
		if err := ch.PublishWithContext(context.Background(), cfg.exchange, r.routingKey(i, n), mandatory, false, pub); err != nil {
			if ctx.Err() == nil {
				r.fail("producer %d: publish: %v", i, err)
			}
			break
		}
		r.sent.Add(1)
		if cfg.txSize > 0 && (n+1)%cfg.txSize == 0 {
			if err := ch.TxCommit(); err != nil {
				r.fail("producer %d: tx.commit: %v", i, err)
				break
			}
			h.commit.record(time.Since(txStart))
			r.commits.Add(1)
		}
	}
	// Wait for the confirms of what was sent (bounded), so the counts
	// are whole.
	if slots != nil {
		deadline := time.After(10 * time.Second)
	drain:
		for len(slots) > 0 {
			select {
			case <-deadline:
				break drain
			case <-time.After(time.Millisecond):
			}
		}
	}
	ch.Close()
	conn.Close()
	<-confirmsDone
}

func (r *runner) consumer(ctx context.Context, i int, ready chan<- error) {
	cfg := r.cfg
	conn, err := r.dial(fmt.Sprintf("%s-consumer-%d", r.prefix, i))
	if err != nil {
		ready <- fmt.Errorf("consumer %d: %w", i, err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err == nil && cfg.prefetch > 0 && !cfg.autoAck {
		err = ch.Qos(cfg.prefetch, 0, false)
	}
	var deliveries <-chan amqp.Delivery
	if err == nil {
		deliveries, err = ch.Consume(r.queueName(i%cfg.queues), "", cfg.autoAck, false, false, false, nil)
	}
	if err != nil {
		ready <- fmt.Errorf("consumer %d: %w", i, err)
		return
	}
	ready <- nil
	h := r.newHists()
	every := max(cfg.multiAckEvery, 1)
	for n := 0; cfg.cmessages == 0 || n < cfg.cmessages; n++ {
		var d amqp.Delivery
		var ok bool
		select {
		case d, ok = <-deliveries:
		case <-ctx.Done():
		}
		if !ok {
			break
		}
		if len(d.Body) >= 8 {
			h.latency.record(time.Duration(time.Now().UnixNano() - int64(binary.BigEndian.Uint64(d.Body))))
		}
		r.received.Add(1)
		r.receivedBytes.Add(uint64(len(d.Body)))
		if !cfg.autoAck && (n+1)%every == 0 {
			if err := d.Ack(every > 1); err != nil {
				r.fail("consumer %d: ack: %v", i, err)
				break
			}
		}
	}
}

func (r *runner) rpcServer(ctx context.Context, i int, ready chan<- error) {
	cfg := r.cfg
	conn, err := r.dial(fmt.Sprintf("%s-rpc-server-%d", r.prefix, i))
	if err != nil {
		ready <- fmt.Errorf("rpc server %d: %w", i, err)
		return
	}
	defer conn.Close()
	srv, err := rpc.NewServer(conn, r.queueName(i%cfg.queues), func(_ context.Context, req amqp.Delivery) (amqp.Publishing, error) {
		r.received.Add(1)
		r.receivedBytes.Add(uint64(len(req.Body)))
		return amqp.Publishing{Body: req.Body}, nil
	}, rpc.WithWorkers(cfg.rpcWorkers), rpc.WithPrefetch(max(cfg.prefetch, cfg.rpcWorkers)))
	if err != nil {
		ready <- fmt.Errorf("rpc server %d: %w", i, err)
		return
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	ready <- nil
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	<-served
}

func (r *runner) rpcCaller(ctx context.Context, i int) {
	cfg := r.cfg
	conn, err := r.dial(fmt.Sprintf("%s-rpc-client-%d", r.prefix, i))
	if err != nil {
		r.fail("rpc caller %d: %v", i, err)
		return
	}
	defer conn.Close()
	var opts []rpc.ClientOption
	if cfg.replyTo == "queue" {
		opts = append(opts, rpc.WithReplyQueue())
	}
	c, err := rpc.NewClient(conn, opts...)
	if err != nil {
		r.fail("rpc caller %d: %v", i, err)
		return
	}
	defer c.Close()
	h := r.newHists()
	body := make([]byte, cfg.size)
	p := newPacer(cfg.rate)
	for n := 0; cfg.pmessages == 0 || n < cfg.pmessages; n++ {
		if !p.wait(ctx) {
			break
		}
		start := time.Now()
		stamp(body, start.UnixNano())
		r.sent.Add(1)
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := c.Call(cctx, "", r.queueName(i%cfg.queues), amqp.Publishing{Body: body})
		cancel()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, context.Canceled) {
				r.fail("rpc caller %d: %v", i, err)
			}
			break
		}
		h.rpc.record(time.Since(start))
		r.calls.Add(1)
	}
}

// idleConnections opens n connections, samples the broker's RSS once they
// are all open, and closes them.
func idleConnections(ctx context.Context, cfg *config, pid int) (int, int64, error) {
	var conns []*amqp.Connection
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range cfg.idleConns {
		if ctx.Err() != nil {
			return len(conns), 0, ctx.Err()
		}
		c, err := amqp.DialConfig(cfg.uri, amqp.Config{Heartbeat: 60 * time.Second})
		if err != nil {
			return len(conns), processRSS(pid), fmt.Errorf("after %d connections: %w", len(conns), err)
		}
		conns = append(conns, c)
	}
	return len(conns), processRSS(pid), nil
}

// stamp writes the send time t (Unix nanoseconds) into the first 8 bytes
// of body, where consumers read it for the end-to-end latency; a shorter
// body carries none.
func stamp(body []byte, t int64) {
	if len(body) >= 8 {
		binary.BigEndian.PutUint64(body, uint64(t))
	}
}
