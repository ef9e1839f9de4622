package server_test

// Transactions (tx.select, tx.commit, tx.rollback) beyond the basics in
// basic_test.go: acknowledgements after a rollback, connection loss,
// routing at publish time, basic.recover inside a transaction, the size
// limits, and what a restart keeps.

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/internal/wire"
	"github.com/warrenmq/warren/server"
)

// txChannel opens a channel on conn and makes it transactional.
func txChannel(t *testing.T, conn *amqp.Connection) *amqp.Channel {
	t.Helper()
	ch := mustChannel(t, conn)
	if err := ch.Tx(); err != nil {
		t.Fatalf("tx.select: %v", err)
	}
	return ch
}

// A rolled-back acknowledgement leaves the delivery outstanding: the same
// tag can be acknowledged again, and that ack commits.
func TestTxAckAgainAfterRollback(t *testing.T) {
	_, conn, ch, q, _ := numberedQueue(t, 2)
	tch := txChannel(t, conn)
	get(t, tch, q, false)
	get(t, tch, q, false)
	if err := tch.Ack(1, false); err != nil {
		t.Fatal(err)
	}
	if err := tch.TxRollback(); err != nil {
		t.Fatal(err)
	}
	if err := tch.Ack(1, false); err != nil {
		t.Fatal(err)
	}
	if err := tch.TxCommit(); err != nil {
		t.Fatalf("commit of the ack repeated after rollback: %v", err)
	}
	tch.Close() // 2 was never acked: back it goes
	waitCount(t, conn, q, 1)
	if got := drainBodies(t, ch, q); !equalStrings(got, []string{"2"}) {
		t.Fatalf("got %q, want only 2 (1 was acked after the rollback)", got)
	}
}

// A connection that closes with a transaction open rolls it back: its
// publishes never appear and its acknowledged deliveries are requeued.
func TestTxConnectionCloseRollsBack(t *testing.T) {
	b, conn, ch, q, _ := numberedQueue(t, 2)
	conn2 := dial(t, b.URL)
	tch := txChannel(t, conn2)
	get(t, tch, q, false)
	if err := tch.Ack(1, false); err != nil {
		t.Fatal(err)
	}
	publish(t, tch, "", q, "uncommitted")
	syncChannel(t, tch, q)
	conn2.Close()
	waitCount(t, conn, q, 2)
	if got := drainBodies(t, ch, q); !equalStrings(got, []string{"1", "2"}) {
		t.Fatalf("got %q, want 1 back and nothing of the transaction", got)
	}
}

// As in RabbitMQ, a publish in a transaction is routed when it arrives and
// delivered to those queues at commit: bindings and exchanges that change
// in between do not matter.
func TestTxRoutesWhenPublished(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	x := declareExchange(t, b, ch, "direct", nil)
	bindQueue(t, ch, q, "k", x, nil)

	tch := txChannel(t, conn)
	returns := tch.NotifyReturn(make(chan amqp.Return, 1))
	publish(t, tch, x, "k", "routed")
	if err := tch.Publish(x, "later", true, false, amqp.Publishing{Body: []byte("unroutable")}); err != nil {
		t.Fatal(err)
	}
	syncChannel(t, tch, q)
	// Now the routes change: the message to "k" would go nowhere, the one
	// to "later" would be routed.
	bindQueue(t, ch, q, "later", x, nil)
	if err := ch.QueueUnbind(q, "k", x, nil); err != nil {
		t.Fatal(err)
	}
	if err := tch.TxCommit(); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-returns:
		if string(r.Body) != "unroutable" || r.ReplyCode != amqp.NoRoute {
			t.Fatalf("return %d %q", r.ReplyCode, r.Body)
		}
	default:
		t.Fatal("no basic.return before tx.commit-ok for the message unroutable when published")
	}
	waitCount(t, conn, q, 1)
	if got := drainBodies(t, ch, q); !equalStrings(got, []string{"routed"}) {
		t.Fatalf("got %q, want the message routed when it was published", got)
	}

	// A queue deleted before the commit takes nothing, and the rest of the
	// transaction is applied.
	q2 := declareQueue(t, b, ch, nil)
	publish(t, tch, "", q2, "to-deleted")
	publish(t, tch, "", q, "kept")
	syncChannel(t, tch, q)
	if _, err := ch.QueueDelete(q2, false, false, false); err != nil {
		t.Fatal(err)
	}
	if err := tch.TxCommit(); err != nil {
		t.Fatal(err)
	}
	waitCount(t, conn, q, 1)
	if got := drainBodies(t, ch, q); !equalStrings(got, []string{"kept"}) {
		t.Fatalf("got %q", got)
	}
}

// basic.recover inside a transaction requeues only the deliveries the
// transaction has not acknowledged, as RabbitMQ does; the ack still
// commits.
func TestTxRecoverKeepsTransactionAcks(t *testing.T) {
	_, conn, ch, q, _ := numberedQueue(t, 2)
	tch := txChannel(t, conn)
	get(t, tch, q, false)
	get(t, tch, q, false)
	if err := tch.Ack(1, false); err != nil {
		t.Fatal(err)
	}
	if err := tch.Recover(true); err != nil {
		t.Fatal(err)
	}
	waitCount(t, conn, q, 1)
	if err := tch.TxCommit(); err != nil {
		t.Fatal(err)
	}
	if got := drainBodies(t, ch, q); !equalStrings(got, []string{"2"}) {
		t.Fatalf("got %q, want 2 (recovered); 1 was acked in the transaction", got)
	}
	tch.Close()
	if n := messageCount(t, conn, q); n != 0 {
		t.Fatalf("%d messages back after closing the channel; the committed ack was lost", n)
	}
}

// A transaction past its limits closes the channel with 406 and a text
// naming the limit; nothing of it is applied.
func TestTxLimits(t *testing.T) {
	b := start(t, func(o *server.Options) { o.MaxTxOps = 4; o.MaxTxBytes = 100 })
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	p := newPublisher(t, conn)
	p.body("", q, "m")
	p.wait()

	tooLarge := func(tch *amqp.Channel, closed chan *amqp.Error, want string) {
		t.Helper()
		if _, err := tch.QueueDeclarePassive(q, false, false, false, false, nil); err == nil {
			t.Fatal("channel still open past the limit")
		}
		cerr := waitClose(t, closed)
		if cerr.Code != amqp.PreconditionFailed || cerr.Reason != want {
			t.Fatalf("got %d %q, want 406 %q", cerr.Code, cerr.Reason, want)
		}
	}

	// 1 ack + 3 publishes fill max-tx-ops; the fifth op is one too many.
	tch := txChannel(t, conn)
	closed := tch.NotifyClose(make(chan *amqp.Error, 1))
	get(t, tch, q, false)
	if err := tch.Ack(1, false); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		publish(t, tch, "", q, fmt.Sprint("p", i))
	}
	tooLarge(tch, closed, "PRECONDITION_FAILED - transaction too large: it would hold more than 4 publishes and acknowledgements (max-tx-ops); nothing of it was applied")
	waitCount(t, conn, q, 1)
	if got := drainBodies(t, ch, q); !equalStrings(got, []string{"m"}) {
		t.Fatalf("got %q, want m back (its ack not applied) and no publish", got)
	}

	// 60 + 60 body bytes are over max-tx-bytes.
	tch = txChannel(t, conn)
	closed = tch.NotifyClose(make(chan *amqp.Error, 1))
	publish(t, tch, "", q, strings.Repeat("a", 60))
	publish(t, tch, "", q, strings.Repeat("b", 60))
	tooLarge(tch, closed, "PRECONDITION_FAILED - transaction too large: it would hold more than 100 bytes of message bodies (max-tx-bytes); nothing of it was applied")
	if n := messageCount(t, conn, q); n != 0 {
		t.Fatalf("%d messages of an oversized transaction applied", n)
	}

	// Within the limits a transaction commits as usual.
	tch = txChannel(t, conn)
	for i := range 4 {
		publish(t, tch, "", q, fmt.Sprint(i))
	}
	if err := tch.TxCommit(); err != nil {
		t.Fatal(err)
	}
	waitCount(t, conn, q, 4)
}

// Committed transactions are on disk: after a restart their publishes and
// acks hold; rolled-back and open ones left no trace.
func TestTxRestart(t *testing.T) {
	b := startDurable(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := uniq(t, "durable")
	if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	tch := txChannel(t, conn)
	for i := range 10 {
		publishMsg(t, tch, "", q, persistent(fmt.Sprint("c", i)))
	}
	if err := tch.TxCommit(); err != nil {
		t.Fatal(err)
	}
	publishMsg(t, tch, "", q, persistent("rolled-back"))
	if err := tch.TxRollback(); err != nil {
		t.Fatal(err)
	}
	// Ack c0..c2 in a committed transaction, c3 in a rolled-back one.
	for range 4 {
		get(t, tch, q, false)
	}
	if err := tch.Ack(3, true); err != nil {
		t.Fatal(err)
	}
	if err := tch.TxCommit(); err != nil {
		t.Fatal(err)
	}
	if err := tch.Ack(4, false); err != nil {
		t.Fatal(err)
	}
	if err := tch.TxRollback(); err != nil {
		t.Fatal(err)
	}
	// And one left open at the stop.
	publishMsg(t, tch, "", q, persistent("open"))
	syncChannel(t, tch, q)

	b = restart(t, b)
	conn = dial(t, b.URL)
	ch = mustChannel(t, conn)
	want := []string{"c3", "c4", "c5", "c6", "c7", "c8", "c9"}
	if got := drainBodies(t, ch, q); !equalStrings(got, want) {
		t.Fatalf("after restart got %q, want %q", got, want)
	}
}

// A tx.commit waiting for its fsync holds up neither the connection's other
// channels nor the store: only the committing channel waits.
func TestTxCommitDoesNotBlockConnection(t *testing.T) {
	var armed atomic.Bool
	entered, release := make(chan struct{}, 1), make(chan struct{})
	b := startDurable(t, func(o *server.Options) {
		o.StoreFault = func() error {
			if armed.CompareAndSwap(true, false) {
				entered <- struct{}{}
				<-release // hold the commit; then it succeeds
			}
			return nil
		}
	})
	conn := dial(t, b.URL)
	other := mustChannel(t, conn)
	q := uniq(t, "durable")
	if _, err := other.QueueDeclare(q, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	tch := txChannel(t, conn)
	publishMsg(t, tch, "", q, persistent("m"))
	armed.Store(true)
	committed := make(chan error, 1)
	go func() { committed <- tch.TxCommit() }()
	<-entered // the transaction's batch is being written, and held there

	answered := make(chan error, 1)
	go func() {
		_, err := other.QueueDeclarePassive(q, true, false, false, false, nil)
		answered <- err
	}()
	select {
	case err := <-answered:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitTimeout):
		close(release)
		t.Fatal("another channel of the connection got no answer while a commit waited for the store")
	}
	select {
	case err := <-committed:
		t.Fatalf("tx.commit-ok before its batch was written (err %v)", err)
	default:
	}
	close(release)
	if err := <-committed; err != nil {
		t.Fatal(err)
	}
	if n := messageCount(t, conn, q); n != 1 {
		t.Fatalf("%d messages after the commit", n)
	}
}

// basic.ack multiple=true with tag 0 in a transaction covers the
// deliveries made before it, not those that arrive before the commit (as
// RabbitMQ).
func TestTxAckAllCoversOnlyDeliveriesSoFar(t *testing.T) {
	_, conn, ch, q, p := numberedQueue(t, 1)
	tch := txChannel(t, conn)
	if err := tch.Qos(10, 0, false); err != nil {
		t.Fatal(err)
	}
	msgs := consume(t, tch, q, false)
	recv(t, msgs)
	if err := tch.Ack(0, true); err != nil {
		t.Fatal(err)
	}
	p.body("", q, "2")
	p.wait()
	recv(t, msgs) // delivered after the ack, before the commit
	if err := tch.TxCommit(); err != nil {
		t.Fatal(err)
	}
	tch.Close()
	waitCount(t, conn, q, 1)
	if got := drainBodies(t, ch, q); !equalStrings(got, []string{"2"}) {
		t.Fatalf("got %q, want 2 back (delivered after the ack)", got)
	}
}

// A transactional publish routed to a queue that is deleted and declared
// again before the commit goes to the new queue, as in RabbitMQ.
func TestTxPublishToRedeclaredQueue(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	tch := txChannel(t, conn)
	publish(t, tch, "", q, "m")
	syncChannel(t, tch, q)
	if _, err := ch.QueueDelete(q, false, false, false); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(q, false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := tch.TxCommit(); err != nil {
		t.Fatal(err)
	}
	waitCount(t, conn, q, 1)
}

// After a tx.commit fails in the store (541), nothing the client sent
// behind it on the channel is carried out.
func TestTxFailedCommitStopsTheChannel(t *testing.T) {
	var failing atomic.Bool
	b := startDurable(t, failWhen(&failing))
	conn := dial(t, b.URL)
	q := uniq(t, "durable")
	if _, err := mustChannel(t, conn).QueueDeclare(q, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, b.Addr)
	advance(t, c, stageChannel)
	c.send(t, 1, &wire.TxSelect{})
	expectMethod[*wire.TxSelectOk](t, c, 1)
	failing.Store(true)
	after := uniq(t, "after")
	c.write(t, frames(
		publishFrames(1, "", q, false, wire.Properties{DeliveryMode: 2}, "m"),
		methodFrame(1, &wire.TxCommit{}),
		methodFrame(1, &wire.QueueDeclare{Queue: after}),
	))
	c.expectConnectionClose(t, wire.InternalError)
	failing.Store(false)
	if _, err := mustChannel(t, conn).QueueDeclarePassive(after, false, false, false, false, nil); err == nil {
		t.Fatal("a queue.declare sent after the failed tx.commit was carried out")
	}
}

// A transactional channel reuses its room for the routes of held publishes
// from one transaction to the next: each publish still reaches exactly the
// queues it was routed to, whatever the earlier transactions held, when a
// transaction holds more publishes than any before it, and after a
// rollback.
func TestTxSuccessiveTransactionsKeepTheirRoutes(t *testing.T) {
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	qa, qb, qc := declareQueue(t, b, ch, nil), declareQueue(t, b, ch, nil), declareQueue(t, b, ch, nil)
	fan := declareExchange(t, b, ch, "fanout", nil)
	bindQueue(t, ch, qa, "", fan, nil)
	bindQueue(t, ch, qb, "", fan, nil)

	tch := txChannel(t, conn)
	want := map[string][]string{}
	// send publishes body to one of the targets: the fanout (qa and qb),
	// a queue by name, or nowhere.
	send := func(target, body string) {
		t.Helper()
		switch target {
		case "fan":
			publish(t, tch, fan, "", body)
			want[qa] = append(want[qa], body)
			want[qb] = append(want[qb], body)
		case "none":
			publish(t, tch, "amq.direct", "no-such-binding", body)
		default:
			publish(t, tch, "", target, body)
			want[target] = append(want[target], body)
		}
	}
	commit := func() {
		t.Helper()
		if err := tch.TxCommit(); err != nil {
			t.Fatal(err)
		}
	}

	send("fan", "t1-fan")
	send(qc, "t1-c")
	send(qa, "t1-a")
	commit()

	send(qc, "t2-c")
	send("none", "t2-none")
	send("fan", "t2-fan")
	send(qb, "t2-b")
	commit()

	// Rolled back: none of these may appear, and the next transaction's
	// routes must not be theirs.
	publish(t, tch, fan, "", "rolled-back-fan")
	publish(t, tch, "", qc, "rolled-back-c")
	if err := tch.TxRollback(); err != nil {
		t.Fatal(err)
	}

	// More publishes than any transaction before, alternating targets.
	targets := []string{"fan", qc, "none", qb, qa}
	for i := range 40 {
		send(targets[i%len(targets)], fmt.Sprintf("t3-%d", i))
	}
	commit()

	for _, q := range []string{qa, qb, qc} {
		waitCount(t, conn, q, len(want[q]))
		if got := drainBodies(t, ch, q); !equalStrings(got, want[q]) {
			t.Errorf("queue %s got %q, want %q", q, got, want[q])
		}
	}
}
