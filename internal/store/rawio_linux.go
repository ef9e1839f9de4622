package store

import (
	"io"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Raw log I/O. A small commit (a confirm or a commit-ok at low load waits
// for it) writes its log record and fdatasyncs it with raw system calls,
// without the Go runtime's system-call entry. The entry wakes the
// runtime's monitor thread (sysmon) whenever every P was idle before it,
// which at low load is before each commit; woken, sysmon polls every 20 µs
// for as long as the fdatasync lasts, and each of those wake-ups is a
// thread switch taking CPU on the machine's other cores, which on a VM
// slows the fdatasync itself. A raw call keeps its P for the fdatasync
// instead, so the logger raw-syncs only when another P is free for the
// other goroutines (GOMAXPROCS > 1), and only while its commits are fast:
// a stop-the-world (the GC's) waits for a raw call to return, so a slow
// disk is synced through the runtime (see rawCommit).

// rawIOSupported says rawWriteAt and rawFdatasync work on this platform.
const rawIOSupported = true

// rawWriteAt writes all of b at off in fd with pwrite(2), repeated when a
// signal interrupts it or the write is short.
func rawWriteAt(fd uintptr, b []byte, off int64) error {
	for len(b) > 0 {
		n, _, e := unix.RawSyscall6(unix.SYS_PWRITE64, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(off), 0, 0)
		switch {
		case e == unix.EINTR:
			continue
		case e != 0:
			return e
		case n == 0:
			return io.ErrShortWrite
		}
		b = b[n:]
		off += int64(n)
	}
	return nil
}

// rawFdatasync is fdatasync(2) on fd, repeated when a signal interrupts it.
func rawFdatasync(fd uintptr) error {
	for {
		_, _, e := unix.RawSyscall(unix.SYS_FDATASYNC, fd, 0, 0)
		if e == 0 {
			return nil
		}
		if e != unix.EINTR {
			return e
		}
	}
}
