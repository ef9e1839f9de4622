package server

import (
	"fmt"
	"testing"
)

// One delivery left unacked while later ones are acked one by one must not
// make the list grow with every delivery (nor every find scan them all).
func TestUnackedListStaysSmallAroundAnOldDelivery(t *testing.T) {
	var l unackedList
	l.push(unackedRecord{tag: 1})
	for tag := uint64(2); tag <= 200_000; tag++ {
		l.push(unackedRecord{tag: tag})
		if got := l.take(tag, false, nil, 0); len(got) != 1 || got[0].tag != tag {
			t.Fatalf("take(%d) = %v", tag, got)
		}
		if len(l.recs) > 4096 {
			t.Fatalf("after %d deliveries the list holds %d records for %d live", tag, len(l.recs), l.live)
		}
	}
	if l.live != 1 || l.find(1) < 0 {
		t.Fatalf("live = %d, find(1) = %d; want the old delivery still there", l.live, l.find(1))
	}
	if got := l.take(0, true, nil, 0); len(got) != 1 || got[0].tag != 1 {
		t.Fatalf("take all = %v, want [1]", got)
	}
}

// Multiple acks take exactly the records up to the tag, in order, across
// holes.
func TestUnackedListMultipleAcrossHoles(t *testing.T) {
	var l unackedList
	for tag := uint64(1); tag <= 10; tag++ {
		l.push(unackedRecord{tag: tag})
	}
	l.take(3, false, nil, 0)
	l.take(5, false, nil, 0)
	got := l.take(6, true, nil, 0)
	var tags []uint64
	for _, r := range got {
		tags = append(tags, r.tag)
	}
	if want := []uint64{1, 2, 4, 6}; len(tags) != len(want) || tags[0] != 1 || tags[1] != 2 || tags[2] != 4 || tags[3] != 6 {
		t.Fatalf("multiple ack of 6 took %v, want %v", tags, want)
	}
	if l.live != 4 || l.find(7) < 0 || l.find(6) >= 0 {
		t.Fatalf("live = %d, find(7) = %d, find(6) = %d", l.live, l.find(7), l.find(6))
	}
}

// A consumer that always has deliveries outstanding and acks them with
// multiple=true in runs (prefetch 1000, an ack every 100) must not make
// the list grow with every delivery: the settled head is given back.
func TestUnackedListStaysSmallWithRollingMultipleAcks(t *testing.T) {
	var l unackedList
	for tag := uint64(1); tag <= 500_000; tag++ {
		l.push(unackedRecord{tag: tag})
		if tag > 1000 && tag%100 == 0 {
			if got := l.take(tag-1000, true, nil, 0); len(got) != 100 {
				t.Fatalf("ack multiple %d took %d records, want 100", tag-1000, len(got))
			}
		}
		if cap(l.recs) > 8192 {
			t.Fatalf("after %d deliveries the list has room for %d records for %d live", tag, cap(l.recs), l.live)
		}
	}
	if l.live != 1000 || l.find(499_001) < 0 || l.find(499_000) >= 0 {
		t.Fatalf("live = %d; want the last 1000 deliveries outstanding", l.live)
	}
}

// One ack of many deliveries (multiple) leaves no room for them all behind
// in the emptied list; a few leave their room for the next deliveries.
func TestUnackedListGivesBackRoom(t *testing.T) {
	for _, c := range []struct {
		n    uint64
		kept bool
	}{{100, true}, {100_000, false}} {
		var l unackedList
		for tag := uint64(1); tag <= c.n; tag++ {
			l.push(unackedRecord{tag: tag})
		}
		if got := l.take(c.n, true, nil, 0); uint64(len(got)) != c.n || l.live != 0 {
			t.Fatalf("took %d of %d, %d live", len(got), c.n, l.live)
		}
		if kept := cap(l.recs) > 0; kept != c.kept || cap(l.recs) > maxKeptRecs {
			t.Errorf("after acking %d deliveries the list has room for %d, want room kept %v and at most %d", c.n, cap(l.recs), c.kept, maxKeptRecs)
		}
	}
}

// A limited take of many (multiple) takes the first ones, in order, and
// the next takes go on from there; lastTag is the highest outstanding.
func TestUnackedListTakeInChunks(t *testing.T) {
	var l unackedList
	for tag := uint64(1); tag <= 10; tag++ {
		l.push(unackedRecord{tag: tag})
	}
	l.take(10, false, nil, 0)
	if got := l.lastTag(); got != 9 {
		t.Fatalf("lastTag = %d, want 9", got)
	}
	var tags []uint64
	for {
		got := l.take(8, true, nil, 3)
		for _, r := range got {
			tags = append(tags, r.tag)
		}
		if len(got) < 3 {
			break
		}
	}
	if fmt.Sprint(tags) != "[1 2 3 4 5 6 7 8]" || l.live != 1 || l.lastTag() != 9 {
		t.Fatalf("took %v in chunks of 3, %d live, lastTag %d; want 1 to 8, and 9 left", tags, l.live, l.lastTag())
	}
}
