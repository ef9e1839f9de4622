package gctune

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		live, minHeap uint64
		want          int
	}{
		{0, 64 * mb, maxPercent},
		{1 * mb, 64 * mb, maxPercent}, // 6300% would be asked for
		{16 * mb, 64 * mb, 300},       // 16 + 3*16 = 64
		{32 * mb, 64 * mb, 100},
		{40 * mb, 64 * mb, 100}, // 60% would put it below 2x live
		{200 * mb, 64 * mb, 100},
	} {
		if got := Percent(c.live, c.minHeap); got != c.want {
			t.Errorf("Percent(%d MB, %d MB) = %d, want %d", c.live/mb, c.minHeap/mb, got, c.want)
		}
	}
}

// TestTunerFollowsCollections: after a collection with a small live heap
// the tuner raises GOGC; Stop puts the default back.
func TestTunerFollowsCollections(t *testing.T) {
	t.Setenv("GOGC", "")
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	tu := Start(1 << 40) // far above this test's live heap
	if tu == nil {
		t.Fatal("no tuner started")
	}
	deadline := time.Now().Add(10 * time.Second)
	for tu.GCPercent() != maxPercent && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	if tu.GCPercent() != maxPercent {
		t.Fatalf("GOGC %d after collections, want %d", tu.GCPercent(), maxPercent)
	}
	if got := debug.SetGCPercent(maxPercent); got != maxPercent {
		t.Errorf("the runtime's GOGC is %d, want %d", got, maxPercent)
	}
	tu.Stop()
	if got := debug.SetGCPercent(100); got != minPercent {
		t.Errorf("GOGC %d after Stop, want %d", got, minPercent)
	}
}

func TestStartOff(t *testing.T) {
	if Start(0) != nil {
		t.Error("a tuner with no floor")
	}
	t.Setenv("GOGC", "200")
	if Start(64<<20) != nil {
		t.Error("a tuner despite GOGC")
	}
}
