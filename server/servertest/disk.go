package servertest

import (
	"sync/atomic"

	"github.com/warrenmq/warren/server"
)

// Disk stands in for the data dir's file system in the free disk space
// alarm's readings: pass d.Alarm(limit) to Start, then Set what it shows.
type Disk struct{ free atomic.Int64 }

// NewDisk returns a Disk showing free bytes.
func NewDisk(free int64) *Disk {
	d := &Disk{}
	d.free.Store(free)
	return d
}

// Set makes d show free bytes from the broker's next reading on.
func (d *Disk) Set(free int64) { d.free.Store(free) }

// Alarm is an option for Start: the free disk space alarm on, with limit,
// reading d.
func (d *Disk) Alarm(limit int64) func(*server.Options) {
	return func(o *server.Options) {
		o.DiskFreeLimit = limit
		o.DiskFree = func(string) (int64, error) { return d.free.Load(), nil }
	}
}
