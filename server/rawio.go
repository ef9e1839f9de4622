package server

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// sysRead and sysWrite are read(2) and write(2) on a non-blocking socket,
// made inside its RawConn's Read and Write, without the runtime's
// system-call entry and exit. A non-blocking socket never blocks, so the
// thread need not give up its P; and that entry has a cost of its own on
// a broker whose one P idles between a client's requests: the runtime's
// monitor thread (sysmon) sleeps whenever every P is idle, and the next
// system call entered wakes it with a futex, then it polls every 20 µs
// until it finds the Ps idle and sleeps again. With a transaction or a
// confirm in flight, that is one futex wake-up and one thread switch per
// round trip, on the round trip's path.
func sysRead(fd int, p []byte) (int, error) {
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(bufPtr(p)), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

func sysWrite(fd int, p []byte) (int, error) {
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(bufPtr(p)), uintptr(len(p)))
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
