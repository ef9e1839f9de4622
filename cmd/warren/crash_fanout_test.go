package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

// The fanout crash test's durable exchange and the durable queues bound
// to it. The store logs a message routed to several queues once per log
// record, its other puts naming the one that carries it.
const crashFanout = "crash-fanout"

var crashFanoutQueues = []string{"crash-fanout-0", "crash-fanout-1", "crash-fanout-2"}

// fanoutLedger is what the clients saw.
type fanoutLedger struct {
	mu        sync.Mutex
	body      map[string][]byte // every id ever published, and its body
	confirmed map[string]bool   // in this cycle
	consumed  map[string]bool   // taken and acked from the first queue in this cycle
	// drained is, for each queue, every id a drain took from it: a drain's
	// last acks may not be on disk when the broker is killed next, so
	// they may come back (at least once).
	drained map[string]map[string]bool
}

// TestCrashFanoutKeepsConfirmedMessages: a publisher with 100–200
// confirms outstanding publishes persistent messages of 0–16 KiB to a
// fanout exchange bound to three durable queues, a consumer on the first
// queue acks some of them and holds others, and the broker is killed
// with SIGKILL at a random moment. After a restart every confirmed
// message is in every queue, whole and in publish order (less what the
// consumer acked from the first), and warren --check passes. Several
// cycles; each drains what its own crash left (and what earlier drains'
// last acks may have left: at least once).
func TestCrashFanoutKeepsConfirmedMessages(t *testing.T) {
	cycles, rng, dir := crashSetup(t)
	led := &fanoutLedger{body: map[string][]byte{}, drained: map[string]map[string]bool{}}
	for _, q := range crashFanoutQueues {
		led.drained[q] = map[string]bool{}
	}
	for cycle := 1; cycle <= cycles; cycle++ {
		cmd, url := startOn(t, dir)
		declareFanout(t, url)
		led.confirmed, led.consumed = map[string]bool{}, map[string]bool{}
		var confirmed atomic.Int64
		var consuming atomic.Bool
		window := 100 + rng.IntN(101)
		target := int64(100 + rng.IntN(600))
		limit := rng.IntN(200)
		seed := rng.Uint64()
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs <- publishFanoutUntilKilled(url, cycle, window, seed, led, &confirmed)
		}()
		go func() {
			defer wg.Done()
			errs <- consumeFanoutUntilKilled(url, limit, led, &consuming)
		}()
		killAfter(t, cmd, func() bool { return confirmed.Load() >= target && consuming.Load() }, 0)
		waitClients(t, cycle, &wg, errs)
		if confirmed.Load() == 0 {
			t.Fatalf("cycle %d: nothing was confirmed before the kill", cycle)
		}
		checkStore(t, dir)

		cmd, url = startOn(t, dir)
		for i, q := range crashFanoutQueues {
			found, dups := drainFanout(t, url, q, led, i == 0)
			t.Logf("cycle %d: %s: %d confirmed, %d consumed from the first queue, %d recovered, %d duplicates",
				cycle, q, len(led.confirmed), len(led.consumed), found, dups)
		}
		kill(t, cmd)
	}
}

// declareFanout declares the durable fanout exchange and its queues.
func declareFanout(t *testing.T, url string) {
	t.Helper()
	conn, ch, err := dialChannel(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := ch.ExchangeDeclare(crashFanout, "fanout", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	for _, q := range crashFanoutQueues {
		if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		if err := ch.QueueBind(q, "", crashFanout, false, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// publishFanoutUntilKilled publishes to the fanout exchange as
// publishUntilKilled does to the crash queue, bodies of 0–16 KiB after
// the id.
func publishFanoutUntilKilled(url string, cycle, window int, seed uint64, led *fanoutLedger, confirmed *atomic.Int64) error {
	conn, ch, confirms, err := dialConfirming(url, window)
	if err != nil {
		return err
	}
	defer conn.Close()
	rng := rand.New(rand.NewPCG(seed, 1))
	var ids []string // by delivery tag - 1
	for outstanding := 0; ; outstanding-- {
		for ; outstanding < window; outstanding++ {
			id := fmt.Sprintf("c%d-%d", cycle, len(ids)+1)
			body := make([]byte, len(id)+1+rng.IntN(16<<10))
			copy(body, id)
			body[len(id)] = '|'
			for i := len(id) + 1; i < len(body); i++ {
				body[i] = byte(len(ids) + i)
			}
			led.mu.Lock()
			led.body[id] = body
			led.mu.Unlock()
			ids = append(ids, id)
			if err := ch.Publish(crashFanout, "", false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, MessageId: id, Body: body}); err != nil {
				return nil // the broker is gone
			}
		}
		c, ok := <-confirms
		if !ok {
			return nil // the broker is gone
		}
		if c.DeliveryTag == 0 || c.DeliveryTag > uint64(len(ids)) {
			return fmt.Errorf("confirm of tag %d, but %d were published", c.DeliveryTag, len(ids))
		}
		if !c.Ack {
			return fmt.Errorf("publish %d nacked without any store fault", c.DeliveryTag)
		}
		led.mu.Lock()
		led.confirmed[ids[c.DeliveryTag-1]] = true
		led.mu.Unlock()
		confirmed.Add(1)
	}
}

// consumeFanoutUntilKilled acks the first limit deliveries of the first
// queue and holds the next ones (prefetch 20) until the connection dies.
func consumeFanoutUntilKilled(url string, limit int, led *fanoutLedger, consuming *atomic.Bool) error {
	conn, msgs, err := dialConsumer(url, crashFanoutQueues[0])
	if err != nil {
		return err
	}
	defer conn.Close()
	consuming.Store(true)
	acked := 0
	for d := range msgs {
		if acked >= limit {
			continue // unacked: it must come back
		}
		led.mu.Lock()
		led.consumed[d.MessageId] = true
		led.mu.Unlock()
		if d.Ack(false) != nil {
			return nil
		}
		acked++
	}
	return nil
}

// drainFanout takes every message from queue q and checks it against the
// ledger: each is one published, whole, in publish order; every one
// confirmed in this cycle is there (less those consumed, for the first
// queue). It returns how many it took and how many of them were consumed
// or drained already (at least once).
func drainFanout(t *testing.T, url, q string, led *fanoutLedger, first bool) (found, dups int) {
	t.Helper()
	conn, ch, err := dialChannel(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	seen := map[string]bool{}
	lastSeq := 0
	for {
		d, ok, err := ch.Get(q, false)
		if err != nil {
			t.Fatalf("%s: get: %v", q, err)
		}
		if !ok {
			break
		}
		found++
		id := d.MessageId
		want, published := led.body[id]
		_, after, _ := strings.Cut(id, "-")
		seq, _ := strconv.Atoi(after)
		switch {
		case !published:
			t.Errorf("%s: recovered %q, which was never published", q, id)
		case string(d.Body) != string(want):
			t.Errorf("%s: message %q: %d bytes, not the %d published", q, id, len(d.Body), len(want))
		case seen[id]:
			// One queue holds a message once: twice means another
			// message's place was taken.
			t.Errorf("%s: message %q twice in one drain", q, id)
		case led.drained[q][id] || first && led.consumed[id]:
			dups++
		case seq < lastSeq:
			t.Errorf("%s: recovered %q after seq %d: out of publish order", q, id, lastSeq)
		default:
			lastSeq = seq
		}
		seen[id] = true
		led.drained[q][id] = true
		if err := d.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	var missing []string
	for id := range led.confirmed {
		if !seen[id] && !(first && led.consumed[id]) {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%s: %d confirmed messages lost in the crash, such as %v", q, len(missing), missing[:min(len(missing), 10)])
	}
	return found, dups
}
