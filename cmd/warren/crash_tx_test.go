package main

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// crashTxQueue is the durable queue the transaction crash test publishes
// to.
const crashTxQueue = "crash-tx-test"

const (
	// crashTxPublishers is the number of connections, each with one
	// channel in tx mode. Many commits at once make it likelier that a
	// store batch is taken in the middle of one, which is what a commit
	// not applied under a store Hold would show after a crash.
	crashTxPublishers = 16
	crashTxSize       = 10 // persistent messages per transaction
)

// txState is how far a transaction got as its publisher saw it.
type txState uint8

const (
	txOpen      txState = iota + 1 // publishes sent, tx.commit not sent
	txInFlight                     // tx.commit sent, no commit-ok
	txCommitted                    // commit-ok received
)

// txPublisher is what one publisher saw of its transactions in a cycle:
// txs[n] is the state of its transaction n. Only its goroutine writes it,
// until the cycle's WaitGroup is done.
type txPublisher struct {
	txs []txState
}

// txID names message i of transaction n of publisher p in cycle c; the
// message's id and body are both this.
func txID(c, p, n, i int) string { return fmt.Sprintf("c%d-p%d-t%d-%d", c, p, n, i) }

// publishTxUntilKilled commits transactions of crashTxSize persistent
// messages in a loop on a tx channel until the connection dies, recording
// each transaction's state in pub, counting itself in ready once its
// channel is transactional and its commits in committed.
func publishTxUntilKilled(url string, cycle, p int, pub *txPublisher, ready, committed *atomic.Int64) error {
	conn, ch, err := dialChannel(url)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := ch.Tx(); err != nil {
		return err
	}
	ready.Add(1)
	for n := 0; ; n++ {
		pub.txs = append(pub.txs, txOpen)
		for i := range crashTxSize {
			id := txID(cycle, p, n, i)
			if err := ch.Publish("", crashTxQueue, false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, MessageId: id, Body: []byte(id)}); err != nil {
				return nil // the broker is gone
			}
		}
		pub.txs[n] = txInFlight
		if err := ch.TxCommit(); err != nil {
			return nil // the broker is gone
		}
		pub.txs[n] = txCommitted
		committed.Add(1)
	}
}

// txFound is what a drain found of one transaction: which of its messages
// (a bit each), and whether any came twice.
type txFound struct {
	mask uint32
	dups int
}

// drainTx takes every message from the queue on the broker at url, checks
// each names a transaction of this cycle and comes in its publisher's
// order, and returns what it found by publisher and transaction.
func drainTx(t *testing.T, url string, cycle int) (found []map[int]*txFound, total int) {
	t.Helper()
	conn, ch, err := dialChannel(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	q, err := ch.QueueDeclarePassive(crashTxQueue, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("passive declare of %s after restart: %v", crashTxQueue, err)
	}
	if err := ch.Qos(1000, 0, false); err != nil {
		t.Fatal(err)
	}
	msgs, err := ch.Consume(crashTxQueue, "drain", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	found = make([]map[int]*txFound, crashTxPublishers)
	for p := range found {
		found[p] = map[int]*txFound{}
	}
	type pos struct{ n, i int }
	last := make([]pos, crashTxPublishers)
	for p := range last {
		last[p] = pos{-1, -1}
	}
	timeout := time.After(crashWait) // a failure bound only
	for total < q.Messages {
		var d amqp.Delivery
		select {
		case d = <-msgs:
		case <-timeout:
			t.Fatalf("drain: %d of the %d messages the queue reported came", total, q.Messages)
		}
		total++
		if err := d.Ack(false); err != nil {
			t.Fatal(err)
		}
		id := string(d.Body)
		if d.MessageId != id {
			t.Errorf("message %q has message id %q", id, d.MessageId)
		}
		var c, p, n, i int
		if k, err := fmt.Sscanf(id, "c%d-p%d-t%d-%d", &c, &p, &n, &i); k != 4 || err != nil || id != txID(c, p, n, i) ||
			c != cycle || p < 0 || p >= crashTxPublishers || n < 0 || i < 0 || i >= crashTxSize {
			t.Errorf("recovered %q, which cycle %d never published", id, cycle)
			continue
		}
		if l := last[p]; n < l.n || n == l.n && i <= l.i {
			t.Errorf("recovered %q after %q: out of publisher %d's order", id, txID(cycle, p, l.n, l.i), p)
		}
		last[p] = pos{n, i}
		f := found[p][n]
		if f == nil {
			f = &txFound{}
			found[p][n] = f
		}
		if f.mask&(1<<i) != 0 {
			f.dups++
		}
		f.mask |= 1 << i
	}
	if err := ch.Cancel("drain", false); err != nil {
		t.Fatal(err)
	}
	if q, err := ch.QueueDeclarePassive(crashTxQueue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	} else if q.Messages != 0 {
		t.Errorf("drain: %d messages still in %s after taking the %d it reported", q.Messages, crashTxQueue, total)
	}
	return found, total
}

// checkTx compares what the drain found with what the publishers saw:
// every committed transaction wholly present, every in-flight one wholly
// present or wholly absent, nothing of one whose commit was never sent.
// It returns the in-flight transactions found whole and found absent.
func checkTx(t *testing.T, cycle int, pubs []txPublisher, found []map[int]*txFound) (whole, absent int) {
	t.Helper()
	const all = 1<<crashTxSize - 1
	for p := range pubs {
		for n := range found[p] {
			if n >= len(pubs[p].txs) {
				t.Errorf("cycle %d: recovered messages of %s, a transaction publisher %d never began", cycle, txID(cycle, p, n, 0), p)
			}
		}
		for n, st := range pubs[p].txs {
			f := found[p][n]
			if f == nil {
				f = &txFound{}
			}
			if f.dups > 0 {
				t.Errorf("cycle %d: transaction %s: %d duplicate messages", cycle, txID(cycle, p, n, 0), f.dups)
			}
			partly := f.mask != 0 && f.mask != all
			switch {
			case partly:
				var present []int
				for i := range crashTxSize {
					if f.mask&(1<<i) != 0 {
						present = append(present, i)
					}
				}
				t.Errorf("cycle %d: transaction %s (%s) partly present: only messages %v of 0..%d", cycle, txID(cycle, p, n, 0), st, present, crashTxSize-1)
			case st == txCommitted && f.mask != all:
				t.Errorf("cycle %d: committed transaction %s lost in the crash", cycle, txID(cycle, p, n, 0))
			case st == txOpen && f.mask != 0:
				t.Errorf("cycle %d: transaction %s present, but its commit was never sent", cycle, txID(cycle, p, n, 0))
			case st == txInFlight && f.mask == all:
				whole++
			case st == txInFlight:
				absent++
			}
		}
	}
	return whole, absent
}

func (s txState) String() string {
	switch s {
	case txOpen:
		return "open"
	case txInFlight:
		return "in flight"
	case txCommitted:
		return "committed"
	}
	return "?"
}

// TestCrashTransactionsAtomic commits transactions of persistent messages
// in a loop on several channels, kills the broker with SIGKILL at a random
// moment, and restarts it: every committed transaction is wholly present,
// none partly, and one in flight (commit sent, no commit-ok) is wholly
// present or wholly absent. Several cycles, on the same data dir.
func TestCrashTransactionsAtomic(t *testing.T) {
	cycles, rng, dir := crashSetup(t)

	var prev []txPublisher // the last cycle's, checked after the next start
	check := func(url string, cycle int) {
		found, total := drainTx(t, url, cycle)
		whole, absent := checkTx(t, cycle, prev, found)
		committed, inFlight := 0, 0
		for _, pub := range prev {
			for _, st := range pub.txs {
				switch st {
				case txCommitted:
					committed++
				case txInFlight:
					inFlight++
				}
			}
		}
		t.Logf("cycle %d: %d transactions committed, %d in flight; recovered %d messages; in flight found whole %d, absent %d",
			cycle, committed, inFlight, total, whole, absent)
	}
	for cycle := 1; cycle <= cycles; cycle++ {
		cmd, url := startOn(t, dir)
		if cycle > 1 {
			check(url, cycle-1)
		}
		declareDurable(t, url, crashTxQueue, nil)

		pubs := make([]txPublisher, crashTxPublishers)
		// ready counts the publishers set up: the kill waits for all, so
		// that a setup the kill cut short is not taken for an error.
		var ready, committed atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, crashTxPublishers)
		for p := range pubs {
			wg.Add(1)
			go func() { defer wg.Done(); errs <- publishTxUntilKilled(url, cycle, p, &pubs[p], &ready, &committed) }()
		}

		// Kill after target commits and a random few ms more, or after a
		// while if the broker is slower than that (a bound, not an
		// expectation).
		target := int64(20 + rng.IntN(200))
		extra := time.Duration(rng.IntN(40_000)) * time.Microsecond
		began := time.Now()
		killAfter(t, cmd, func() bool { return committed.Load() >= target && ready.Load() == crashTxPublishers }, extra)
		killedAfter, killedAt := time.Since(began), committed.Load()
		waitClients(t, cycle, &wg, errs)
		if committed.Load() == 0 {
			t.Fatalf("cycle %d: no transaction was committed before the kill", cycle)
		}
		checkStore(t, dir)
		t.Logf("cycle %d: SIGKILL after %v (%d commits: target %d, then %v more); --check ok",
			cycle, killedAfter.Round(time.Millisecond), killedAt, target, extra.Round(time.Millisecond))
		prev = pubs
	}
	_, url := startOn(t, dir)
	check(url, cycles)
}
