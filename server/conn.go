package server

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warrenmq/warren/internal/wire"
)

// connState is where a connection is in the handshake (§2.2.4 of the
// spec): each state accepts one method on channel 0.
type connState uint8

const (
	awaitStartOk connState = iota
	awaitTuneOk
	awaitOpen
	opened
)

// conn is one client connection. Its reader goroutine (serve, then the
// goroutine serve hands over to once the connection is open) owns every
// field but out and the atomics, and all channel state above channel.mu.
type conn struct {
	srv *Server
	nc  net.Conn
	id  uint64
	log *slog.Logger
	out *outbox
	br  *connReader
	r   *wire.Reader
	dec *wire.Decoder

	state           connState
	vh              *vhost
	user            string
	clientProps     wire.Table
	capCancelNotify bool
	capAuthClose    bool
	capBlocked      bool // the client takes connection.blocked and connection.unblocked
	frameMax        uint32
	channelMax      uint16
	heartbeat       atomic.Int64 // negotiated interval in ns; read by the management API
	// channels is written by the reader only, under chanMu; the reader
	// reads it without the lock, other goroutines (the management API)
	// under it.
	channels        map[uint16]*channel
	chanMu          sync.Mutex
	stats           connStats
	connectedAt     time.Time // set before isOpen
	exclusiveQueues []*queueRec
	confirmsDue     []*channel // channels with settled confirms not yet sent
	lastDeadline    time.Time
	flowWait        <-chan struct{} // a queue this connection published to is over: wait before reading on
	inFlow          atomic.Bool     // the reader is waiting on flowWait; read by the management API
	blockOnAlarm    bool            // a basic.publish came during a resource alarm: wait before reading on
	blocked         atomic.Bool     // the reader is waiting for the resource alarms to clear; read by the management API
	closing         chan struct{}   // closed by closeAsync: ends a wait for the resource alarms

	isOpen      atomic.Bool // connection.open done; read by Shutdown
	timedOut    atomic.Bool // a channel was timed out: the reader closes it (consumertimeout.go)
	closeSent   atomic.Bool // connection.close sent; only close-ok matters now
	closeOkSent bool        // the client closed: it closes the socket
}

// serve runs the connection's reader through the handshake, and hands it
// to a new goroutine once the connection is open (see below).
func (c *conn) serve() {
	start := time.Now()
	c.nc.SetDeadline(start.Add(c.srv.opts.HandshakeTimeout))
	// RabbitMQ takes the AMQP 0-9 header for 0-9-1 and answers it with
	// connection.start, as here.
	var h [8]byte
	_, err := io.ReadFull(c.br, h[:])
	if err == nil && string(h[:]) != amqp09Header {
		err = wire.ReadProtocolHeader(bytes.NewReader(h[:]))
	}
	if err != nil {
		if errors.Is(err, wire.ErrBadProtocolHeader) {
			c.nc.Write(wire.ProtocolHeader)
		}
		c.nc.Close()
		c.srv.forget(c)
		return
	}
	c.r.SetMaxFrameSize(withFrameFudge(wire.FrameMinSize))
	c.sendStart()
	if err = c.readLoop(true); err != errOpened {
		c.finish(start, err)
		return
	}
	// The handshake (tables, logging) grew this goroutine's stack to 8 KiB,
	// four times what waiting for the next frame needs, and the runtime
	// does not shrink it back (forced GCs leave it): 10,000 idle
	// connections kept 60 MB of it. A new goroutine starts at the smallest
	// stack and grows only as far as the connection's traffic takes it.
	c.srv.startGoroutine(func() { c.finish(start, c.readLoop(false)) })
}

// errOpened ends the handshake's readLoop.
var errOpened = errors.New("connection opened")

// finish tears the connection down once its readLoop has ended with err.
func (c *conn) finish(start time.Time, err error) {
	defer c.srv.forget(c)
	c.teardown()
	if c.state == opened {
		c.log.Info("connection closed", "user", c.user, "duration", time.Since(start).Round(time.Millisecond), "reason", errString(err))
	} else if err != nil {
		c.log.Info("handshake failed", "reason", errString(err))
	}
}

func errString(err error) string {
	if err == nil {
		return "client closed"
	}
	return err.Error()
}

func (c *conn) heartbeatInterval() time.Duration { return time.Duration(c.heartbeat.Load()) }

// amqp09Header is the AMQP 0-9 protocol header.
const amqp09Header = "AMQP\x01\x01\x00\x09"

// withFrameFudge is the largest frame accepted under frame_max n: RabbitMQ
// takes a payload of up to frame_max bytes (its FRAME_SIZE_FUDGE), 8 more
// than frame_max allows, for clients that do not count the frame overhead.
func withFrameFudge(n uint32) uint32 {
	const fudge = 8
	if n > math.MaxUint32-fudge {
		return math.MaxUint32
	}
	return n + fudge
}

// maxFlowPause bounds one wait of a publishing connection on a queue whose
// consumers have fallen behind; the reader then goes on for a frame and
// waits again if the queue is still over. The bound keeps a connection
// that is itself a slow consumer (of another queue) or that is being
// closed from waiting long.
const maxFlowPause = time.Second

// throttle makes the connection wait, before it reads on, for r's
// consumers to catch up: unless it consumes from r itself, when waiting
// could keep its own acks from being read.
func (c *conn) throttle(r *queueRec) {
	for _, ch := range c.channels {
		ch.mu.Lock()
		for _, cs := range ch.consumers {
			if cs.rec == r {
				ch.mu.Unlock()
				return
			}
		}
		ch.mu.Unlock()
	}
	c.flowWait = r.q.Throttle()
}

// waitFlow is publisher flow control: the reader stops reading, so TCP
// holds the publisher back, until the queue it published to is no longer
// over (see queue.Queue.Throttle) or the store has caught up
// (store.Store.Throttle), at most maxFlowPause. RabbitMQ's credit
// flow does the same, with the connection shown in state "flow".
func (c *conn) waitFlow() {
	f := c.flowWait
	c.flowWait = nil
	c.flushConfirms() // what is already confirmed need not wait too
	c.inFlow.Store(true)
	t := time.NewTimer(maxFlowPause)
	select {
	case <-f:
	case <-t.C:
	case <-c.closing:
	}
	t.Stop()
	c.inFlow.Store(false)
}

// silentError is an exception RabbitMQ answers by closing the socket
// without connection.close (see readLoop).
type silentError struct{ error }

// readLoop reads and handles frames until the connection is closed, or
// with handshake set until connection.open is done (errOpened); it returns
// why.
func (c *conn) readLoop(handshake bool) error {
	for {
		if c.br.Buffered() == 0 {
			c.flushConfirms() // the burst is over: send its confirms together
		}
		if c.flowWait != nil {
			c.waitFlow()
		}
		if c.blockOnAlarm {
			c.waitAlarms()
		}
		if c.timedOut.Load() {
			c.closeTimedOut()
		}
		c.armReadDeadline()
		f, err := c.r.ReadFrame()
		if err != nil {
			var we *wire.Error
			if errors.As(err, &we) && !c.closeSent.Load() {
				if c.state < awaitOpen {
					return err // no connection.close before tune-ok, below
				}
				c.closeConnection(asAMQPError(err, nil))
				continue
			}
			if c.closeSent.Load() {
				return nil
			}
			return err
		}
		done, err := c.handleFrame(f)
		if err != nil {
			// RabbitMQ closes the socket without connection.close before
			// tune-ok (a refused login has sent its own close, if the
			// client asked for one) and for a method it cannot parse.
			var se silentError
			if c.state < awaitOpen || errors.As(err, &se) {
				return err
			}
			c.closeConnection(asAMQPError(err, nil))
			continue
		}
		if done {
			return nil
		}
		if handshake && c.state == opened {
			return errOpened
		}
	}
}

// armReadDeadline detects a silent peer: two missed heartbeats, as RabbitMQ.
func (c *conn) armReadDeadline() {
	if c.state != opened || c.closeSent.Load() {
		return
	}
	hb := c.heartbeatInterval()
	if hb <= 0 {
		if !c.lastDeadline.IsZero() {
			c.nc.SetReadDeadline(time.Time{})
			c.lastDeadline = time.Time{}
		}
		return
	}
	now := time.Now()
	if now.Sub(c.lastDeadline) < time.Second {
		return // keep the deadline syscall-free on the hot path
	}
	c.lastDeadline = now
	c.nc.SetReadDeadline(now.Add(2 * hb))
}

// handleFrame handles one frame; done means the connection has ended
// cleanly. A returned error is a connection exception.
func (c *conn) handleFrame(f wire.Frame) (done bool, err error) {
	switch f.Type {
	case wire.FrameHeartbeat:
		if len(f.Payload) != 0 {
			return false, errorf(wire.FrameError, "heartbeat frame with a %d-byte payload", len(f.Payload))
		}
		if f.Channel != 0 {
			return false, errorf(wire.UnexpectedFrame, "heartbeat frame on channel %d", f.Channel)
		}
		return false, nil
	case wire.FrameMethod:
		m, err := c.dec.DecodeMethod(f.Payload)
		if err != nil {
			if c.closeSent.Load() {
				return false, nil // §2.3.7: after close, drop everything else
			}
			return false, c.decodeError(f.Channel, err)
		}
		if c.closeSent.Load() {
			switch m.(type) {
			case *wire.ConnectionCloseOk:
				return true, nil
			case *wire.ConnectionClose:
				c.out.sendMethod(0, &wire.ConnectionCloseOk{})
				c.closeOkSent = true
				return true, nil
			}
			return false, nil // §2.3.7: after close, drop everything else
		}
		if f.Channel == 0 {
			done, err := c.handleConnectionMethod(m)
			if err != nil {
				err = asAMQPError(err, m)
			}
			return done, err
		}
		if c.state != opened {
			return false, errorf(wire.UnexpectedFrame, "expected 'connection.%s', got '%s' on channel %d", c.expected(), m.MethodName(), f.Channel)
		}
		return false, c.channelMethod(f.Channel, m)
	case wire.FrameHeader, wire.FrameBody:
		if c.closeSent.Load() {
			return false, nil
		}
		if f.Channel == 0 || c.state != opened {
			return false, errorf(wire.UnexpectedFrame, "expected method frame, got non method frame instead on channel %d", f.Channel)
		}
		ch := c.channels[f.Channel]
		if ch == nil {
			// RabbitMQ makes the channel, whose first frame is not a method
			return false, errorf(wire.UnexpectedFrame, "expected method frame, got non method frame instead")
		}
		if ch.closing {
			return false, nil
		}
		if ch.awaitCommit(); c.closeSent.Load() {
			return false, nil // the commit failed: the connection is closing
		}
		return false, c.channelException(ch, ch.contentFrame(f), nil)
	}
	return false, errorf(wire.FrameError, "unknown frame type %d", f.Type)
}

// decodeError answers a method frame DecodeMethod rejected as RabbitMQ
// does: arguments it cannot decode are 501 FRAME_ERROR on a channel, 541
// INTERNAL_ERROR on channel 0 and, before connection.open, a silent close;
// a payload too short for the ids is 501. Unknown class or method ids
// crash RabbitMQ's reader, which drops the socket without a close; Warren
// answers 503 COMMAND_INVALID instead, since bad input always gets a
// close once the connection is open.
func (c *conn) decodeError(channel uint16, err error) error {
	var we *wire.Error
	if !errors.As(err, &we) || we.Code == wire.FrameError {
		return err
	}
	switch {
	case channel == 0 && c.state != opened:
		return silentError{err}
	case we.Code != wire.SyntaxError: // CommandInvalid: unknown ids
		return err
	case channel == 0:
		return errorf(wire.InternalError, "cannot decode %s", we.Text)
	}
	ae := errorf(wire.FrameError, "cannot decode: %s", we.Text)
	ae.classID, ae.methodID = we.ClassID, we.MethodID
	return ae
}

func (c *conn) expected() string {
	switch c.state {
	case awaitStartOk:
		return "start_ok"
	case awaitTuneOk:
		return "tune_ok"
	default:
		return "open"
	}
}

// stateName is the connection state as RabbitMQ names it in errors.
func (c *conn) stateName() string {
	switch c.state {
	case awaitStartOk:
		return "starting"
	case awaitTuneOk:
		return "tuning"
	case awaitOpen:
		return "opening"
	}
	return "running"
}

// serverProperties are sent in connection.start.
func serverProperties() wire.Table {
	return wire.Table{
		"product":      "Warren",
		"version":      Version,
		"platform":     "Go " + runtime.Version(),
		"copyright":    "The Warren authors",
		"information":  "Warren, an AMQP 0-9-1 message broker",
		"cluster_name": "warren",
		"capabilities": wire.Table{
			"publisher_confirms":           true,
			"exchange_exchange_bindings":   true,
			"basic.nack":                   true,
			"consumer_cancel_notify":       true,
			"connection.blocked":           true,
			"consumer_priorities":          true,
			"authentication_failure_close": true,
			"per_consumer_qos":             true,
			"direct_reply_to":              true,
		},
	}
}

func (c *conn) sendStart() {
	c.out.sendMethod(0, &wire.ConnectionStart{
		VersionMajor: 0, VersionMinor: 9,
		ServerProperties: serverProperties(),
		Mechanisms:       "PLAIN AMQPLAIN",
		Locales:          "en_US",
	})
}

// handleConnectionMethod handles a method on channel 0.
func (c *conn) handleConnectionMethod(m wire.Method) (bool, error) {
	switch m := m.(type) {
	case *wire.ConnectionStartOk:
		if c.state != awaitStartOk {
			break
		}
		return false, c.startOk(m)
	case *wire.ConnectionTuneOk:
		if c.state != awaitTuneOk {
			break
		}
		return false, c.tuneOk(m)
	case *wire.ConnectionOpen:
		if c.state != awaitOpen {
			break
		}
		if m.VirtualHost != "/" {
			return false, errorf(wire.NotAllowed, "vhost %s not found", m.VirtualHost)
		}
		c.vh = c.srv.vhost
		c.state = opened
		c.connectedAt = time.Now()
		c.vh.stats.connectionsOpened.Add(1)
		c.isOpen.Store(true)
		c.nc.SetDeadline(time.Time{})
		c.lastDeadline = time.Time{}
		c.out.sendMethod(0, &wire.ConnectionOpenOk{})
		c.log = c.log.With("user", c.user)
		c.log.Info("connection opened", "client", clientName(c.clientProps))
		return false, nil
	case *wire.ConnectionClose:
		if c.state != opened {
			break
		}
		c.out.sendMethod(0, &wire.ConnectionCloseOk{})
		c.closeOkSent = true
		return true, nil
	case *wire.ConnectionUpdateSecret:
		if c.state != opened {
			break
		}
		// RabbitMQ takes a new secret (an OAuth token) for the connection;
		// PLAIN logins have nothing to refresh.
		c.out.sendMethod(0, &wire.ConnectionUpdateSecretOk{})
		return false, nil
	}
	// RabbitMQ refuses any other method on channel 0, an unsolicited
	// close-ok and connection.blocked included, with CHANNEL_ERROR (a
	// silent close before tune-ok: see readLoop).
	return false, errorf(wire.ChannelError, "unexpected method in connection state %s", c.stateName())
}

func clientName(props wire.Table) string {
	var parts []string
	for _, k := range []string{"product", "version", "connection_name"} {
		if s, ok := props[k].(string); ok && s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, " ")
}

func (c *conn) startOk(m *wire.ConnectionStartOk) error {
	c.clientProps = m.ClientProperties
	if caps, ok := m.ClientProperties["capabilities"].(wire.Table); ok {
		c.capCancelNotify, _ = caps["consumer_cancel_notify"].(bool)
		c.capAuthClose, _ = caps["authentication_failure_close"].(bool)
		c.capBlocked, _ = caps["connection.blocked"].(bool)
	}
	user, pass, err := parseCredentials(m.Mechanism, m.Response)
	if err != nil {
		return err
	}
	refused := func(reason string) error {
		c.log.Warn("login refused", "user", user, "mechanism", m.Mechanism, "reason", reason)
		ae := errorf(wire.AccessRefused, "Login was refused using authentication mechanism %s. For details see the broker logfile.", m.Mechanism)
		if c.capAuthClose {
			c.out.sendMethod(0, &wire.ConnectionClose{ReplyCode: ae.code, ReplyText: ae.text})
		}
		return ae
	}
	want, known := c.srv.opts.Users[user]
	if !known || want != pass {
		return refused("invalid credentials")
	}
	if c.srv.loopbackOnly(user) && !isLoopback(c.nc.RemoteAddr()) {
		return refused("user can only connect via localhost")
	}
	c.user = user
	c.state = awaitTuneOk
	c.out.sendMethod(0, &wire.ConnectionTune{
		ChannelMax: c.srv.opts.ChannelMax,
		FrameMax:   c.srv.opts.FrameMax,
		Heartbeat:  uint16(c.srv.opts.Heartbeat / time.Second),
	})
	return nil
}

// parseCredentials reads a PLAIN or AMQPLAIN response.
func parseCredentials(mechanism, response string) (user, pass string, err error) {
	switch mechanism {
	case "PLAIN":
		// [authzid] NUL authcid NUL passwd
		parts := strings.Split(response, "\x00")
		if len(parts) != 3 {
			return "", "", errorf(wire.AccessRefused, "Login was refused using authentication mechanism PLAIN. For details see the broker logfile.")
		}
		return parts[1], parts[2], nil
	case "AMQPLAIN":
		// a field table without its length prefix
		b := make([]byte, 4, 4+len(response))
		b[0], b[1], b[2], b[3] = byte(len(response)>>24), byte(len(response)>>16), byte(len(response)>>8), byte(len(response))
		t, _, terr := wire.ReadTable(append(b, response...))
		if terr != nil {
			return "", "", errorf(wire.AccessRefused, "Login was refused using authentication mechanism AMQPLAIN. For details see the broker logfile.")
		}
		user, _ = t["LOGIN"].(string)
		pass, _ = t["PASSWORD"].(string)
		return user, pass, nil
	}
	return "", "", errorf(wire.CommandInvalid, "unknown authentication mechanism '%s'", mechanism)
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

func (c *conn) tuneOk(m *wire.ConnectionTuneOk) error {
	o := c.srv.opts
	switch {
	case m.FrameMax != 0 && m.FrameMax < wire.FrameMinSize:
		return errorf(wire.NotAllowed, "frame_max=%d < %d min size", m.FrameMax, wire.FrameMinSize)
	// As RabbitMQ, 0 ("no limit") is above a server maximum.
	case o.FrameMax != 0 && (m.FrameMax == 0 || m.FrameMax > o.FrameMax):
		return errorf(wire.NotAllowed, "frame_max=%d > %d max size", m.FrameMax, o.FrameMax)
	case o.ChannelMax != 0 && (m.ChannelMax == 0 || m.ChannelMax > o.ChannelMax):
		return errorf(wire.NotAllowed, "channel_max=%d > %d max size", m.ChannelMax, o.ChannelMax)
	}
	c.frameMax = m.FrameMax
	if c.frameMax == 0 {
		c.frameMax = o.FrameMax
	}
	c.channelMax = m.ChannelMax
	if c.channelMax == 0 {
		c.channelMax = o.ChannelMax
	}
	hb := time.Duration(m.Heartbeat) * time.Second
	c.heartbeat.Store(int64(hb))
	c.out.setHeartbeat(hb)
	c.r.SetMaxFrameSize(withFrameFudge(c.frameMax))
	c.out.mu.Lock()
	c.out.frameMax = c.frameMax
	c.out.mu.Unlock()
	c.state = awaitOpen
	return nil
}

// closeConnection sends connection.close for a hard error and waits (in
// the read loop) for close-ok, at most CloseTimeout.
func (c *conn) closeConnection(ae *amqpError) {
	if !c.closeSent.CompareAndSwap(false, true) {
		return
	}
	c.log.Warn("closing connection on error", "code", ae.code, "text", ae.text)
	for _, ch := range c.channels {
		ch.shutdown()
	}
	c.out.sendMethod(0, &wire.ConnectionClose{ReplyCode: ae.code, ReplyText: ae.text, FailingClassID: ae.classID, FailingMethodID: ae.methodID})
	c.nc.SetReadDeadline(time.Now().Add(c.srv.opts.CloseTimeout))
}

// forceClose is called by Shutdown from another goroutine.
func (c *conn) forceClose(text string) {
	c.closeAsync(errorf(wire.ConnectionForced, "%s", text))
}

// closeAsync sends connection.close for a hard error found outside the
// reader; the reader then waits for close-ok, at most CloseTimeout.
func (c *conn) closeAsync(ae *amqpError) {
	if !c.closeSent.CompareAndSwap(false, true) {
		return
	}
	close(c.closing)
	c.out.sendMethod(0, &wire.ConnectionClose{ReplyCode: ae.code, ReplyText: ae.text, FailingClassID: ae.classID, FailingMethodID: ae.methodID})
	c.nc.SetReadDeadline(time.Now().Add(c.srv.opts.CloseTimeout))
}

// dropChannel forgets a closed channel.
func (c *conn) dropChannel(id uint16) {
	c.chanMu.Lock()
	delete(c.channels, id)
	c.chanMu.Unlock()
	c.srv.vhost.stats.channelsClosed.Add(1)
}

// teardown releases everything the connection held.
func (c *conn) teardown() {
	for id, ch := range c.channels {
		ch.shutdown()
		c.dropChannel(id)
	}
	if c.state == opened {
		c.vh.stats.connectionsClosed.Add(1)
	}
	if c.vh != nil {
		c.vh.dropExclusive(c)
	}
	if c.closeOkSent {
		c.awaitPeerClose()
	}
	c.out.close()
}

// awaitPeerClose lets the client close the socket after close-ok, as
// RabbitMQ does, for at most CloseTimeout. Closing first races close-ok
// with EOF, and a client that reads EOF first (amqp091-go) reports its own
// clean close as an error to its NotifyClose listeners.
func (c *conn) awaitPeerClose() {
	c.closeSent.Store(true) // Shutdown must not send close after close-ok
	c.nc.SetReadDeadline(time.Now().Add(c.srv.opts.CloseTimeout))
	io.Copy(io.Discard, c.br)
}

// channelMethod routes a method to its channel, handling open and close.
func (c *conn) channelMethod(id uint16, m wire.Method) error {
	ch := c.channels[id]
	if ch == nil {
		// RabbitMQ bounds the number of channels, not their ids.
		if len(c.channels) >= int(c.channelMax) {
			return errorf(wire.NotAllowed, "number of channels opened (%d) has reached the negotiated channel_max (%d)", len(c.channels), c.channelMax)
		}
		if _, ok := m.(*wire.ChannelOpen); !ok {
			return asAMQPError(errorf(wire.ChannelError, "expected 'channel.open'"), m)
		}
		c.chanMu.Lock()
		c.channels[id] = newChannel(c, id)
		c.chanMu.Unlock()
		c.srv.vhost.stats.channelsOpened.Add(1)
		c.out.sendMethod(id, &wire.ChannelOpenOk{})
		return nil
	}
	if ch.awaitCommit(); c.closeSent.Load() {
		return nil // the commit failed: the connection is closing
	}
	if ch.timedOut.Load() && !ch.closing {
		c.closeChannel(ch, ch.timeoutError()) // then m is dropped, below
	}
	if ch.closing {
		switch m.(type) {
		case *wire.ChannelCloseOk:
			c.dropChannel(id)
		case *wire.ChannelClose:
			c.out.sendMethod(id, &wire.ChannelCloseOk{})
		case *wire.ChannelOpen:
			return asAMQPError(errorf(wire.ChannelError, "second 'channel.open' seen"), m)
		}
		return nil // dropped until close-ok (§2.3.7)
	}
	if ch.content.active {
		return ch.content.unexpected()
	}
	if _, ok := m.(*wire.BasicPublish); !ok && m.HasContent() {
		// basic.deliver, get-ok, return: RabbitMQ takes their content in,
		// then refuses them (contentFrame).
		ch.content = contentState{active: true, methodID: m.MethodID()}
		return nil
	}
	return c.channelException(ch, ch.handle(m), m)
}

// channelException closes the channel for a soft error and returns a hard
// one, for the caller to close the connection.
func (c *conn) channelException(ch *channel, err error, m wire.Method) error {
	if err == nil {
		return nil
	}
	ae := asAMQPError(err, m)
	if wire.IsHardError(ae.code) {
		return ae
	}
	c.closeChannel(ch, ae)
	return nil
}

// closeChannel sends channel.close for a soft error.
func (c *conn) closeChannel(ch *channel, ae *amqpError) {
	ch.shutdown()
	ch.closing = true
	c.out.sendMethod(ch.id, &wire.ChannelClose{ReplyCode: ae.code, ReplyText: ae.text, FailingClassID: ae.classID, FailingMethodID: ae.methodID})
}

// flushConfirms sends the confirms settled during the last burst.
func (c *conn) flushConfirms() {
	if len(c.confirmsDue) == 0 {
		return
	}
	for _, ch := range c.confirmsDue {
		if ch.confirm != nil && !ch.closing {
			ch.emitConfirms()
		}
	}
	clear(c.confirmsDue)
	c.confirmsDue = c.confirmsDue[:0]
}
