//go:build linux && (amd64 || arm64 || riscv64 || ppc64 || ppc64le || s390x || loong64 || mips64 || mips64le)

package store

import (
	"io"
	"os"
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

// rawIO says rawWriteAt is a raw system call here: on these 64-bit Linux
// ports pwrite64 takes its offset in one register (rawio_other.go has
// the rest).
const rawIO = true

// rawWriteAt writes all of b at off in f with pwrite(2) as a raw system
// call, repeated when a signal interrupts it or the write is short. (The
// raw fdatasync is fdatasync's, in wal.go.)
func rawWriteAt(f *os.File, b []byte, off int64) error {
	fd := f.Fd()
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
