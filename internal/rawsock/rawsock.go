// Package rawsock reads and writes non-blocking sockets with raw system
// calls, without the Go runtime's system-call entry and exit.
//
// A read or write on a non-blocking socket never blocks, so its thread
// need not give up its P, and the entry has a cost of its own in a
// process whose Ps idle between a peer's requests: the runtime's monitor
// thread (sysmon) sleeps whenever every P is idle, and the next system
// call entered wakes it with a futex; woken that way, it polls every
// 20 µs until it finds the Ps idle and sleeps again. A request-reply load
// (a transaction, a confirm, an RPC) then pays a futex wake-up and a
// thread switch per round trip, on the round trip's path.
//
// Read and Write are for use inside a syscall.RawConn's Read and Write,
// which wait for the socket (and its deadlines) when they return false.
//
// Under the race detector they are the syscall package's: those tell the
// detector that a write to a socket happens before the read of it in the
// same process (a test's client and the broker), which a raw system call
// cannot.
package rawsock

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/warrenmq/warren/internal/raceflag"
)

// Read is read(2) on fd, repeated when a signal interrupts it.
func Read(fd int, p []byte) (int, error) { return rw(unix.SYS_READ, fd, p) }

// Write is write(2) on fd, repeated when a signal interrupts it.
func Write(fd int, p []byte) (int, error) { return rw(unix.SYS_WRITE, fd, p) }

// rw makes the read or write trap on fd with p until no signal
// interrupts it.
func rw(trap uintptr, fd int, p []byte) (int, error) {
	for {
		n, err := sys(trap, fd, p)
		if err == nil {
			return n, nil
		}
		if err != unix.EINTR {
			return 0, err
		}
	}
}

// sys makes the system call once: raw, or under the race detector through
// the syscall package.
func sys(trap uintptr, fd int, p []byte) (int, error) {
	if raceflag.Enabled {
		if trap == unix.SYS_READ {
			return syscall.Read(fd, p)
		}
		return syscall.Write(fd, p)
	}
	n, _, e := unix.RawSyscall(trap, uintptr(fd), uintptr(bufPtr(p)), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

func bufPtr(p []byte) unsafe.Pointer {
	if len(p) == 0 {
		return nil
	}
	return unsafe.Pointer(&p[0])
}

// Writer writes whole buffers to a socket with Write, waiting for the
// socket through its RawConn when it is full. One goroutine writes at a
// time; a Writer allocates nothing per write.
type Writer struct {
	nc    net.Conn
	rc    syscall.RawConn
	fn    func(fd uintptr) bool // rc.Write's function for Write, made once
	tryFn func(fd uintptr) bool // and for TryWrite
	out   []byte                // what is left to write
	err   error                 // Write's error
	n     int                   // what TryWrite wrote
}

// NewWriter returns a Writer for nc, or nil if nc is not a socket.
func NewWriter(nc net.Conn) *Writer {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	w := &Writer{nc: nc, rc: rc}
	w.fn, w.tryFn = w.write, w.try
	return w
}

// Write writes p whole. Its errors are net.Conn's: a *net.OpError, or
// os.ErrDeadlineExceeded (wrapped) past the write deadline.
func (w *Writer) Write(p []byte) (int, error) {
	w.out, w.err = p, nil
	err := w.rc.Write(w.fn)
	n := len(p) - len(w.out)
	if err == nil && w.err != nil {
		err = os.NewSyscallError("write", w.err)
	}
	if err != nil {
		err = &net.OpError{Op: "write", Net: "tcp", Source: w.nc.LocalAddr(), Addr: w.nc.RemoteAddr(), Err: err}
	}
	w.out, w.err = nil, nil
	return n, err
}

func (w *Writer) write(fd uintptr) bool {
	for len(w.out) > 0 {
		n, err := Write(int(fd), w.out)
		switch err {
		case nil:
			w.out = w.out[n:]
		case unix.EAGAIN:
			return false
		default:
			w.err = err
			return true
		}
	}
	return true
}

// TryWrite makes one write of p and never waits for the socket. It
// returns how much went out: 0 on an error, which the next Write meets.
// Write and TryWrite are not called at the same time.
func (w *Writer) TryWrite(p []byte) int {
	w.out, w.n = p, 0
	w.rc.Write(w.tryFn)
	w.out = nil
	return w.n
}

func (w *Writer) try(fd uintptr) bool {
	if n, err := Write(int(fd), w.out); err == nil {
		w.n = n
	}
	return true // one attempt
}

// Conn is a socket whose Read and Write are made with Read and Write. One
// goroutine reads and one writes at a time, as bufio and a mutex-guarded
// writer do.
type Conn struct {
	net.Conn
	w    *Writer
	rfn  func(fd uintptr) bool // rc.Read's function, made once
	rp   []byte
	rn   int
	rerr error
}

// NewConn returns nc as a Conn, or nc itself if it is not a socket.
func NewConn(nc net.Conn) net.Conn {
	w := NewWriter(nc)
	if w == nil {
		return nc
	}
	c := &Conn{Conn: nc, w: w}
	c.rfn = c.read
	return c
}

// Read reads what the socket has, up to len(p), waiting for it (and the
// read deadline) if it has nothing; io.EOF at the end of the input.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rp, c.rn, c.rerr = p, 0, nil
	err := c.w.rc.Read(c.rfn)
	n, rerr := c.rn, c.rerr
	c.rp, c.rerr = nil, nil
	if err == nil && rerr != nil {
		err = os.NewSyscallError("read", rerr)
	}
	switch {
	case err != nil:
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (c *Conn) read(fd uintptr) bool {
	n, err := Read(int(fd), c.rp)
	switch err {
	case nil:
		c.rn = n
	case unix.EAGAIN:
		return false
	default:
		c.rerr = err
	}
	return true
}

// Write writes p whole (see Writer).
func (c *Conn) Write(p []byte) (int, error) { return c.w.Write(p) }
