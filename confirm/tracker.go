package confirm

type outcome uint8

const (
	unsettled outcome = iota
	acked
	nacked
)

// Tracker is one channel's confirm state. The zero value is ready to use.
type Tracker struct {
	published uint64 // the last sequence number handed out
	reported  uint64 // every sequence number <= reported has been emitted
	// outcomes[i] is the outcome of sequence number reported+1+i.
	outcomes []outcome
}

// Next assigns the next publish sequence number (the first is 1).
func (t *Tracker) Next() uint64 {
	t.published++
	t.outcomes = append(t.outcomes, unsettled)
	return t.published
}

// Ack records that seq is safely handled.
func (t *Tracker) Ack(seq uint64) { t.settle(seq, acked) }

// Nack records that seq could not be handled.
func (t *Tracker) Nack(seq uint64) { t.settle(seq, nacked) }

func (t *Tracker) settle(seq uint64, o outcome) {
	if seq <= t.reported || seq > t.published {
		return
	}
	t.outcomes[seq-t.reported-1] = o
}

// Outstanding is the number of publishes not yet emitted.
func (t *Tracker) Outstanding() int { return len(t.outcomes) }

// Emit calls send for the settled prefix, in tag order, coalescing each run
// of equal outcomes into one call with multiple=true (when the run is longer
// than one) on its last tag. It reports whether it called send at all.
func (t *Tracker) Emit(send func(tag uint64, multiple, nack bool)) bool {
	i := 0
	for i < len(t.outcomes) && t.outcomes[i] != unsettled {
		o := t.outcomes[i]
		j := i + 1
		for j < len(t.outcomes) && t.outcomes[j] == o {
			j++
		}
		send(t.reported+uint64(j), j-i > 1, o == nacked)
		i = j
	}
	if i == 0 {
		return false
	}
	t.reported += uint64(i)
	n := copy(t.outcomes, t.outcomes[i:])
	t.outcomes = t.outcomes[:n]
	return true
}
