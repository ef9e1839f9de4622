package confirm

import (
	"reflect"
	"testing"
)

type frame struct {
	tag      uint64
	multiple bool
	nack     bool
}

// emit returns what Emit sends, failing tb if Emit's report of whether
// it sent anything is wrong.
func emit(tb testing.TB, t *Tracker) []frame {
	tb.Helper()
	var out []frame
	sent := t.Emit(func(tag uint64, multiple, nack bool) { out = append(out, frame{tag, multiple, nack}) })
	if sent != (len(out) > 0) {
		tb.Fatalf("Emit sent %d confirms and reported %v", len(out), sent)
	}
	return out
}

func TestTrackerCoalescesRuns(t *testing.T) {
	var tr Tracker
	for i := 0; i < 5; i++ {
		if got := tr.Next(); got != uint64(i+1) {
			t.Fatalf("Next = %d, want %d", got, i+1)
		}
	}
	tr.Ack(1)
	tr.Ack(2)
	tr.Nack(3)
	tr.Ack(5) // 4 unsettled: 5 must wait
	got := emit(t, &tr)
	want := []frame{{2, true, false}, {3, false, true}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("first emit = %v, want %v", got, want)
	}
	if tr.Outstanding() != 2 {
		t.Fatalf("Outstanding = %d, want 2", tr.Outstanding())
	}
	tr.Ack(4)
	got = emit(t, &tr)
	want = []frame{{5, true, false}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("second emit = %v, want %v", got, want)
	}
	if got := emit(t, &tr); got != nil {
		t.Fatalf("emit with nothing settled = %v", got)
	}
}

func TestTrackerSingleAndStale(t *testing.T) {
	var tr Tracker
	tr.Next()
	tr.Ack(1)
	tr.Ack(1)  // twice: no effect
	tr.Ack(99) // never published: ignored
	if got, want := emit(t, &tr), []frame{{1, false, false}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("emit = %v, want %v", got, want)
	}
	tr.Ack(1) // already reported: ignored
	if got := emit(t, &tr); got != nil {
		t.Fatalf("emit after stale ack = %v", got)
	}
}
