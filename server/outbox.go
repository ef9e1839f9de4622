package server

import (
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warrenmq/warren/internal/rawsock"
	"github.com/warrenmq/warren/internal/wire"
	"github.com/warrenmq/warren/queue"
)

// Flow-control thresholds for a connection's pending output: past
// highWater, deliveries are refused (the queue waits); once the writer has
// drained below lowWater, the refused queues are kicked.
const (
	highWater = 1 << 20
	lowWater  = 256 << 10
)

// sealAt is the most bytes buf holds before it is sealed (sealLocked):
// moved to segs as it is, and a new buf started for what follows. It is
// well above highWater, so that a consumer's buf, which deliveries fill
// only to highWater, is reused and not sealed: at 1 MiB, 16 B messages
// with autoack sealed it many times a second, and made garbage.
const sealAt = 4 * highWater

// refMin is the smallest body the outbox sends from where it lies instead
// of copying it into buf (the writer writes both with one writev).
const refMin = 16 << 10

// writerLinger is how long the writer goroutine stays after its last
// write. It then exits, and the next frame queued starts a new one: an
// idle connection keeps no writer and its stack (10,000 idle connections
// kept 35 MB of them), while a busy one keeps its writer.
const writerLinger = time.Second

// outbox is the write side of a connection. Any goroutine appends whole
// frames to buf under mu; the writer goroutine swaps buf out and writes it
// to the socket, so a burst of frames costs one write. Large bodies are
// not copied: buf is cut around them (segs) and they are written from the
// message. The writer runs only while there is writing to do (see
// writerLinger); heartbeats are queued by a timer (beat).
type outbox struct {
	nc net.Conn
	// rw writes to nc's socket, for the writer and writeNow; nil if nc
	// is not one (the writer then uses nc.Write).
	rw    *rawsock.Writer
	wake  chan struct{} // cap 1: there is something to write
	spawn func(func())  // starts the writer goroutine
	// linger is how long an idle writer stays: writerLinger, shorter in
	// tests.
	linger time.Duration
	// running is set while a writer goroutine runs, or is being started;
	// it is written under mu and read without it by signal.
	running atomic.Bool
	// gone is closed once the writer has closed the socket (asked to, or
	// after a failed write: the peer is gone). A reader that is not
	// reading (held by a resource alarm) learns of a dead peer from it.
	gone chan struct{}

	mu      sync.Mutex // guards the fields below
	buf     []byte     // frames waiting for the writer
	closing bool       // write what is pending, then close the socket
	closed  bool       // the writer has closed the socket; appends are dropped
	// lastWrite is when frames last went out; hbTimer calls beat (nil:
	// no heartbeats).
	lastWrite time.Time
	hbTimer   *time.Timer
	// writing is set while the writer has taken buf and writes it, so
	// that writeNow does not write past it.
	writing bool
	// segs is what goes out before buf[cut:], in order: the parts of buf
	// before each body of refMin bytes or more, the body, and sealed
	// bufs. refBytes is the bytes of segs that len(buf) does not count:
	// those bodies and the sealed bufs.
	segs     net.Buffers
	cut      int
	refBytes int
	// connClosed is set once connection.close is queued: nothing may
	// follow it on a channel (a confirm from the commit loop, a delivery).
	connClosed bool
	kicks      []*queue.Queue
	deliver    wire.BasicDeliver // scratch for appendDelivery
	frameMax   uint32
}

// newOutbox returns nc's outbox; spawn starts its writer goroutine when
// there is something to write.
func newOutbox(nc net.Conn, spawn func(func())) *outbox {
	return &outbox{nc: nc, rw: rawsock.NewWriter(nc), wake: make(chan struct{}, 1), gone: make(chan struct{}), spawn: spawn, linger: writerLinger, frameMax: wire.FrameMinSize}
}

// writeNow writes the pending frames from the calling goroutine with one
// non-blocking write, saving the writer's wake-up, unless the writer is
// writing or segs is not empty (bodies queued by reference, sealed
// bufs); whatever does not go out is left to the writer. The write is
// made under mu, so nothing is queued meanwhile; it takes microseconds,
// as it never waits for the socket. The commit loop uses it for the
// confirms and commit-oks of a batch, which a client waits for.
func (o *outbox) writeNow() {
	o.mu.Lock()
	if o.rw == nil || o.writing || o.closing || o.closed || len(o.buf) == 0 || len(o.segs) > 0 {
		o.mu.Unlock()
		o.signal()
		return
	}
	n := o.rw.TryWrite(o.buf) // (the writer is not writing: see writing)
	if n > 0 {
		o.lastWrite = time.Now()
	}
	o.buf = o.buf[:copy(o.buf, o.buf[n:])]
	more := len(o.buf) > 0 || len(o.kicks) > 0
	o.mu.Unlock()
	if more {
		o.signal()
	}
}

// signal wakes the writer, or starts one.
func (o *outbox) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
	if !o.running.Load() {
		o.startWriter()
	}
}

// idleLocked reports that the writer has nothing to do: nothing to
// write or kick, and the socket is not to be closed.
func (o *outbox) idleLocked() bool {
	return len(o.buf) == 0 && len(o.segs) == 0 && len(o.kicks) == 0 && !o.closing
}

// startWriter starts a writer if it has something to do, unless one runs
// or the socket is closed. The writer is started under mu, so that it is
// counted (Server's WaitGroup) before close can let the connection's
// reader end.
func (o *outbox) startWriter() {
	o.mu.Lock()
	if !o.idleLocked() && !o.running.Load() && !o.closed {
		o.running.Store(true)
		o.spawn(o.run)
	}
	o.mu.Unlock()
}

// setHeartbeat makes the outbox send a heartbeat whenever nothing has been
// written for half of d, as RabbitMQ does; d <= 0 sends none. It is
// called once, at tune-ok.
func (o *outbox) setHeartbeat(d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if d <= 0 || o.closing || o.closed {
		return
	}
	half := d / 2
	o.hbTimer = time.AfterFunc(half, func() { o.beat(half) })
}

// beat runs on hbTimer: it queues a heartbeat if nothing has been written
// for half the interval, and sets the timer for the next check.
func (o *outbox) beat(half time.Duration) {
	o.mu.Lock()
	if o.closing || o.closed {
		o.mu.Unlock()
		return
	}
	if idle := time.Since(o.lastWrite); idle < half {
		o.hbTimer.Reset(half - idle)
		o.mu.Unlock()
		return
	}
	if len(o.buf) == 0 {
		o.buf = wire.AppendHeartbeat(o.buf)
	}
	o.hbTimer.Reset(half)
	o.mu.Unlock()
	o.signal()
}

// sendMethod queues one method frame.
func (o *outbox) sendMethod(channel uint16, m wire.Method) {
	o.mu.Lock()
	o.appendMethodLocked(channel, m)
	o.mu.Unlock()
	o.signal()
}

// queueMethod queues one method frame without waking the writer: the
// caller signals, or calls writeNow, once it has queued the rest.
func (o *outbox) queueMethod(channel uint16, m wire.Method) {
	o.mu.Lock()
	o.appendMethodLocked(channel, m)
	o.mu.Unlock()
}

// appendMethodLocked queues a method frame; false if it could not be
// encoded (a string too long for a shortstr), and then the content that
// would follow it must not be sent either.
func (o *outbox) appendMethodLocked(channel uint16, m wire.Method) bool {
	// After connection.close, only its close-ok (§2.3.7).
	if o.closed || o.connClosed && (channel != 0 || !isCloseOk(m)) {
		return false
	}
	switch m.(type) {
	case *wire.ConnectionClose, *wire.ConnectionCloseOk:
		o.connClosed = true
	}
	o.sealLocked()
	b, err := wire.AppendMethodFrame(o.buf, channel, m)
	if err != nil {
		return false
	}
	o.buf = b
	return true
}

func isCloseOk(m wire.Method) bool {
	_, ok := m.(*wire.ConnectionCloseOk)
	return ok
}

// appendContentLocked queues a content header and body frames.
func (o *outbox) appendContentLocked(channel uint16, m *queue.Message) {
	if o.closed || o.connClosed {
		return
	}
	o.buf = wire.AppendHeaderFrame(o.buf, channel, wire.ClassBasic, uint64(len(m.Body)), m.Props)
	if len(m.Body) < refMin {
		o.buf = wire.AppendBodyFrames(o.buf, channel, m.Body, o.frameMax)
		return
	}
	chunk := wire.BodyChunk(o.frameMax)
	for body := m.Body; len(body) > 0; {
		n := min(len(body), chunk)
		o.buf = wire.AppendBodyFrameHeader(o.buf, channel, n)
		o.segs = append(o.segs, o.buf[o.cut:], body[:n])
		o.refBytes += n
		o.cut = len(o.buf)
		o.buf = append(o.buf, wire.FrameEnd)
		body = body[n:]
	}
}

// sealLocked moves buf to segs once it holds sealAt bytes, and starts a
// new one. appendMethodLocked calls it: content follows its method, so buf
// passes sealAt by at most one message's frames. Deliveries stop at highWater, but returns, confirms and
// replies to a client that does not read its socket are queued without
// bound (the memory alarm bounds them), and one buf growing for them
// would copy all it holds into a larger array at each growth and leave
// the old one as garbage: a process three times the size of what is
// queued, and a copy of hundreds of megabytes that holds up the garbage
// collector.
func (o *outbox) sealLocked() {
	if len(o.buf) < sealAt {
		return
	}
	o.segs = append(o.segs, o.buf[o.cut:])
	o.refBytes += len(o.buf)
	o.buf, o.cut = make([]byte, 0, sealAt+sealAt/8), 0
}

// pendingLocked is the number of bytes waiting for the writer.
func (o *outbox) pendingLocked() int { return len(o.buf) + o.refBytes }

// takeLocked takes what is waiting, leaving buf and segs empty on the
// spares given.
func (o *outbox) takeLocked(spare []byte, spareSegs net.Buffers) (out []byte, segs net.Buffers, cut int) {
	out, segs, cut = o.buf, o.segs, o.cut
	o.buf, o.segs, o.cut, o.refBytes = spare[:0], spareSegs[:0], 0, 0
	return out, segs, cut
}

// writeOut writes what takeLocked took, and returns segs emptied for
// reuse.
func (o *outbox) writeOut(out []byte, segs net.Buffers, cut int) (net.Buffers, error) {
	if len(segs) == 0 {
		var err error
		if len(out) > 0 {
			if o.rw != nil {
				_, err = o.rw.Write(out)
			} else {
				_, err = o.nc.Write(out)
			}
		}
		return segs, err
	}
	segs = append(segs, out[cut:])
	bufs := segs // WriteTo consumes bufs
	_, err := bufs.WriteTo(o.nc)
	clear(segs) // let the bodies go
	return segs[:0], err
}

// sendContent queues a content-bearing method (basic.return, get-ok) with
// its message, as one unit.
func (o *outbox) sendContent(channel uint16, method wire.Method, m *queue.Message) {
	o.mu.Lock()
	if o.appendMethodLocked(channel, method) {
		o.appendContentLocked(channel, m)
	}
	o.mu.Unlock()
	o.signal()
}

// appendDelivery queues basic.deliver plus content unless the connection is
// over its high-water mark; then it records q to be kicked later and
// returns false. A delivery with no queue (a direct reply) is not held
// back.
func (o *outbox) appendDelivery(channel uint16, q *queue.Queue, consumerTag string, tag uint64, e queue.Entry) bool {
	o.mu.Lock()
	if o.closed || o.connClosed {
		o.mu.Unlock()
		return false
	}
	if q != nil && o.pendingLocked() > highWater {
		if !slices.Contains(o.kicks, q) {
			o.kicks = append(o.kicks, q)
		}
		o.mu.Unlock()
		o.signal()
		return false
	}
	d := &o.deliver
	d.ConsumerTag, d.DeliveryTag, d.Redelivered = consumerTag, tag, e.Redelivered
	d.Exchange, d.RoutingKey = e.Msg.Exchange, e.Msg.RoutingKey
	if !o.appendMethodLocked(channel, d) {
		o.mu.Unlock()
		return false
	}
	o.appendContentLocked(channel, e.Msg)
	o.mu.Unlock()
	o.signal()
	return true
}

// close asks the writer to write what is pending and close the socket.
func (o *outbox) close() {
	o.mu.Lock()
	o.closing = true
	o.mu.Unlock()
	o.signal()
}

// run is the writer goroutine: it writes whatever is queued until the
// socket is closed, or until it has been idle for o.linger.
func (o *outbox) run() {
	var spare []byte
	var spareSegs net.Buffers
	ticker := time.NewTicker(o.linger)
	defer ticker.Stop()
	lastWrite := time.Now()
	for {
		select {
		case <-o.wake:
		case now := <-ticker.C:
			if now.Sub(lastWrite) < o.linger {
				continue
			}
			o.mu.Lock()
			if o.idleLocked() {
				if cap(o.buf) > lowWater {
					o.buf = nil // give back the buffer a burst grew
				}
				o.running.Store(false)
				o.mu.Unlock()
				return
			}
			o.mu.Unlock()
		}
		o.mu.Lock()
		out, segs, cut := o.takeLocked(spare, spareSegs)
		closing := o.closing
		o.writing = true
		o.mu.Unlock()

		// (segs may hold a sealed buf while out is empty.)
		wrote := len(out) > 0 || len(segs) > 0
		if wrote {
			var err error
			if segs, err = o.writeOut(out, segs, cut); err != nil {
				closing = true
			}
			lastWrite = time.Now()
		}
		spareSegs = segs[:0] // (never the array takeLocked just gave o.segs)
		o.mu.Lock()
		o.writing = false
		if wrote {
			o.lastWrite = lastWrite
		}
		o.mu.Unlock()
		if cap(out) <= 4*highWater {
			spare = out[:0]
		} else {
			spare = nil // let an outsized burst's buffer go
		}
		if !closing {
			// Queues refused while the backlog was high may deliver again.
			o.mu.Lock()
			var kicks []*queue.Queue
			if len(o.kicks) > 0 && o.pendingLocked() < lowWater {
				kicks, o.kicks = o.kicks, nil
			}
			o.mu.Unlock()
			for _, q := range kicks {
				q.Kick()
			}
			continue
		}
		o.mu.Lock()
		if (len(o.buf) > 0 || len(o.segs) > 0) && !o.closed {
			// flush the last frames (a close-ok, say) before closing
			out, segs, cut := o.takeLocked(nil, nil)
			o.mu.Unlock()
			o.writeOut(out, segs, cut)
			o.mu.Lock()
		}
		o.closed = true // running stays set: no writer starts again
		o.kicks = nil
		if o.hbTimer != nil {
			o.hbTimer.Stop()
		}
		o.mu.Unlock()
		o.nc.Close()
		close(o.gone)
		return
	}
}
