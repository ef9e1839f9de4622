package store

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// lockDir takes an flock on the data directory itself, exclusive for a
// broker's Open and shared for CheckDir, waiting up to timeout
// (DefaultLockTimeout if 0) for another process to let go of it. It is the
// lock that keeps two Warrens off one store. bbolt locks its file too, but
// a compaction (compact.go) puts a new file under the name: a process
// waiting for the old file's lock would get it when the old file is
// closed. Closing the returned file releases the lock.
func lockDir(dir string, timeout time.Duration, exclusive bool) (*os.File, error) {
	if timeout <= 0 {
		timeout = DefaultLockTimeout
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	deadline := time.Now().Add(timeout)
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		switch {
		case err == nil:
			return f, nil
		case err == unix.EINTR:
			continue
		case err != unix.EWOULDBLOCK:
			f.Close()
			return nil, fmt.Errorf("lock data dir %s: %w", dir, err)
		case time.Now().After(deadline):
			f.Close()
			return nil, &lockedError{dir: dir, path: dir, timeout: timeout}
		}
		time.Sleep(min(50*time.Millisecond, timeout/4)) // as bbolt polls its own lock
	}
}
