package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// crashWait bounds every wait in the crash test; it is reached only when
// the test fails.
const crashWait = 30 * time.Second

// crashQueue is a durable queue the crash test publishes to.
type crashQueue struct {
	name string
	// maxPriority, if above 0, is the queue's x-max-priority; a cycle's
	// message seq (from 1) then has priority seq mod (maxPriority+2), so
	// that some are above the maximum and count as it.
	maxPriority int
}

// plainCrashQueue is the crash test's queue without priorities.
var plainCrashQueue = crashQueue{name: "crash-test"}

func (q crashQueue) args() amqp.Table {
	if q.maxPriority == 0 {
		return nil
	}
	return amqp.Table{"x-max-priority": int32(q.maxPriority)}
}

// priority is the priority message seq is published with.
func (q crashQueue) priority(seq int) uint8 {
	if q.maxPriority == 0 {
		return 0
	}
	return uint8(seq % (q.maxPriority + 2))
}

// lane is the priority the queue delivers message seq by.
func (q crashQueue) lane(seq int) int { return min(int(q.priority(seq)), q.maxPriority) }

// startOn runs the binary on dir and returns it with its AMQP URL.
func startOn(t *testing.T, dir string) (*exec.Cmd, string) {
	t.Helper()
	cmd, lines := startWarren(t, nil, "--data-dir", dir, "--amqp-addr", "127.0.0.1:0", "--heartbeat", "0")
	return cmd, "amqp://guest:guest@" + waitForAddr(t, lines) + "/"
}

// kill sends SIGKILL and waits for the process to be gone.
func kill(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("kill: %v", err)
	}
	cmd.Wait() // "signal: killed"
}

// checkStore runs warren --check on dir and fails unless it passes.
func checkStore(t *testing.T, dir string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "--check", "--data-dir", dir)
	cmd.Env = append(os.Environ(), testEnv...)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "store is consistent") {
		t.Fatalf("warren --check --data-dir %s: %v\n%s", dir, err, out)
	}
}

// crashLedger is what the clients saw of the messages since the last
// drain.
type crashLedger struct {
	mu        sync.Mutex
	published map[string]bool // every id ever published, across cycles
	confirmed map[string]bool // acked by the broker since the last drain
	consumed  map[string]bool // consumed and acked by the consumer since the last drain
	drained   map[string]bool // every id a drain has taken, across cycles
}

// cycleStats are the counts one cycle reports.
type cycleStats struct {
	published, confirmed, nacked, consumed atomic.Int64
	// consuming is set once the consumer's basic.consume is answered: the
	// kill waits for it, so that a setup the kill cut short is not taken
	// for an error.
	consuming atomic.Bool
}

// publishUntilKilled publishes persistent messages with unique ids on a
// confirm channel, keeping window of them unconfirmed, until the
// connection dies. It records every id it publishes and every one acked.
func publishUntilKilled(url string, q crashQueue, cycle, window int, led *crashLedger, st *cycleStats) error {
	conn, ch, confirms, err := dialConfirming(url, window)
	if err != nil {
		return err
	}
	defer conn.Close()
	var ids []string // by delivery tag - 1
	outstanding := 0
	for {
		for outstanding < window {
			seq := len(ids) + 1
			id := fmt.Sprintf("c%d-%d", cycle, seq)
			led.mu.Lock()
			led.published[id] = true
			led.mu.Unlock()
			ids = append(ids, id)
			pub := amqp.Publishing{DeliveryMode: amqp.Persistent, Priority: q.priority(seq), MessageId: id, Body: []byte(id)}
			if err := ch.Publish("", q.name, false, false, pub); err != nil {
				return nil // the broker is gone
			}
			st.published.Add(1)
			outstanding++
		}
		c, ok := <-confirms
		if !ok {
			return nil // the broker is gone
		}
		outstanding--
		if c.DeliveryTag == 0 || c.DeliveryTag > uint64(len(ids)) {
			return fmt.Errorf("confirm of tag %d, but %d were published", c.DeliveryTag, len(ids))
		}
		if c.Ack {
			led.mu.Lock()
			led.confirmed[ids[c.DeliveryTag-1]] = true
			led.mu.Unlock()
			st.confirmed.Add(1)
		} else {
			st.nacked.Add(1)
		}
	}
}

// consumeUntilKilled acks the first limit deliveries and then holds on to
// the next ones (prefetch 20) unacked until the connection dies.
func consumeUntilKilled(url string, q crashQueue, limit int, led *crashLedger, st *cycleStats) error {
	conn, msgs, err := dialConsumer(url, q.name)
	if err != nil {
		return err
	}
	defer conn.Close()
	st.consuming.Store(true)
	for d := range msgs {
		if st.consumed.Load() >= int64(limit) {
			continue // unacked: it must come back
		}
		led.mu.Lock()
		led.consumed[string(d.Body)] = true
		led.mu.Unlock()
		if d.Ack(false) != nil {
			return nil
		}
		st.consumed.Add(1)
	}
	return nil
}

// drainStats count what a drain found of the messages one cycle published.
type drainStats struct{ recovered, duplicates, unconfirmed, consumed int }

// drain takes every message from the crash queue on the broker at url and
// checks them against the ledger: every confirmed id not consumed must be
// there, in publish order within a priority, highest priority first;
// anything else may be (at least once), and is counted, by the cycle that
// published it.
func drain(t *testing.T, url string, q crashQueue, led *crashLedger) map[int]*drainStats {
	t.Helper()
	conn, ch, err := dialChannel(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := ch.QueueDeclare(q.name, true, false, false, false, q.args()); err != nil {
		t.Fatalf("declare %s after restart: %v", q.name, err)
	}
	seen := map[string]bool{}
	stats := map[int]*drainStats{}
	statsOf := func(id string) *drainStats {
		var cycle int
		fmt.Sscanf(id, "c%d-", &cycle)
		ds := stats[cycle]
		if ds == nil {
			ds = &drainStats{}
			stats[cycle] = ds
		}
		return ds
	}
	lastLane, lastCycle, lastSeq := q.maxPriority, 0, 0 // the queue order
	for {
		d, ok, err := ch.Get(q.name, false)
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		if !ok {
			break
		}
		id := string(d.Body)
		if d.MessageId != id {
			t.Errorf("message %q has message id %q", id, d.MessageId)
		}
		ds := statsOf(id)
		led.mu.Lock()
		switch {
		case !led.published[id]:
			t.Errorf("recovered %q, which was never published", id)
		case seen[id] || led.drained[id] || led.consumed[id]:
			ds.duplicates++
		default:
			if !led.confirmed[id] {
				ds.unconfirmed++
			}
			var cycle, seq int
			fmt.Sscanf(id, "c%d-%d", &cycle, &seq)
			lane := q.lane(seq)
			if lane > lastLane || lane == lastLane && (cycle < lastCycle || cycle == lastCycle && seq < lastSeq) {
				t.Errorf("recovered %q (priority %d) after c%d-%d (priority %d): out of order", id, lane, lastCycle, lastSeq, lastLane)
			}
			if lane < lastLane {
				lastCycle, lastSeq = 0, 0
			}
			lastLane, lastCycle, lastSeq = lane, cycle, seq
		}
		seen[id] = true
		led.drained[id] = true
		led.mu.Unlock()
		ds.recovered++
		if err := d.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	led.mu.Lock()
	defer led.mu.Unlock()
	for id := range led.consumed {
		statsOf(id).consumed++
	}
	var missing []string
	for id := range led.confirmed {
		if !seen[id] && !led.consumed[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		if len(missing) > 20 {
			missing = append(missing[:20], "...")
		}
		t.Errorf("%d confirmed messages lost in the crash: %v", len(missing), missing)
	}
	led.confirmed = map[string]bool{}
	led.consumed = map[string]bool{}
	return stats
}

func TestCrashKeepsConfirmedMessages(t *testing.T) { crashTest(t, plainCrashQueue) }

// TestCrashPriorityQueueKeepsConfirmedMessages is the crash test on a
// priority queue: each priority's messages are a run of their own in the
// store, and come back highest priority first.
func TestCrashPriorityQueueKeepsConfirmedMessages(t *testing.T) {
	crashTest(t, crashQueue{name: "crash-test-priority", maxPriority: 3})
}

// crashTest kills the broker several times while a publisher with 100-200
// confirms outstanding and a consumer run on q, and drains q after every
// second restart: every confirmed message not consumed must come back.
func crashTest(t *testing.T, q crashQueue) {
	cycles, rng, dir := crashSetup(t)
	led := &crashLedger{published: map[string]bool{}, confirmed: map[string]bool{}, consumed: map[string]bool{}, drained: map[string]bool{}}

	stats := make([]cycleStats, cycles+1)
	drained := 0 // cycles up to this one have been drained
	// report logs a drain after cycle upTo by the cycles it covers; ids of
	// an earlier cycle found again are counted with the first cycle covered.
	report := func(found map[int]*drainStats, upTo int) {
		for c := drained + 1; c <= upTo; c++ {
			if found[c] == nil {
				found[c] = &drainStats{}
			}
		}
		for c, ds := range found {
			if c <= drained {
				found[drained+1].duplicates += ds.duplicates
			}
		}
		for c := drained + 1; c <= upTo; c++ {
			ds, st := found[c], &stats[c]
			t.Logf("cycle %d: published %d, confirmed %d, consumed+acked before a crash %d; recovered %d, duplicates %d, unconfirmed-present %d",
				c, st.published.Load(), st.confirmed.Load(), ds.consumed, ds.recovered, ds.duplicates, ds.unconfirmed)
		}
		drained = upTo
	}
	for cycle := 1; cycle <= cycles; cycle++ {
		cmd, url := startOn(t, dir)
		// After every second crash, drain what the last two cycles left, so
		// that some messages live through two crashes and recoveries.
		if cycle%2 == 1 && cycle > 1 {
			report(drain(t, url, q, led), cycle-1)
		}
		declareDurable(t, url, q.name, q.args())

		st := &stats[cycle]
		window := 100 + rng.IntN(101)
		target := int64(100 + rng.IntN(900)) // confirms before the kill
		consumeLimit := rng.IntN(300)
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		wg.Add(2)
		go func() { defer wg.Done(); errs <- publishUntilKilled(url, q, cycle, window, led, st) }()
		go func() { defer wg.Done(); errs <- consumeUntilKilled(url, q, consumeLimit, led, st) }()

		began := time.Now()
		killAfter(t, cmd, func() bool { return st.confirmed.Load() >= target && st.consuming.Load() }, 0)
		killedAfter := time.Since(began)
		waitClients(t, cycle, &wg, errs)
		if st.confirmed.Load() == 0 {
			t.Fatalf("cycle %d: nothing was confirmed before the kill", cycle)
		}
		if n := st.nacked.Load(); n > 0 {
			t.Errorf("cycle %d: %d publishes nacked without any store fault", cycle, n)
		}
		checkStore(t, dir)
		t.Logf("cycle %d: window %d, SIGKILL after %v, %d published, %d confirmed (target %d); the consumer acked %d; --check ok",
			cycle, window, killedAfter.Round(time.Millisecond), st.published.Load(), st.confirmed.Load(), target, st.consumed.Load())
	}
	_, url := startOn(t, dir)
	report(drain(t, url, q, led), cycles)
}

func TestSecondBinarySameDataDir(t *testing.T) {
	dir := t.TempDir()
	startOn(t, dir)
	ctx, cancel := context.WithTimeout(t.Context(), crashWait) // a failure bound only
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "--data-dir", dir, "--amqp-addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), testEnv...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("a second warren on %s did not give up: it waits for the lock\n%s", dir, out)
	}
	if err == nil {
		t.Fatalf("a second warren on %s exited 0\n%s", dir, out)
	}
	if !strings.Contains(string(out), dir) || !strings.Contains(strings.ToLower(string(out)), "in use") {
		t.Errorf("a second warren on %s failed without saying the data dir is in use:\n%s", dir, out)
	}
}

// dialChannel opens a connection to url and a channel on it.
func dialChannel(url string) (*amqp.Connection, *amqp.Channel, error) {
	conn, err := amqp.Dial(url)
	if err != nil {
		return nil, nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, ch, nil
}

// dialConfirming is dialChannel with the channel in confirm mode, and
// its confirms delivered on a channel with room for 2*window of them.
func dialConfirming(url string, window int) (*amqp.Connection, *amqp.Channel, chan amqp.Confirmation, error) {
	conn, ch, err := dialChannel(url)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := ch.Confirm(false); err != nil {
		conn.Close()
		return nil, nil, nil, err
	}
	return conn, ch, ch.NotifyPublish(make(chan amqp.Confirmation, 2*window)), nil
}

// dialConsumer starts a consumer on queue, acking manually with a
// prefetch of 20.
func dialConsumer(url, queue string) (*amqp.Connection, <-chan amqp.Delivery, error) {
	conn, ch, err := dialChannel(url)
	if err != nil {
		return nil, nil, err
	}
	if err := ch.Qos(20, 0, false); err != nil {
		conn.Close()
		return nil, nil, err
	}
	msgs, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, msgs, nil
}

// declareDurable declares the durable queue name, with args, on the broker
// at url.
func declareDurable(t *testing.T, url, name string, args amqp.Table) {
	t.Helper()
	conn, ch, err := dialChannel(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := ch.QueueDeclare(name, true, false, false, false, args); err != nil {
		t.Fatal(err)
	}
}

// killAfter polls until reached, or 5 s have passed if the broker is
// slower than that (a bound, not an expectation), waits extra more, and
// kills the broker.
func killAfter(t *testing.T, cmd *exec.Cmd, reached func() bool, extra time.Duration) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !reached() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // the poll interval
	}
	time.Sleep(extra)
	kill(t, cmd)
}

// waitClients waits for a cycle's clients to notice the broker die and
// fails on any error they returned.
func waitClients(t *testing.T, cycle int, wg *sync.WaitGroup, errs chan error) {
	t.Helper()
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(crashWait):
		t.Fatalf("cycle %d: the clients did not notice the broker die", cycle)
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("cycle %d: %v", cycle, err)
		}
	}
}

// crashSetup returns a crash test's number of cycles (fewer with -short),
// its random source (the seed is logged) and its data dir.
func crashSetup(t *testing.T) (cycles int, rng *rand.Rand, dir string) {
	cycles = 4
	if testing.Short() {
		cycles = 2
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	return cycles, rand.New(rand.NewPCG(seed, 0)), t.TempDir()
}
