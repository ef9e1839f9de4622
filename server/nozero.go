package server

import "unsafe"

// noZeroMin is the smallest body allocation made without zeroing. Below
// it, zeroing costs little next to the rest of a message's handling; at
// 64 KiB it was 12% of the broker's CPU (pprof, 64 KiB transient
// messages at about 1 GB/s).
const noZeroMin = 32 << 10

// mallocgc is the runtime's allocator. The runtime keeps it open to
// linkname (see its comment, and go.dev/issue/67401); with a nil type the
// memory is noscan, and needzero=false leaves whatever it held before.
//
//go:linkname mallocgc runtime.mallocgc
func mallocgc(size uintptr, typ unsafe.Pointer, needzero bool) unsafe.Pointer

// makeBody returns a byte slice of length n and capacity c for a
// message's properties and body. From noZeroMin bytes on, its memory is
// not zeroed: the caller must write bytes [0, n) at once, and a byte past
// n may be read only after it is written. The body is only ever extended
// over bytes read from the socket (appendBody, bodyInto), so none of the
// old contents can reach a client.
func makeBody(n, c int) []byte {
	if c < noZeroMin {
		return make([]byte, n, c)
	}
	p := mallocgc(uintptr(c), nil, false)
	return unsafe.Slice((*byte)(p), c)[:n]
}
