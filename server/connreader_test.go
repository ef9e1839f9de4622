package server

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
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
