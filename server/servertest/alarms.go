package servertest

import (
	"sync/atomic"

	"github.com/warrenmq/warren/server"
)

// reading is what a stand-in shows the broker's alarm; Set changes it from
// the alarm's next reading on.
type reading struct{ v atomic.Int64 }

// Set makes the stand-in show n bytes from the broker's next reading on.
func (r *reading) Set(n int64) { r.v.Store(n) }

// Disk stands in for the data dir's file system in the free disk space
// alarm's readings: pass d.Alarm(limit) to Start, then Set what it shows.
type Disk struct{ reading }

// NewDisk returns a Disk showing free bytes.
func NewDisk(free int64) *Disk {
	d := &Disk{}
	d.Set(free)
	return d
}

// Alarm is an option for Start: the free disk space alarm on, with limit,
// reading d.
func (d *Disk) Alarm(limit int64) func(*server.Options) {
	return func(o *server.Options) {
		o.DiskFreeLimit = limit
		o.DiskFree = func(string) (int64, error) { return d.v.Load(), nil }
	}
}

// Memory stands in for the broker's memory in the memory alarm's readings:
// pass m.Alarm(limit) to Start, then Set what it shows.
type Memory struct{ reading }

// NewMemory returns a Memory showing used bytes.
func NewMemory(used int64) *Memory {
	m := &Memory{}
	m.Set(used)
	return m
}

// Alarm is an option for Start: the memory alarm on, with limit, reading
// m.
func (m *Memory) Alarm(limit int64) func(*server.Options) {
	return func(o *server.Options) {
		o.MemoryHighWatermark = limit
		o.MemoryUsed = m.v.Load
	}
}
