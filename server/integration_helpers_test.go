package server_test

// Shared helpers for the integration tests, which drive a broker through the
// real client, github.com/rabbitmq/amqp091-go, as a RabbitMQ user would.
//
// The tests are written to pass against RabbitMQ too: set WARREN_REF_URL
// (for example amqp://guest:guest@127.0.0.1:5673/) and every test runs
// against that broker instead of an in-process Warren, except the ones that
// need Warren's options or its Server value, which skip. That is how the
// expectations here (reply codes, texts, counts, orders) were checked. The
// reference broker is shared and outlives the test, so every name is made
// unique and every queue and exchange a test declares is deleted at cleanup.

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/warrenmq/warren/server"
	"github.com/warrenmq/warren/server/servertest"
)

// waitTimeout bounds every wait for something the broker should do; it is
// only ever reached when a test fails.
const waitTimeout = 10 * time.Second

// refURL, when set, points the tests at a reference broker (RabbitMQ).
var refURL = os.Getenv("WARREN_REF_URL")

// runID keeps names unique across runs against a shared reference broker.
var runID = func() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}()

var nameSeq atomic.Uint64

// start runs a broker for the test: an in-process Warren, or the reference
// broker when WARREN_REF_URL is set (then options cannot apply, and a test
// that sets some is skipped).
func start(t testing.TB, modify ...func(*server.Options)) *servertest.Broker {
	t.Helper()
	if refURL != "" {
		if len(modify) > 0 {
			t.Skip("needs Warren options; not run against the reference broker")
		}
		u, err := url.Parse(refURL)
		if err != nil {
			t.Fatalf("WARREN_REF_URL: %v", err)
		}
		return &servertest.Broker{URL: refURL, Addr: u.Host}
	}
	return servertest.Start(t, modify...)
}

// needWarren skips a test that uses b.Server or Warren-only behaviour when
// running against the reference broker.
func needWarren(t *testing.T, b *servertest.Broker) {
	t.Helper()
	if b.Server == nil {
		t.Skip("needs the in-process Warren server")
	}
}

// withUser returns b's URL with other credentials (url.UserPassword escapes).
func withUser(t *testing.T, rawURL, user, pass string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(user, pass)
	return u.String()
}

// dial opens a connection that is closed when the test ends.
func dial(t *testing.T, rawURL string) *amqp.Connection {
	t.Helper()
	return dialConfig(t, rawURL, amqp.Config{})
}

// dialConfig opens a connection with cfg; it is closed when the test ends.
func dialConfig(t *testing.T, rawURL string, cfg amqp.Config) *amqp.Connection {
	t.Helper()
	if cfg.Locale == "" {
		cfg.Locale = "en_US"
	}
	conn, err := amqp.DialConfig(rawURL, cfg)
	if err != nil {
		t.Fatalf("dial %s: %v", rawURL, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// mustChannel opens a channel on conn.
func mustChannel(t *testing.T, conn *amqp.Connection) *amqp.Channel {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("open channel: %v", err)
	}
	return ch
}

// checkFor polls cond until it holds, failing the test after timeout.
func checkFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	if !poll(timeout, cond) {
		t.Fatalf("condition not met within %v", timeout)
	}
}

// poll calls cond until it holds or timeout passes; it reports whether it
// held.
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond) // the poll interval, not a wait for an event
	}
	return true
}

// expectClose fails unless err is an AMQP exception with code. It returns
// the exception for further checks of its text.
func expectClose(t *testing.T, err error, code int) *amqp.Error {
	t.Helper()
	var ae *amqp.Error
	if !errors.As(err, &ae) {
		t.Fatalf("got error %v (%T), want an AMQP exception %d", err, err, code)
	}
	if ae.Code != code {
		t.Fatalf("got exception %d %q, want code %d", ae.Code, ae.Reason, code)
	}
	return ae
}

// expectCloseText is expectClose plus the exact reply text.
func expectCloseText(t *testing.T, err error, code int, text string) {
	t.Helper()
	ae := expectClose(t, err, code)
	if ae.Reason != text {
		t.Fatalf("exception %d text %q, want %q", code, ae.Reason, text)
	}
}

// waitClose waits for the exception delivered on a NotifyClose channel.
func waitClose(t *testing.T, c <-chan *amqp.Error) *amqp.Error {
	t.Helper()
	select {
	case err, ok := <-c:
		if !ok || err == nil {
			t.Fatal("closed without an exception")
		}
		return err
	case <-time.After(waitTimeout):
		t.Fatal("no close within the timeout")
	}
	return nil
}

// uniq returns a name unique to this test and run.
func uniq(t *testing.T, prefix string) string {
	base := strings.NewReplacer("/", ".", " ", "_").Replace(t.Name())
	return fmt.Sprintf("%s.%s.%s.%d", prefix, base, runID, nameSeq.Add(1))
}

// cleanupRef deletes queues and exchanges a test declared on the shared
// reference broker; an in-process Warren is discarded with the test anyway.
func cleanupRef(t *testing.T, b *servertest.Broker, queues, exchanges []string) {
	if b.Server != nil {
		return
	}
	t.Cleanup(func() {
		conn, err := amqp.Dial(b.URL)
		if err != nil {
			return
		}
		defer conn.Close()
		for _, q := range queues {
			if ch, err := conn.Channel(); err == nil {
				ch.QueueDelete(q, false, false, false)
				ch.Close()
			}
		}
		for _, x := range exchanges {
			if ch, err := conn.Channel(); err == nil {
				ch.ExchangeDelete(x, false, false)
				ch.Close()
			}
		}
	})
}

// declareQueue declares a plain queue with a unique name and returns it.
func declareQueue(t *testing.T, b *servertest.Broker, ch *amqp.Channel, args amqp.Table) string {
	t.Helper()
	name := uniq(t, "q")
	if _, err := ch.QueueDeclare(name, false, false, false, false, args); err != nil {
		t.Fatalf("declare queue: %v", err)
	}
	cleanupRef(t, b, []string{name}, nil)
	return name
}

// declareExchange declares a non-durable exchange with a unique name.
func declareExchange(t *testing.T, b *servertest.Broker, ch *amqp.Channel, kind string, args amqp.Table) string {
	t.Helper()
	name := uniq(t, "x")
	if err := ch.ExchangeDeclare(name, kind, false, false, false, false, args); err != nil {
		t.Fatalf("declare %s exchange: %v", kind, err)
	}
	cleanupRef(t, b, nil, []string{name})
	return name
}

// bindQueue binds q to exchange x with key.
func bindQueue(t *testing.T, ch *amqp.Channel, q, key, x string, args amqp.Table) {
	t.Helper()
	if err := ch.QueueBind(q, key, x, false, args); err != nil {
		t.Fatalf("bind %s to %s with %q: %v", q, x, key, err)
	}
}

// publish sends a message with body.
func publish(t *testing.T, ch *amqp.Channel, exchange, key, body string) {
	t.Helper()
	publishMsg(t, ch, exchange, key, amqp.Publishing{Body: []byte(body)})
}

func publishMsg(t *testing.T, ch *amqp.Channel, exchange, key string, p amqp.Publishing) {
	t.Helper()
	if err := ch.Publish(exchange, key, false, false, p); err != nil {
		t.Fatalf("publish to %q with %q: %v", exchange, key, err)
	}
}

// messageCount returns a queue's ready count from a passive declare, on a
// channel of its own so that a failure does not close the caller's.
func messageCount(t *testing.T, conn *amqp.Connection, q string) int {
	t.Helper()
	ch := mustChannel(t, conn)
	defer ch.Close()
	st, err := ch.QueueDeclarePassive(q, false, false, false, false, nil)
	if err != nil {
		t.Fatalf("passive declare %s: %v", q, err)
	}
	return st.Messages
}

// waitCount polls until q holds want ready messages (queues may take a
// moment to settle on another broker); it fails with the last count seen.
func waitCount(t *testing.T, conn *amqp.Connection, q string, want int) {
	t.Helper()
	var got int
	if !poll(waitTimeout, func() bool { got = messageCount(t, conn, q); return got == want }) {
		t.Fatalf("queue %s holds %d messages, want %d", q, got, want)
	}
}

// queueGone polls until a passive declare of q fails with 404. Another
// connection's exclusive queue answers 405 until that connection is gone.
func queueGone(t *testing.T, conn *amqp.Connection, q string) {
	t.Helper()
	checkFor(t, waitTimeout, func() bool {
		ch := mustChannel(t, conn)
		_, err := ch.QueueDeclarePassive(q, false, false, false, false, nil)
		if err == nil {
			ch.Close()
			return false
		}
		if e, ok := err.(*amqp.Error); ok && e.Code == amqp.ResourceLocked {
			return false
		}
		expectClose(t, err, amqp.NotFound)
		return true
	})
}

// exchangeGone polls until a passive declare of x fails with 404.
func exchangeGone(t *testing.T, conn *amqp.Connection, x string) {
	t.Helper()
	checkFor(t, waitTimeout, func() bool {
		ch := mustChannel(t, conn)
		err := ch.ExchangeDeclarePassive(x, "", false, false, false, false, nil)
		if err == nil {
			ch.Close()
			return false
		}
		expectClose(t, err, amqp.NotFound)
		return true
	})
}

// recv waits for the next delivery.
func recv(t *testing.T, msgs <-chan amqp.Delivery) amqp.Delivery {
	t.Helper()
	select {
	case d, ok := <-msgs:
		if !ok {
			t.Fatal("delivery channel closed")
		}
		return d
	case <-time.After(waitTimeout):
		t.Fatal("no delivery within the timeout")
	}
	return amqp.Delivery{}
}

// recvBodies waits for n deliveries and returns their bodies.
func recvBodies(t *testing.T, msgs <-chan amqp.Delivery, n int) []string {
	t.Helper()
	var out []string
	for range n {
		out = append(out, string(recv(t, msgs).Body))
	}
	return out
}

// expectNoBuffered fails if a delivery is already waiting in msgs.
func expectNoBuffered(t *testing.T, msgs <-chan amqp.Delivery) {
	t.Helper()
	select {
	case d := <-msgs:
		t.Fatalf("unexpected delivery %q", d.Body)
	default:
	}
}

// consume starts a consumer with a generated tag.
func consume(t *testing.T, ch *amqp.Channel, q string, autoAck bool) <-chan amqp.Delivery {
	t.Helper()
	msgs, err := ch.Consume(q, "", autoAck, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume %s: %v", q, err)
	}
	return msgs
}

// get does basic.get and fails on get-empty.
func get(t *testing.T, ch *amqp.Channel, q string, autoAck bool) amqp.Delivery {
	t.Helper()
	d, ok, err := ch.Get(q, autoAck)
	if err != nil {
		t.Fatalf("get %s: %v", q, err)
	}
	if !ok {
		t.Fatalf("get %s: empty", q)
	}
	return d
}

// drainBodies gets every message left in q (auto-ack) and returns the bodies.
func drainBodies(t *testing.T, ch *amqp.Channel, q string) []string {
	t.Helper()
	var out []string
	for {
		d, ok, err := ch.Get(q, true)
		if err != nil {
			t.Fatalf("get %s: %v", q, err)
		}
		if !ok {
			return out
		}
		out = append(out, string(d.Body))
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// confirmChannel opens a channel in confirm mode and returns its
// confirmations.
func confirmChannel(t *testing.T, conn *amqp.Connection, buffer int) (*amqp.Channel, chan amqp.Confirmation) {
	t.Helper()
	ch := mustChannel(t, conn)
	if err := ch.Confirm(false); err != nil {
		t.Fatalf("confirm.select: %v", err)
	}
	return ch, ch.NotifyPublish(make(chan amqp.Confirmation, buffer))
}

// waitConfirm waits for the next confirmation and fails on a nack.
func waitConfirm(t *testing.T, confirms <-chan amqp.Confirmation) amqp.Confirmation {
	t.Helper()
	select {
	case c := <-confirms:
		if !c.Ack {
			t.Fatalf("publish %d nacked", c.DeliveryTag)
		}
		return c
	case <-time.After(waitTimeout):
		t.Fatal("no confirm within the timeout")
	}
	return amqp.Confirmation{}
}

// rawDial connects with the raw client of rawclient_test.go, for what the
// client library hides (server-generated consumer tags, multiple=true
// confirms): logged in as guest, channel 1 open, content frames skipped.
func rawDial(t testing.TB, addr string) *rawClient {
	t.Helper()
	c := dialRaw(t, addr)
	openRaw(t, c)
	return c
}

// openRaw does rawDial's handshake and opens channel 1 on c.
func openRaw(t testing.TB, c *rawClient) {
	t.Helper()
	handshake(t, c)
	openChannel(t, c, 1)
	c.skipContent = true
}

// numberedQueue starts a broker with a fresh queue holding the messages
// "1" to "n", confirmed, and returns everything a test goes on with.
func numberedQueue(t *testing.T, n int) (*servertest.Broker, *amqp.Connection, *amqp.Channel, string, *publisher) {
	t.Helper()
	b := start(t)
	conn := dial(t, b.URL)
	ch := mustChannel(t, conn)
	q := declareQueue(t, b, ch, nil)
	p := newPublisher(t, conn)
	for i := 1; i <= n; i++ {
		p.body("", q, fmt.Sprint(i))
	}
	p.wait()
	return b, conn, ch, q, p
}

// publisher publishes on a confirm channel so that a test can wait until
// every message has been routed and enqueued before it looks at queues.
type publisher struct {
	t        *testing.T
	ch       *amqp.Channel
	confirms chan amqp.Confirmation
	pending  int
}

func newPublisher(t *testing.T, conn *amqp.Connection) *publisher {
	t.Helper()
	ch, confirms := confirmChannel(t, conn, 4096)
	return &publisher{t: t, ch: ch, confirms: confirms}
}

func (p *publisher) pub(exchange, key string, msg amqp.Publishing) {
	p.t.Helper()
	publishMsg(p.t, p.ch, exchange, key, msg)
	p.pending++
	if p.pending == cap(p.confirms) {
		p.wait()
	}
}

func (p *publisher) body(exchange, key, body string) {
	p.t.Helper()
	p.pub(exchange, key, amqp.Publishing{Body: []byte(body)})
}

// wait waits for every outstanding confirm.
func (p *publisher) wait() {
	p.t.Helper()
	for ; p.pending > 0; p.pending-- {
		waitConfirm(p.t, p.confirms)
	}
}
