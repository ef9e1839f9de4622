//go:build !linux

package store

import "errors"

// rawIOSupported says rawWriteAt and rawFdatasync work on this platform:
// not here, where the log is always written through the runtime.
const rawIOSupported = false

func rawWriteAt(fd uintptr, b []byte, off int64) error { return errors.ErrUnsupported }

func rawFdatasync(fd uintptr) error { return errors.ErrUnsupported }
