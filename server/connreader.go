package server

import (
	"net"
	"sync"
)

// connReader buffers a connection's input. A busy connection reads into a
// 64 KiB buffer borrowed from a pool, so a burst of small frames costs one
// system call per 64 KiB; an idle one gives the buffer back and waits on a
// small buffer of its own, so 10,000 idle connections hold 10,000 small
// buffers, not 10,000 large ones.
//
// The reader decides before it blocks: a read that did not fill the large
// buffer drained the socket, so the next one will probably wait, and is
// made into the small buffer; a read that fills the small buffer means
// data is streaming, and the next one uses the large buffer again.
type connReader struct {
	nc    net.Conn
	data  []byte  // unread input: a window into big or small
	big   *[]byte // borrowed from bigBufs while busy; nil when idle
	busy  bool    // the next fill reads into big
	err   error   // from the last read, returned once data is used up
	small [smallReadSize]byte
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

func newConnReader(nc net.Conn) *connReader { return &connReader{nc: nc} }

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
	if !r.busy {
		r.release()
		n, err := r.nc.Read(r.small[:])
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

// release gives the large buffer back; r.data must not point into it.
func (r *connReader) release() {
	if r.big != nil {
		bigBufs.Put(r.big)
		r.big = nil
	}
}
