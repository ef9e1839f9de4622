package server

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/warrenmq/warren/internal/wire"
)

// The free disk space alarm, as RabbitMQ's: while the file system holding
// the data dir has less than Options.DiskFreeLimit bytes free, every
// connection that publishes is blocked. Its reader stops reading (after
// the basic.publish method: the message's header and body wait in the
// socket) until the alarm clears, so TCP holds the publisher back, and a
// client that announced the connection.blocked capability is told so.
// Connections that do not publish (consumers acking, declares) carry on,
// so queues can be drained while publishers wait. Without the alarm a
// full disk fails every store write: the store cannot even checkpoint the
// acks that would free space, and publishes are nacked one by one.
//
// The store's file does not shrink as queues drain (unless it is
// compacted): the pages of deleted messages are kept and reused. So the
// space the alarm weighs is the file system's free space plus the store's
// free pages; counting only the first, an alarm raised by a backlog would
// never clear when the backlog is consumed.

// diskBlockedReason is connection.blocked's reason, RabbitMQ's words.
const diskBlockedReason = "low on disk"

const (
	// diskCheckMin and diskCheckMax bound the wait between two readings of
	// the free space (checkWait).
	diskCheckMin = 100 * time.Millisecond
	diskCheckMax = 10 * time.Second
	// checkRate is the growth, in bytes per second, a monitor's wait allows
	// for: faster than the broker writes on common disks, or grows its
	// memory.
	checkRate = 1 << 30
)

// statfsFree is the bytes available to unprivileged users on the file
// system holding dir, as df shows them.
func statfsFree(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	unit := st.Frsize // what the block counts count; Bsize where unset
	if unit == 0 {
		unit = st.Bsize
	}
	return int64(st.Bavail) * unit, nil
}

// diskAlarm watches the data dir's free space and holds the alarm's state.
type diskAlarm struct {
	dir   string
	limit int64 // 0: never raised
	probe func(dir string) (int64, error)
	// storeFree is the store's free pages, in bytes (store.FreeBytes).
	storeFree func() int64
	log       *slog.Logger
	// failing says the last reading failed (logged once). check owns it,
	// called by New and then by the monitor's goroutine.
	failing bool

	free atomic.Int64 // the last reading, -1 before the first

	alarmState
}

// alarmState is a resource alarm's state, raised or not, and what a
// blocked connection waits on. The free disk space and memory alarms each
// have one.
type alarmState struct {
	on atomic.Bool // the alarm is raised; read on every publish

	mu      sync.Mutex    // guards cleared
	cleared chan struct{} // closed when the alarm clears; nil while it is not raised
}

// set raises or clears the alarm, and says whether it was raised or cleared
// by this call.
func (a *alarmState) set(on bool) (raised, cleared bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	raised, cleared = on && a.cleared == nil, !on && a.cleared != nil
	switch {
	case raised:
		a.cleared = make(chan struct{})
		a.on.Store(true)
	case cleared:
		a.on.Store(false)
		close(a.cleared)
		a.cleared = nil
	}
	return raised, cleared
}

// waitCleared returns a channel closed once the alarm clears, or nil if it
// is not raised.
func (a *alarmState) waitCleared() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cleared
}

// checkWait is how long a monitor waits after a reading of used against
// limit (free space against its floor, memory against its ceiling): the
// time growing at checkRate would take to cross the limit, within lo and
// hi.
func checkWait(used, limit int64, lo, hi time.Duration) time.Duration {
	d := used - limit
	if d < 0 {
		d = -d
	}
	// d / checkRate seconds, in MiB so that the product cannot overflow.
	if d >= int64(hi/time.Second+1)*checkRate {
		return hi
	}
	return min(max(time.Duration(d>>20)*time.Second/(checkRate>>20), lo), hi)
}

func newDiskAlarm(opts Options, storeFree func() int64) *diskAlarm {
	a := &diskAlarm{dir: opts.DataDir, limit: opts.DiskFreeLimit, probe: opts.DiskFree, storeFree: storeFree, log: opts.Logger}
	if a.probe == nil {
		a.probe = statfsFree
	}
	a.free.Store(-1)
	return a
}

// startMonitor runs a resource alarm's check once now, so that its state
// is known before Serve, and then in a goroutine after each wait it
// returns, until Shutdown.
func (s *Server) startMonitor(check func() time.Duration) {
	wait := check()
	s.startGoroutine(func() {
		t := time.NewTimer(wait)
		defer t.Stop()
		for {
			select {
			case <-s.stopMonitors:
				return
			case <-t.C:
			}
			t.Reset(check())
		}
	})
}

// check reads the free space once, raises or clears the alarm, and
// returns how long to wait before the next reading.
func (a *diskAlarm) check() time.Duration {
	free, err := a.probe(a.dir)
	if err != nil {
		// The alarm stays as it was: a reading is needed to clear it.
		if !a.failing {
			a.log.Warn("cannot read the data dir's free disk space", "dir", a.dir, "err", err)
		}
		a.failing = true
		a.free.Store(-1)
		return diskCheckMax
	}
	a.failing = false
	a.free.Store(free)
	room := free + a.storeFree()
	a.update(room < a.limit, free, room)
	if a.limit == 0 {
		return diskCheckMax
	}
	return checkWait(room, a.limit, diskCheckMin, diskCheckMax)
}

// update raises or clears the alarm, and logs it.
func (a *diskAlarm) update(on bool, free, room int64) {
	switch raised, cleared := a.alarmState.set(on); {
	case raised:
		a.log.Warn("free disk space alarm raised: publishing connections are blocked", "dir", a.dir, "free_bytes", free, "with_store_free_pages", room, "limit_bytes", a.limit)
	case cleared:
		a.log.Info("free disk space alarm cleared", "dir", a.dir, "free_bytes", free, "with_store_free_pages", room, "limit_bytes", a.limit)
	}
}

// DiskInfo is the free disk space alarm's view of the data dir.
type DiskInfo struct {
	// Free is the file system's available bytes at the alarm's last
	// reading, -1 if it could not be read; the alarm adds the store's
	// free pages (StoreStats().FreeBytes) to it.
	Free  int64
	Limit int64 // Options.DiskFreeLimit; 0 when the alarm is off
	Alarm bool  // publishers are blocked
}

// Disk returns the free disk space alarm's last reading and state.
func (s *Server) Disk() DiskInfo {
	return DiskInfo{Free: s.disk.free.Load(), Limit: s.disk.limit, Alarm: s.disk.on.Load()}
}

// DiskFreeNow reads the data dir's file system's available bytes now
// (Options.DiskFree in tests); -1 if it cannot be read.
func (s *Server) DiskFreeNow() int64 {
	free, err := s.disk.probe(s.disk.dir)
	if err != nil {
		return -1
	}
	return free
}

// blockedReason is connection.blocked's reason for the alarms raised,
// RabbitMQ's words.
func blockedReason(mem, disk bool) string {
	switch {
	case mem && disk:
		return "low on disk & memory" // RabbitMQ's order, whichever was raised first
	case mem:
		return memBlockedReason
	}
	return diskBlockedReason
}

// alarmed says whether a resource alarm is raised.
func (s *Server) alarmed() bool { return s.disk.on.Load() || s.mem.on.Load() }

// waitAlarms blocks the connection, which has just sent a basic.publish,
// for as long as a resource alarm (free disk space, memory) is raised:
// nothing more is read from it, its heartbeats included (RabbitMQ stops
// watching them too; a read deadline armed before the wait has passed by
// its end only if the wait took more than a second, and armReadDeadline
// then arms a new one). Confirms, deliveries and heartbeats still go out;
// closing the connection from the broker's side (Shutdown, the management
// API) ends the wait, and so does a failed write (a heartbeat's, say) once
// the peer is gone, as in RabbitMQ, where that is how a blocked
// connection's end is noticed. As in RabbitMQ, a client that takes
// connection.blocked is told once, naming the alarms raised when it is
// blocked (not again if another is raised meanwhile), and unblocked once
// every alarm has cleared.
func (c *conn) waitAlarms() {
	c.blockOnAlarm = false
	if c.closeSent.Load() {
		return
	}
wait:
	for {
		disk, mem := c.srv.disk.waitCleared(), c.srv.mem.waitCleared()
		if disk == nil && mem == nil {
			break
		}
		if !c.blocked.Load() {
			c.flushConfirms()
			c.blocked.Store(true)
			if c.capBlocked {
				c.out.sendMethod(0, &wire.ConnectionBlocked{Reason: blockedReason(mem != nil, disk != nil)})
			}
		}
		select { // a nil channel, an alarm not raised, never fires
		case <-disk:
		case <-mem:
		case <-c.closing:
			break wait
		case <-c.out.gone: // a write failed: the peer is gone
			break wait
		}
	}
	if !c.blocked.Load() {
		return
	}
	c.blocked.Store(false)
	if c.capBlocked && !c.closeSent.Load() {
		c.out.sendMethod(0, &wire.ConnectionUnblocked{})
	}
}
