package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warrenmq/warren/internal/store"
	"github.com/warrenmq/warren/internal/wire"
	"github.com/warrenmq/warren/queue"
)

// Version is Warren's version, sent in connection.start.
const Version = "0.1.0"

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("warren: server closed")

// Server is an AMQP 0-9-1 broker. Create it with New, run it with Serve and
// stop it with Shutdown.
type Server struct {
	opts  Options
	ln    net.Listener
	store *store.Store
	vhost *vhost
	disk  *diskAlarm
	mem   *memAlarm
	// stopMonitors is closed by Shutdown: the alarms' monitors end.
	stopMonitors chan struct{}
	// clock is the consumer-timeout monitor's last tick, in ns since
	// started plus 1 (monotonic), which deliveries are stamped with; 0
	// with no consumer timeout.
	clock   atomic.Int64
	started time.Time
	ticks   []int64        // the monitor's recent clock values, oldest first; the monitor's own
	wg      sync.WaitGroup // every goroutine the server started
	ids     atomic.Uint64

	mu    sync.Mutex // guards the fields below
	conns map[*conn]struct{}
	// closedTotals holds the counters of the connections that have ended.
	closedTotals Counters
	adminStats   connStats // publishes and gets made through the admin interface; atomics
	shutdown     bool
}

// New validates opts, opens the store in opts.DataDir and recovers what it
// holds, and binds the AMQP listener, so Addr is known before Serve is
// called.
func New(opts Options) (*Server, error) {
	opts = opts.withDefaults()
	if opts.FrameMax < wire.FrameMinSize {
		return nil, fmt.Errorf("warren: frame max %d is below the minimum %d", opts.FrameMax, wire.FrameMinSize)
	}
	st, err := store.Open(opts.DataDir, store.Options{Logger: opts.Logger, Fault: opts.StoreFault, CheckpointFault: opts.StoreCheckpointFault})
	if err != nil {
		return nil, fmt.Errorf("warren: %w", err)
	}
	start := time.Now()
	rec, err := st.Recover()
	if err == nil {
		var budget *queue.Budget
		if opts.QueueMemory > 0 {
			budget = queue.NewBudget(opts.QueueMemory)
		}
		vh := newVhost("/", st, opts.QueueWindow, budget)
		if err = vh.recover(rec); err == nil {
			var ln net.Listener
			ln, err = net.Listen("tcp", opts.AMQPAddr)
			if err == nil {
				opts.Logger.Info("store recovered", "dir", opts.DataDir, "exchanges", len(rec.Exchanges), "queues", len(rec.Queues), "bindings", len(rec.Bindings), "took", time.Since(start))
				s := &Server{opts: opts, ln: ln, store: st, vhost: vh, disk: newDiskAlarm(opts, st.FreeBytes), mem: newMemAlarm(opts), stopMonitors: make(chan struct{}), conns: map[*conn]struct{}{}, started: time.Now()}
				s.startMonitor(s.disk.check)
				s.startMonitor(s.mem.check)
				if s.opts.ConsumerTimeout > 0 {
					s.startMonitor(s.checkConsumerTimeouts)
				}
				return s, nil
			}
			err = fmt.Errorf("listen on %s: %w", opts.AMQPAddr, err)
		} else {
			err = fmt.Errorf("recover %s: %w", opts.DataDir, err)
		}
	}
	st.Close()
	return nil, fmt.Errorf("warren: %w", err)
}

// Addr is the address the AMQP listener is bound to.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// startGoroutine runs f in a goroutine that Shutdown waits for.
func (s *Server) startGoroutine(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

func (s *Server) loopbackOnly(user string) bool {
	return slices.Contains(s.opts.LoopbackUsers, user)
}

// Serve accepts connections until Shutdown; it always returns a non-nil
// error, ErrServerClosed after Shutdown.
func (s *Server) Serve() error {
	s.opts.Logger.Info("listening", "amqp", s.ln.Addr().String())
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			s.mu.Lock()
			down := s.shutdown
			s.mu.Unlock()
			if down {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		id := s.ids.Add(1)
		br := newConnReader(nc)
		c := &conn{
			srv: s, nc: nc, id: id,
			log:        s.opts.Logger.With("conn", id, "peer", nc.RemoteAddr().String()),
			out:        newOutbox(nc, s.startGoroutine),
			br:         br,
			r:          wire.NewReader(br, wire.FrameMinSize),
			dec:        wire.NewDecoder(),
			channels:   map[uint16]*channel{},
			frameMax:   wire.FrameMinSize,
			channelMax: s.opts.ChannelMax,
			closing:    make(chan struct{}),
		}
		c.r.BodyInto = c.bodyInto
		s.mu.Lock()
		if s.shutdown {
			s.mu.Unlock()
			nc.Close()
			return ErrServerClosed
		}
		s.conns[c] = struct{}{}
		// Counted before the lock is released, so a Shutdown that sees c
		// also waits for it.
		s.startGoroutine(c.serve)
		s.mu.Unlock()
	}
}

// forget drops an ended connection, adding its counters to the totals.
func (s *Server) forget(c *conn) {
	s.mu.Lock()
	s.closedTotals.add(&c.stats)
	delete(s.conns, c)
	s.mu.Unlock()
}

// Shutdown stops accepting, closes every connection with 320
// CONNECTION_FORCED, and waits for them until ctx is done, after which the
// remaining sockets are closed at once. It is safe to call more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.shutdown {
		close(s.stopMonitors)
	}
	s.shutdown = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.ln.Close()
	for _, c := range conns {
		if c.isOpen.Load() {
			c.forceClose("broker forced connection closure with reason 'shutdown'")
		} else {
			c.nc.Close()
		}
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		for _, c := range conns {
			c.nc.Close()
		}
		<-done
		err = ctx.Err()
	}
	// Every connection is gone: commit what they logged and close the file.
	if cerr := s.store.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("warren: close store: %w", cerr)
	}
	return err
}

// StoreStats returns the store's counters: commits, failed commits, the
// changes written and the time spent committing.
func (s *Server) StoreStats() store.Stats { return s.store.Stats() }

// QueueMemory returns what the queues hold of their shared memory budget
// (Options.QueueMemory) and its size, in bytes; limit is 0 when there is
// no budget.
func (s *Server) QueueMemory() (used, limit int64) {
	if b := s.vhost.budget; b != nil {
		return b.Used(), b.Limit()
	}
	return 0, 0
}
