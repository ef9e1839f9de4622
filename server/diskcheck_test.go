package server

import (
	"testing"
	"time"
)

// The alarm reads the disk seldom when it is far from the limit, on
// either side, and often when it is near.
func TestDiskCheckWait(t *testing.T) {
	const limit = 50_000_000
	for _, c := range []struct {
		free int64
		want time.Duration
	}{
		{limit, diskCheckMin},
		{limit + 1<<20, diskCheckMin},
		{limit - 1<<20, diskCheckMin},
		{limit + 512<<20, 500 * time.Millisecond},
		{limit - 512<<20, 500 * time.Millisecond},
		{limit + 5<<30, 5 * time.Second},
		{limit + 9<<30, 9 * time.Second},
		{limit + 10<<30 - 1<<20, 10239 * time.Second / 1024},
		{limit + 11<<30, diskCheckMax},
		{1 << 62, diskCheckMax},
	} {
		if got := diskCheckWait(c.free, limit); got != c.want {
			t.Errorf("diskCheckWait(%d, %d) = %v, want %v", c.free, limit, got, c.want)
		}
	}
}
