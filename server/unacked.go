package server

import "github.com/warrenmq/warren/queue"

// unackedRecord is one delivery awaiting ack, nack or reject.
type unackedRecord struct {
	tag   uint64
	rec   *queueRec
	entry queue.Entry
	cs    *consumer // nil for basic.get
	at    int64     // Server.clock when delivered; 0 with no consumer timeout
}

// unackedList holds a channel's outstanding deliveries in tag order. Tags
// are appended in increasing order, so lookups are binary searches; a
// record settled out of order leaves a hole (tag 0) that is skipped and
// compacted away.
type unackedList struct {
	recs []unackedRecord
	head int // recs[:head] are settled
	live int
}

// settleChunk is how many deliveries an ack, nack or reject of many
// (multiple) settles at a time: each chunk is taken from the list and
// handed to its queues before the next, so settling a million takes no
// more memory than settling settleChunk.
const settleChunk = 1024

// maxKeptRecs bounds the room a channel keeps in its emptied unacked list
// and its scratch buffers for settling: acking a million deliveries at
// once (multiple) must not leave tens of megabytes with the channel.
const maxKeptRecs = 4096

// trim returns s emptied, or nil if it has room for more than maxKeptRecs.
func trim[T any](s []T) []T {
	if cap(s) > maxKeptRecs {
		return nil
	}
	return s[:0]
}

func (l *unackedList) push(r unackedRecord) {
	l.recs = append(l.recs, r)
	l.live++
}

func (l *unackedList) find(tag uint64) int {
	recs := l.recs[l.head:]
	// Holes (tag 0) break plain ordering, so search on the neighbours' tags.
	lo, hi := 0, len(recs)
	for lo < hi {
		mid := (lo + hi) / 2
		t := recs[mid].tag
		if t == 0 {
			// find a live neighbour to compare with
			j := mid
			for j < hi && recs[j].tag == 0 {
				j++
			}
			if j == hi {
				hi = mid
				continue
			}
			t, mid = recs[j].tag, j
		}
		switch {
		case t == tag:
			return l.head + mid
		case t < tag:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return -1
}

// take removes the record with tag, or with multiple every record with a
// tag up to it (tag 0 with multiple: all), appending them to out; with
// limit above 0, at most limit records (the first ones).
func (l *unackedList) take(tag uint64, multiple bool, out []unackedRecord, limit int) []unackedRecord {
	if multiple {
		n := 0
		for i := l.head; i < len(l.recs) && (limit <= 0 || n < limit); i++ {
			r := l.recs[i]
			if r.tag == 0 {
				continue
			}
			if tag != 0 && r.tag > tag {
				break
			}
			n++
			out = append(out, r)
			l.recs[i] = unackedRecord{}
			l.live--
		}
	} else if i := l.find(tag); i >= 0 {
		out = append(out, l.recs[i])
		l.recs[i] = unackedRecord{}
		l.live--
	}
	l.compact()
	return out
}

// oldestStamp returns the at of the oldest outstanding delivery, 0 if
// none.
func (l *unackedList) oldestStamp() int64 {
	for i := l.head; i < len(l.recs); i++ {
		if l.recs[i].tag != 0 {
			return l.recs[i].at
		}
	}
	return 0
}

// lastTag returns the highest outstanding tag, 0 if there is none.
func (l *unackedList) lastTag() uint64 {
	for i := len(l.recs) - 1; i >= l.head; i-- {
		if t := l.recs[i].tag; t != 0 {
			return t
		}
	}
	return 0
}

func (l *unackedList) compact() {
	for l.head < len(l.recs) && l.recs[l.head].tag == 0 {
		l.head++
	}
	if l.head == len(l.recs) {
		l.recs, l.head = trim(l.recs), 0
		return
	}
	// Pack the live records (in order) to the front once settled slots,
	// before head or holes after it, outnumber them: neither an old
	// delivery left unacked nor a consumer that always has some deliveries
	// outstanding may make the list, and every find, grow with each later
	// delivery.
	dead := len(l.recs) - l.live
	if dead > 1024 && dead > l.live {
		n := 0
		for _, r := range l.recs[l.head:] {
			if r.tag != 0 {
				l.recs[n] = r
				n++
			}
		}
		clear(l.recs[n:])
		l.recs, l.head = l.recs[:n], 0
	}
}

// all removes and returns every record.
func (l *unackedList) all() []unackedRecord {
	return l.take(0, true, nil, 0)
}

// allExcept removes and returns every record whose tag is not in keep.
func (l *unackedList) allExcept(keep map[uint64]bool) []unackedRecord {
	if len(keep) == 0 {
		return l.all()
	}
	var out []unackedRecord
	for i := l.head; i < len(l.recs); i++ {
		if r := l.recs[i]; r.tag != 0 && !keep[r.tag] {
			out = append(out, r)
			l.recs[i] = unackedRecord{}
			l.live--
		}
	}
	l.compact()
	return out
}
