package rawsock

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	b, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	a, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a, b
}

func pattern(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i * 13)
	}
	return p
}

// TestWriter: a write larger than the socket's buffers goes out whole,
// waiting for the peer to read; the write deadline ends that wait; a peer
// that reset the connection is an error, as with net.Conn's Write.
func TestWriter(t *testing.T) {
	nc, peer := tcpPair(t)
	w := NewWriter(nc)
	if w == nil {
		t.Fatal("no Writer for a TCP connection")
	}
	want := pattern(16 << 20)
	done := make(chan error, 1)
	go func() {
		n, err := w.Write(want)
		if err == nil && n != len(want) {
			err = errors.New("short write")
		}
		done <- err
	}()
	peer.SetReadDeadline(time.Now().Add(time.Minute)) // a write cut short fails, not hangs
	got := make([]byte, len(want))
	if _, err := io.ReadFull(peer, got); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Write: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the peer read other bytes than were written")
	}

	// Nobody reads: the socket fills, and the deadline ends the wait.
	nc.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
	if n, err := w.Write(make([]byte, 64<<20)); !errors.Is(err, os.ErrDeadlineExceeded) || n == 0 {
		t.Fatalf("write past the deadline: %d bytes, %v; want some bytes, then os.ErrDeadlineExceeded", n, err)
	}
	nc.SetWriteDeadline(time.Time{})

	// The peer closes with unread input, which resets the connection.
	peer.Close()
	var err error
	for deadline := time.Now().Add(time.Minute); err == nil && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		_, err = w.Write(want[:1024])
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || !(errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
		t.Fatalf("write to a reset connection: %v, want a net.OpError with ECONNRESET or EPIPE", err)
	}
}

// TestConn: reads return what has arrived, wait for more (until the read
// deadline), and end with io.EOF; writes go out whole; and a connection
// that is not a socket is returned as it is.
func TestConn(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if NewConn(a) != a {
		t.Fatal("NewConn wrapped a net.Pipe")
	}

	nc, peer := tcpPair(t)
	c := NewConn(nc)
	if _, ok := c.(*Conn); !ok {
		t.Fatalf("NewConn of a TCP connection is a %T", c)
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	var ne net.Error
	if _, err := c.Read(make([]byte, 10)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read with nothing sent, past the deadline: %v, want a timeout", err)
	}
	c.SetReadDeadline(time.Time{})

	want := pattern(4 << 20)
	go func() {
		peer.Write(want)
		peer.Close()
	}()
	var got []byte
	buf := make([]byte, 100<<10)
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatal("a read returned nothing and no error")
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, not the %d written", len(got), len(want))
	}

	// Writes: to a fresh pair, read back by the peer.
	nc2, peer2 := tcpPair(t)
	c2 := NewConn(nc2)
	go c2.Write(want)
	got = make([]byte, len(want))
	peer2.SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := io.ReadFull(peer2, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the peer read %v, and other bytes than were written", err)
	}
}
