package server_test

// Restart tests: what a broker keeps in its data dir and brings back when
// another broker starts on it. They need Warren's data dir, so none of them
// runs against the reference broker.

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.etcd.io/bbolt"

	"github.com/warrenmq/warren/internal/store"
	"github.com/warrenmq/warren/server"
	"github.com/warrenmq/warren/server/servertest"
)

// startDurable starts an in-process Warren (never the reference broker: a
// restart needs its data dir).
func startDurable(t *testing.T, modify ...func(*server.Options)) *servertest.Broker {
	t.Helper()
	if refURL != "" {
		t.Skip("restarts the broker; not run against the reference broker")
	}
	return servertest.Start(t, modify...)
}

// restart stops b cleanly and starts another broker on its data dir with
// modify applied.
func restart(t *testing.T, b *servertest.Broker, modify ...func(*server.Options)) *servertest.Broker {
	t.Helper()
	b.Stop()
	return servertest.Start(t, append(modify, func(o *server.Options) { o.DataDir = b.DataDir })...)
}

// persistent is a persistent message with body.
func persistent(body string) amqp.Publishing {
	return amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(body)}
}

// syncChannel waits until the broker has handled everything sent before on
// ch (basic.ack has no reply): a passive declare of q is answered in order.
func syncChannel(t *testing.T, ch *amqp.Channel, q string) {
	t.Helper()
	if _, err := ch.QueueDeclarePassive(q, true, false, false, false, nil); err != nil {
		t.Fatalf("passive declare %s: %v", q, err)
	}
}

func TestRestartKeepsDurableTopology(t *testing.T) {
	b := startDurable(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	xd, xt, xh, xf, xdl := uniq(t, "direct"), uniq(t, "topic"), uniq(t, "headers"), uniq(t, "fanout"), uniq(t, "dlx")
	xtr := uniq(t, "transient")
	qa, qf, qdl := uniq(t, "qa"), uniq(t, "qf"), uniq(t, "qdl")
	qn, qe := uniq(t, "nondurable"), uniq(t, "exclusive")
	qaArgs := amqp.Table{"x-message-ttl": int32(3_600_000), "x-max-length": int64(1000), "x-dead-letter-exchange": xdl}
	headerArgs := amqp.Table{"x-match": "all", "h": "v", "n": int32(7)}
	argsBinding := amqp.Table{"x-custom": "a", "n": int64(1)}

	for _, x := range []struct {
		name, kind string
		durable    bool
		args       amqp.Table
	}{
		{xd, "direct", true, nil},
		{xt, "topic", true, amqp.Table{"alternate-exchange": xf}},
		{xh, "headers", true, nil},
		{xf, "fanout", true, nil},
		{xdl, "fanout", true, nil},
		{xtr, "direct", false, nil},
	} {
		if err := ch.ExchangeDeclare(x.name, x.kind, x.durable, false, false, false, x.args); err != nil {
			t.Fatalf("declare %s exchange %s: %v", x.kind, x.name, err)
		}
	}
	for _, q := range []struct {
		name               string
		durable, exclusive bool
		args               amqp.Table
	}{
		{qa, true, false, qaArgs},
		{qf, true, false, nil},
		{qdl, true, false, nil},
		{qn, false, false, nil},
		{qe, true, true, nil},
	} {
		if _, err := ch.QueueDeclare(q.name, q.durable, false, q.exclusive, false, q.args); err != nil {
			t.Fatalf("declare queue %s: %v", q.name, err)
		}
	}
	bindQueue(t, ch, qa, "k-a", xd, nil)
	bindQueue(t, ch, qa, "k-args", xd, argsBinding)
	bindQueue(t, ch, qa, "a.*.c", xt, nil)
	bindQueue(t, ch, qa, "", xh, headerArgs)
	bindQueue(t, ch, qf, "", xf, nil)
	bindQueue(t, ch, qdl, "", xdl, nil)
	if err := ch.ExchangeBind(xf, "to-fanout", xd, false, nil); err != nil {
		t.Fatalf("exchange.bind %s -> %s: %v", xd, xf, err)
	}
	// bindings that must not survive: one end is not durable
	bindQueue(t, ch, qn, "k-n", xd, nil)
	bindQueue(t, ch, qe, "k-e", xd, nil)
	bindQueue(t, ch, qa, "k-tr", xtr, nil)
	if err := ch.ExchangeBind(xtr, "to-transient", xd, false, nil); err != nil {
		t.Fatalf("exchange.bind %s -> %s: %v", xd, xtr, err)
	}

	b = restart(t, b)
	conn = dial(t, b.URL)
	ch = mustChannel(t, conn)

	// the durable ones are back
	for _, x := range []string{xd, xt, xh, xf, xdl} {
		c := mustChannel(t, conn)
		if err := c.ExchangeDeclarePassive(x, "", true, false, false, false, nil); err != nil {
			t.Fatalf("exchange %s after restart: %v", x, err)
		}
		c.Close()
	}
	for _, q := range []string{qa, qf, qdl} {
		if n := messageCount(t, conn, q); n != 0 {
			t.Fatalf("queue %s holds %d after restart, want 0", q, n)
		}
	}
	// the others are gone
	exchangeGone(t, conn, xtr)
	queueGone(t, conn, qn)
	queueGone(t, conn, qe)

	// with their kinds, flags and arguments: equivalent redeclares pass,
	// others fail as before
	if err := ch.ExchangeDeclare(xt, "topic", true, false, false, false, amqp.Table{"alternate-exchange": xf}); err != nil {
		t.Fatalf("equivalent redeclare of %s: %v", xt, err)
	}
	if _, err := ch.QueueDeclare(qa, true, false, false, false, qaArgs); err != nil {
		t.Fatalf("equivalent redeclare of %s: %v", qa, err)
	}
	for name, redeclare := range map[string]func(*amqp.Channel) error{
		"exchange type": func(c *amqp.Channel) error {
			return c.ExchangeDeclare(xd, "fanout", true, false, false, false, nil)
		},
		"exchange durable": func(c *amqp.Channel) error {
			return c.ExchangeDeclare(xh, "headers", false, false, false, false, nil)
		},
		"exchange alternate-exchange": func(c *amqp.Channel) error {
			return c.ExchangeDeclare(xt, "topic", true, false, false, false, nil)
		},
		"queue durable": func(c *amqp.Channel) error {
			_, err := c.QueueDeclare(qa, false, false, false, false, qaArgs)
			return err
		},
		"queue x-max-length": func(c *amqp.Channel) error {
			_, err := c.QueueDeclare(qa, true, false, false, false, amqp.Table{"x-message-ttl": int32(3_600_000), "x-max-length": int64(999), "x-dead-letter-exchange": xdl})
			return err
		},
		"queue x-dead-letter-exchange": func(c *amqp.Channel) error {
			_, err := c.QueueDeclare(qa, true, false, false, false, amqp.Table{"x-message-ttl": int32(3_600_000), "x-max-length": int64(1000)})
			return err
		},
	} {
		c := mustChannel(t, conn)
		err := redeclare(c)
		if err == nil {
			t.Fatalf("%s: an inequivalent redeclare after restart succeeded", name)
		}
		expectClose(t, err, amqp.PreconditionFailed)
	}

	// Routing through the recovered bindings. Fresh namesakes of the
	// non-durable queue and exchange must not inherit the old bindings.
	if _, err := ch.QueueDeclare(qn, false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare(xtr, "direct", false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	qx := declareQueue(t, b, ch, nil)
	bindQueue(t, ch, qx, "to-transient", xtr, nil)
	p := newPublisher(t, conn)
	p.body(xd, "k-a", "direct")
	p.body(xd, "k-args", "direct-args")
	p.body(xt, "a.b.c", "topic")
	p.pub(xh, "", amqp.Publishing{Headers: amqp.Table{"h": "v", "n": int32(7)}, Body: []byte("headers")})
	p.pub(xh, "", amqp.Publishing{Headers: amqp.Table{"h": "v"}, Body: []byte("headers-miss")})
	p.body(xd, "to-fanout", "e2e")        // xd -> xf -> qf
	p.body(xt, "no.match", "alternate")   // xt's alternate exchange xf -> qf
	p.body(xd, "k-n", "to-nondurable")    // binding not recovered
	p.body(xd, "to-transient", "to-xtr")  // e2e binding to a transient exchange
	p.body(xtr, "k-tr", "from-transient") // binding from a transient exchange
	p.wait()
	if got, want := drainBodies(t, ch, qa), []string{"direct", "direct-args", "topic", "headers"}; !equalStrings(got, want) {
		t.Fatalf("%s got %q, want %q", qa, got, want)
	}
	if got, want := drainBodies(t, ch, qf), []string{"e2e", "alternate"}; !equalStrings(got, want) {
		t.Fatalf("%s got %q, want %q", qf, got, want)
	}
	if got := drainBodies(t, ch, qn); len(got) != 0 {
		t.Fatalf("a binding to the non-durable queue %s came back: it got %q", qn, got)
	}
	if got := drainBodies(t, ch, qx); len(got) != 0 {
		t.Fatalf("the binding from %s to the transient exchange %s came back: %s got %q", xd, xtr, qx, got)
	}

	// the binding arguments came back too: unbinding with them removes it
	if err := ch.QueueUnbind(qa, "k-args", xd, argsBinding); err != nil {
		t.Fatal(err)
	}
	p.body(xd, "k-args", "unbound")
	p.wait()
	if n := messageCount(t, conn, qa); n != 0 {
		t.Fatalf("%s holds %d after unbinding k-args with its arguments, want 0", qa, n)
	}

	// the recovered x-dead-letter-exchange works
	p.body(xd, "k-a", "dead")
	p.wait()
	d := get(t, ch, qa, false)
	if err := d.Reject(false); err != nil {
		t.Fatal(err)
	}
	waitCount(t, conn, qdl, 1)
	if got := drainBodies(t, ch, qdl); !equalStrings(got, []string{"dead"}) {
		t.Fatalf("%s got %q, want [dead]", qdl, got)
	}
}

// msgProps is the properties of persistent message i in
// TestRestartKeepsPersistentMessages.
func msgProps(i int) amqp.Publishing {
	return amqp.Publishing{
		DeliveryMode:  amqp.Persistent,
		ContentType:   "application/x-warren-test",
		CorrelationId: fmt.Sprintf("corr-%d", i),
		MessageId:     fmt.Sprintf("msg-%d", i),
		Priority:      3,
		Timestamp:     time.Unix(1_700_000_000+int64(i), 0),
		Type:          "test.type",
		AppId:         "warren-tests",
		ReplyTo:       "reply-here",
		Headers: amqp.Table{
			"i":     int32(i),
			"s":     "string",
			"b":     true,
			"bytes": []byte{0, 1, 2},
			"n":     amqp.Table{"x": int64(5)},
		},
		Body: []byte(fmt.Sprintf("p-%d", i)),
	}
}

// checkProps fails unless d carries msgProps(i).
func checkProps(t *testing.T, d amqp.Delivery, i int) {
	t.Helper()
	w := msgProps(i)
	if string(d.Body) != string(w.Body) {
		t.Fatalf("body %q, want %q", d.Body, w.Body)
	}
	if d.DeliveryMode != amqp.Persistent || d.ContentType != w.ContentType || d.CorrelationId != w.CorrelationId ||
		d.MessageId != w.MessageId || d.Priority != w.Priority || !d.Timestamp.Equal(w.Timestamp) ||
		d.Type != w.Type || d.AppId != w.AppId || d.ReplyTo != w.ReplyTo || d.Expiration != "" {
		t.Fatalf("message %q has properties mode=%d type=%q corr=%q id=%q prio=%d ts=%v type=%q app=%q reply=%q expiration=%q, want %+v",
			d.Body, d.DeliveryMode, d.ContentType, d.CorrelationId, d.MessageId, d.Priority, d.Timestamp, d.Type, d.AppId, d.ReplyTo, d.Expiration, w)
	}
	if !reflect.DeepEqual(d.Headers, w.Headers) {
		t.Fatalf("message %q has headers %#v, want %#v", d.Body, d.Headers, w.Headers)
	}
}

func TestRestartKeepsPersistentMessages(t *testing.T) {
	b := startDurable(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q, qn := uniq(t, "durable"), uniq(t, "nondurable")
	if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(qn, false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	const n = 30
	p := newPublisher(t, conn)
	for i := range n {
		p.pub("", q, msgProps(i))
		p.pub("", q, amqp.Publishing{Body: []byte(fmt.Sprintf("t-%d", i))}) // transient
		p.pub("", qn, persistent(fmt.Sprintf("n-%d", i)))
	}
	p.wait()
	if c := messageCount(t, conn, q); c != 2*n {
		t.Fatalf("%s holds %d, want %d", q, c, 2*n)
	}

	// Ack the head: p-0, t-0 ... p-4, t-4, checking them on the way.
	const acked, unacked = 5, 4
	for i := range acked {
		d := get(t, ch, q, false)
		checkProps(t, d, i)
		if d.Redelivered {
			t.Fatalf("%q redelivered before any restart", d.Body)
		}
		if err := d.Ack(false); err != nil {
			t.Fatal(err)
		}
		if d = get(t, ch, q, false); string(d.Body) != fmt.Sprintf("t-%d", i) {
			t.Fatalf("got %q, want t-%d", d.Body, i)
		}
		if err := d.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	syncChannel(t, ch, q)
	// Deliver the next 2*unacked (p-5, t-5 ... p-8, t-8) to a consumer
	// and keep them unacked at the stop.
	cch := mustChannel(t, conn)
	if err := cch.Qos(2*unacked, 0, false); err != nil {
		t.Fatal(err)
	}
	msgs := consume(t, cch, q, false)
	for i := acked; i < acked+unacked; i++ {
		if d := recv(t, msgs); string(d.Body) != fmt.Sprintf("p-%d", i) {
			t.Fatalf("consumer got %q, want p-%d", d.Body, i)
		}
		if d := recv(t, msgs); string(d.Body) != fmt.Sprintf("t-%d", i) {
			t.Fatalf("consumer got %q, want t-%d", d.Body, i)
		}
	}

	b = restart(t, b)
	conn = dial(t, b.URL)
	ch = mustChannel(t, conn)
	queueGone(t, conn, qn)
	want := n - acked
	if c := messageCount(t, conn, q); c != want {
		t.Errorf("%s holds %d after restart, want %d", q, c, want)
	}
	for i := acked; i < n; i++ {
		d, ok, err := ch.Get(q, true)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			t.Fatalf("queue empty after %d messages, want p-%d to p-%d", i-acked, i, n-1)
		}
		checkProps(t, d, i)
		if wantRe := i < acked+unacked; d.Redelivered != wantRe {
			t.Fatalf("%q redelivered=%v, want %v", d.Body, d.Redelivered, wantRe)
		}
	}
	if left := drainBodies(t, ch, q); len(left) != 0 {
		t.Fatalf("after the persistent messages %s holds %q", q, left)
	}
}

// kib returns a 1 KiB body starting with i.
func kib(i int) []byte {
	b := make([]byte, 1024)
	copy(b, fmt.Sprintf("%05d:", i))
	for j := 6; j < len(b); j++ {
		b[j] = byte('a' + (i+j)%26)
	}
	return b
}

func TestRestartPagedQueue(t *testing.T) {
	window := func(o *server.Options) { o.QueueWindow = 64 << 10 }
	b := startDurable(t, window)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := uniq(t, "paged")
	if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	const n, consumed = 5000, 100
	p := newPublisher(t, conn)
	for i := range n {
		msg := amqp.Publishing{Body: kib(i)}
		if i%2 == 0 {
			msg.DeliveryMode = amqp.Persistent
		}
		p.pub("", q, msg)
	}
	p.wait()
	if c := messageCount(t, conn, q); c != n {
		t.Fatalf("%s holds %d, want %d", q, c, n)
	}
	for i := range consumed {
		d := get(t, ch, q, false)
		if string(d.Body) != string(kib(i)) {
			t.Fatalf("message %d: got %.6q, want %.6q", i, d.Body, kib(i))
		}
		if err := d.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	syncChannel(t, ch, q)
	if c := messageCount(t, conn, q); c != n-consumed {
		t.Fatalf("%s holds %d after %d acks, want %d", q, c, consumed, n-consumed)
	}

	b = restart(t, b, window)
	conn = dial(t, b.URL)
	ch = mustChannel(t, conn)
	want := (n - consumed) / 2 // the even ones from consumed on
	if c := messageCount(t, conn, q); c != want {
		t.Errorf("%s holds %d after restart, want %d", q, c, want)
	}
	msgs, err := ch.Consume(q, "drain", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := consumed; i < n; i += 2 {
		d := recv(t, msgs)
		if string(d.Body) != string(kib(i)) {
			t.Fatalf("after restart got %.6q, want %.6q (the persistent ones from %d on, in order)", d.Body, kib(i), consumed)
		}
		if d.Redelivered {
			t.Fatalf("%.6q redelivered, but it was never delivered", d.Body)
		}
	}
	// the delivery channel closes after cancel-ok, with whatever came before
	if err := ch.Cancel("drain", false); err != nil {
		t.Fatal(err)
	}
	var extra []string
	for d := range msgs {
		extra = append(extra, fmt.Sprintf("%.6q", d.Body))
	}
	if len(extra) > 0 {
		t.Fatalf("after the expected messages got %d more: %v", len(extra), extra)
	}
	if c := messageCount(t, conn, q); c != 0 {
		t.Fatalf("%s holds %d after the expected messages", q, c)
	}
}

func TestSecondBrokerSameDataDir(t *testing.T) {
	b := startDurable(t)
	opts := server.DefaultOptions()
	opts.AMQPAddr = "127.0.0.1:0"
	opts.DataDir = b.DataDir
	type result struct {
		srv *server.Server
		err error
	}
	done := make(chan result, 1)
	go func() {
		srv, err := server.New(opts)
		done <- result{srv, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(waitTimeout):
		t.Fatal("server.New on a data dir in use did not return: it waits for the lock")
	}
	if r.err == nil {
		r.srv.Shutdown(t.Context())
		t.Fatal("server.New on a data dir in use succeeded")
	}
	if msg := r.err.Error(); !strings.Contains(msg, b.DataDir) || !strings.Contains(strings.ToLower(msg), "in use") {
		t.Errorf("error %q does not say that %s is in use", msg, b.DataDir)
	}
	// the first broker is unharmed
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	if _, err := ch.QueueDeclare(uniq(t, "q"), true, false, false, false, nil); err != nil {
		t.Fatalf("first broker after the second one failed: %v", err)
	}
}

func TestDataDirCreated(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not", "there", "yet")
	b := startDurable(t, func(o *server.Options) { o.DataDir = dir })
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Fatalf("data dir %s: %v", dir, err)
	}
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := uniq(t, "q")
	if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	p := newPublisher(t, conn)
	p.pub("", q, persistent("kept"))
	p.wait()

	b = restart(t, b)
	conn = dial(t, b.URL)
	ch = mustChannel(t, conn)
	if got := drainBodies(t, ch, q); !equalStrings(got, []string{"kept"}) {
		t.Fatalf("after restart %s holds %q, want [kept]", q, got)
	}
}

// TestRestartDropsCorruptMessages: a message record damaged on disk while
// the broker was stopped (bbolt's values carry no checksum) is dropped,
// not delivered as a malformed frame and not left to stall its queue: the
// messages after it are delivered, and the data dir passes its check
// once they are acked.
func TestRestartDropsCorruptMessages(t *testing.T) {
	b := startDurable(t)
	conn := dial(t, b.URL)
	q := uniq(t, "corrupt")
	if _, err := mustChannel(t, conn).QueueDeclare(q, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	p := newPublisher(t, conn)
	for i := range 6 {
		p.pub("", q, persistent(fmt.Sprintf("m-%d", i)))
	}
	p.wait()
	b.Stop()

	// Each record is: a version byte (1), expiry (8 bytes), then the
	// exchange, routing key and properties each as a length and bytes,
	// then the body. m-1 gets properties of one byte, which no content
	// header can carry; m-3 gets an unknown version.
	damage := map[int][]byte{
		1: {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x80, 'x'},
		3: {9},
	}
	db, err := bbolt.Open(filepath.Join(b.DataDir, store.FileName), 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		n := 0
		err := tx.Bucket([]byte("messages")).ForEachBucket(func(qk []byte) error {
			entries := tx.Bucket([]byte("messages")).Bucket(qk).Bucket([]byte("p"))
			if entries == nil {
				return nil
			}
			i := 0
			return entries.ForEach(func(k, _ []byte) error {
				n++
				if v, ok := damage[i]; ok {
					if err := entries.Put(k, v); err != nil {
						return err
					}
				}
				i++
				return nil
			})
		})
		if err == nil && n != 6 {
			err = fmt.Errorf("the store holds %d persistent records, want the 6 published", n)
		}
		return err
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := store.CheckDir(b.DataDir); err == nil {
		t.Fatal("the data dir passes its check with two records damaged")
	}

	b = restart(t, b)
	conn = dial(t, b.URL)
	ch := mustChannel(t, conn)
	msgs := consume(t, ch, q, false)
	for _, i := range []int{0, 2, 4, 5} {
		d := recv(t, msgs)
		if string(d.Body) != fmt.Sprintf("m-%d", i) {
			t.Fatalf("got %q, want m-%d", d.Body, i)
		}
		if err := d.Ack(false); err != nil {
			t.Fatal(err)
		}
	}
	syncChannel(t, ch, q)
	if c := messageCount(t, conn, q); c != 0 {
		t.Fatalf("%s holds %d after its four good messages, want 0", q, c)
	}
	b.Stop()
	if err := store.CheckDir(b.DataDir); err != nil {
		t.Fatal(err)
	}
}

// TestRestartPriorityQueue: a durable priority queue's persistent messages
// come back in priority order after a restart, each priority's from its
// own run of the store, with a queue window small enough that most of
// them were paged out before the stop.
func TestRestartPriorityQueue(t *testing.T) {
	small := func(o *server.Options) { o.QueueWindow = 4 << 10 }
	b := startDurable(t, small)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := uniq(t, "prio")
	if _, err := ch.QueueDeclare(q, true, false, false, false, amqp.Table{"x-max-priority": int32(5)}); err != nil {
		t.Fatal(err)
	}
	const n = 60
	prio := func(i int) uint8 { return uint8(i * 7 % 9) } // 0..8; above 5 counts as 5
	p := newPublisher(t, conn)
	for i := range n {
		p.pub("", q, amqp.Publishing{DeliveryMode: amqp.Persistent, Priority: prio(i), Body: kib(i)})
	}
	p.wait()
	var want []string
	for pr := 5; pr >= 0; pr-- {
		for i := range n {
			if min(int(prio(i)), 5) == pr {
				want = append(want, string(kib(i)[:6]))
			}
		}
	}

	b = restart(t, b, small)
	conn = dial(t, b.URL)
	ch = mustChannel(t, conn)
	if c := messageCount(t, conn, q); c != n {
		t.Fatalf("%s holds %d after restart, want %d", q, c, n)
	}
	var got []string
	for _, body := range drainBodies(t, ch, q) {
		got = append(got, body[:6])
	}
	if !equalStrings(got, want) {
		t.Fatalf("after restart got %q,\nwant %q", got, want)
	}
}
