//go:build !linux

package store

// dropMapped does nothing where madvise is not used.
func dropMapped(addr uintptr, size int) {}
