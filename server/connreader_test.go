package server

import (
	"bytes"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestConnReader: bytes come out in order whatever the read sizes; a
// read that fills the small buffer switches to the large one, a read
// that leaves the large one part-empty gives it back; large reads go
// straight to the caller; the socket's error comes after its data.
func TestConnReader(t *testing.T) {
	client, server := net.Pipe()
	r := newConnReader(server)
	want := make([]byte, 3*bigReadSize+123)
	for i := range want {
		want[i] = byte(i * 7)
	}
	go func() {
		client.Write(want[:10])                 // a trickle: stays small
		client.Write(want[10 : bigReadSize+10]) // a burst: switches to big
		client.Write(want[bigReadSize+10:])
		client.Close()
	}()
	var got []byte
	buf := make([]byte, 100)
	sawBig, sawIdle := false, false
	for {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if r.big != nil {
			sawBig = true
		} else if sawBig {
			sawIdle = true
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, not what was written (%d)", len(got), len(want))
	}
	if !sawBig {
		t.Error("a streaming burst never used the large buffer")
	}
	if r.big != nil || r.Buffered() != 0 {
		t.Errorf("after EOF: big buffer held %v, %d bytes buffered", r.big != nil, r.Buffered())
	}
	if !sawIdle {
		t.Error("the large buffer was never given back when the burst ended")
	}

	// A read of at least bigReadSize bypasses the buffer.
	client, server = net.Pipe()
	r = newConnReader(server)
	go func() {
		client.Write(want[:bigReadSize])
		client.Close()
	}()
	large := make([]byte, bigReadSize)
	n, err := io.ReadFull(r, large)
	if err != nil || n != bigReadSize || !bytes.Equal(large, want[:bigReadSize]) || r.big != nil {
		t.Fatalf("large read: %d %v, big buffer held %v", n, err, r.big != nil)
	}
}

// TestConnReaderSocket: on a TCP socket the reader reads with the socket's
// RawConn: bytes come out in order, a burst arriving after a pause is one
// read, the large buffer is given back at the end of the input, the read
// deadline works and the end of the input is io.EOF.
func TestConnReaderSocket(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	r := newConnReader(server)
	if r.raw == nil {
		t.Fatal("a TCP connection is read without its RawConn")
	}

	// Nothing to read: the deadline ends the wait, holding no buffer.
	server.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	var ne net.Error
	if _, err := r.Read(make([]byte, 10)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}
	if r.big != nil {
		t.Fatal("the large buffer is held after a timed-out wait")
	}
	server.SetReadDeadline(time.Time{})

	// A burst larger than the small buffer of a pipe is one read.
	want := make([]byte, 3*bigReadSize+123)
	for i := range want {
		want[i] = byte(i * 7)
	}
	if _, err := client.Write(want[:4000]); err != nil {
		t.Fatal(err)
	}
	waitReadable(t, server, 4000)
	buf := make([]byte, 100)
	n, err := r.Read(buf)
	if err != nil || n != 100 || !bytes.Equal(buf, want[:100]) {
		t.Fatalf("first read: %d %v", n, err)
	}
	if r.Buffered() != 4000-100 {
		t.Fatalf("4000 bytes waiting were read as %d", r.Buffered()+n)
	}
	got := append([]byte(nil), buf[:n]...)
	go func() {
		client.Write(want[4000:])
		client.Close()
	}()
	for {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, not what was written (%d)", len(got), len(want))
	}
	if r.big != nil || r.Buffered() != 0 {
		t.Errorf("after EOF: large buffer held %v, %d bytes buffered", r.big != nil, r.Buffered())
	}
}

// waitReadable polls until n bytes wait in nc's receive queue.
func waitReadable(t *testing.T, nc net.Conn, n int) {
	t.Helper()
	raw, err := nc.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var queued int
		raw.Control(func(fd uintptr) { queued, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
		if queued >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d bytes arrived", queued, n)
		}
		time.Sleep(time.Millisecond)
	}
}
