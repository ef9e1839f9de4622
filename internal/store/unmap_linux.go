package store

import "syscall"

// dropMapped tells the kernel this process no longer needs the store
// file's pages in its page tables (madvise MADV_DONTNEED on the file's
// read-only shared mapping). The pages stay in the page cache and fault
// back in on the next read; the data is untouched. addr and size must
// describe bbolt's current mapping, so call it inside a transaction, which
// keeps bbolt from remapping.
func dropMapped(addr uintptr, size int) {
	if addr == 0 || size <= 0 {
		return
	}
	syscall.Syscall(syscall.SYS_MADVISE, addr, uintptr(size), syscall.MADV_DONTNEED)
}
