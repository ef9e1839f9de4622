package server

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/warrenmq/warren/internal/rawsock"
)

// connReader buffers a connection's input. A burst of small frames costs
// one system call per 64 KiB: it is read into a 64 KiB buffer borrowed
// from a pool. On a socket the read is made with the socket's RawConn: the
// buffer is borrowed when there is something to read and given back
// before waiting, so 10,000 idle connections hold no large buffers, and a
// message arriving after a pause costs one read however large it is.
//
// On other connections (net.Pipe in tests) the reader decides before
// it blocks: a read that did not fill the large buffer drained the
// connection, so the next one will probably wait, and is made into a
// small buffer; a read that fills the small buffer means data is
// streaming, and the next one uses the large buffer again.
type connReader struct {
	nc    net.Conn
	raw   syscall.RawConn // nc's socket; nil if nc is not one
	data  []byte          // unread input: a window into big or small
	big   *[]byte         // borrowed from bigBufs while busy; nil when idle
	busy  bool            // without raw: the next fill reads into big
	err   error           // from the last read, returned once data is used up
	small []byte          // without raw: made on first use
	// readFn is fillRaw's function for raw.Read, made once; it sets n
	// and rerr.
	readFn func(fd uintptr) bool
	n      int
	rerr   error
}

const (
	bigReadSize   = 64 << 10
	smallReadSize = 512
	// directReadMin is the smallest read made into the caller's buffer
	// when nothing is buffered, instead of through the buffer.
	directReadMin = 16 << 10
)

var bigBufs = sync.Pool{New: func() any {
	b := make([]byte, bigReadSize)
	return &b
}}

func newConnReader(nc net.Conn) *connReader {
	r := &connReader{nc: nc}
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			r.raw = raw
			r.readFn = r.readRaw
		}
	}
	return r
}

// Buffered is the number of bytes read from the socket and not yet used.
func (r *connReader) Buffered() int { return len(r.data) }

func (r *connReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		if r.err != nil {
			err := r.err
			r.err = nil
			return 0, err
		}
		if len(p) >= directReadMin {
			// Large reads (a big body frame, read into its message)
			// go straight to the caller.
			r.release()
			return r.nc.Read(p)
		}
		r.fill()
		if len(r.data) == 0 {
			err := r.err
			r.err = nil
			return 0, err
		}
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// fill reads once from the socket into the buffer the connection's
// activity calls for. r.data is empty.
func (r *connReader) fill() {
	if r.raw != nil {
		r.fillRaw()
		return
	}
	if !r.busy {
		r.release()
		if r.small == nil {
			r.small = make([]byte, smallReadSize)
		}
		n, err := r.nc.Read(r.small)
		r.data, r.err = r.small[:n], err
		r.busy = n == len(r.small)
		return
	}
	if r.big == nil {
		r.big = bigBufs.Get().(*[]byte)
	}
	n, err := r.nc.Read(*r.big)
	r.data, r.err = (*r.big)[:n], err
	r.busy = n == len(*r.big)
}

// fillRaw reads once from the socket into a large buffer, borrowed only
// once there is something to read. Like net.Conn's Read, it waits for the
// socket with the read deadline, and reports the end of the input as
// io.EOF.
func (r *connReader) fillRaw() {
	r.n, r.rerr = 0, nil
	err := r.raw.Read(r.readFn)
	switch {
	case err != nil:
		r.release()
		r.data, r.err = nil, err
	case r.rerr != nil:
		r.release()
		r.data, r.err = nil, &net.OpError{Op: "read", Net: "tcp", Source: r.nc.LocalAddr(), Addr: r.nc.RemoteAddr(), Err: os.NewSyscallError("read", r.rerr)}
	case r.n == 0:
		r.release()
		r.data, r.err = nil, io.EOF
	default:
		r.data = (*r.big)[:r.n]
	}
}

// readRaw is raw.Read's function: one read into the large buffer. With
// nothing to read it gives the buffer back and asks raw.Read to wait.
func (r *connReader) readRaw(fd uintptr) bool {
	if r.big == nil {
		r.big = bigBufs.Get().(*[]byte)
	}
	n, err := rawsock.Read(int(fd), *r.big)
	switch err {
	case nil:
		r.n = n
	case unix.EAGAIN:
		r.release()
		return false
	default:
		r.rerr = err
	}
	return true
}

// release gives the large buffer back; r.data must not point into it.
func (r *connReader) release() {
	if r.big != nil {
		bigBufs.Put(r.big)
		r.big = nil
	}
}
