package queue

import (
	"errors"
	"fmt"
	"slices"
	"sync"
)

// fakeStore is an in-memory Store for the queue's unit tests. Nothing is
// written until the test says so: changes are logged into the pending batch,
// commit applies that batch to the committed entries and fail drops it. Both
// then tell the waiters, outside the store's lock, as the real commit loop
// does.
type fakeStore struct {
	// commitMu serialises commit and fail, so waiters hear of batches in
	// id order even when several goroutines commit.
	commitMu sync.Mutex

	mu         sync.Mutex // guards the fields below
	pending    uint64     // id of the batch changes are logged into
	ops        []storeOp  // the pending batch, in log order; dropped ops have kind 0
	putAt      map[storeKey]int
	markAt     map[storeKey][]int
	committed  map[storeKey]*storedRecord
	lastFailed uint64
	watchers   []watcher
	written    [opKinds]int // ops applied by committed batches, by kind
	strays     []storeOp    // written Delivered/Delete ops that found no entry
	overwrites []storeOp    // written Puts that found another message's entry already there
	loads      int          // Load calls
	loadErr    error        // if set, Load fails with it
}

type opKind uint8

const (
	opNone opKind = iota // coalesced away
	opPut
	opDelivered
	opDelete
	opDeleteRange
	opKinds
)

func (k opKind) String() string {
	return [...]string{"none", "put", "delivered", "delete", "deleteRange"}[k]
}

// storeOp is one logged change.
type storeOp struct {
	kind      opKind
	id, seq   uint64 // seq is lo for opDeleteRange
	hi        uint64 // opDeleteRange only
	msg       *Message
	expiresAt int64
	transient bool
}

func (o storeOp) String() string {
	switch o.kind {
	case opPut:
		return fmt.Sprintf("put(%d,%d,transient=%v)", o.id, o.seq, o.transient)
	case opDeleteRange:
		return fmt.Sprintf("deleteRange(%d,%d..%d)", o.id, o.seq, o.hi)
	}
	return fmt.Sprintf("%v(%d,%d)", o.kind, o.id, o.seq)
}

type storeKey struct{ id, seq uint64 }

// storedRecord is one committed entry.
type storedRecord struct {
	msg       Message  // a deep copy taken when the Put was written
	src       *Message // the message the Put was logged with; nil if preloaded
	expiresAt int64
	transient bool
	delivered bool
	corrupt   bool // Load stops at it with a *CorruptEntryError
}

type watcher struct {
	w     Waiter
	batch uint64
}

var _ Store = (*fakeStore)(nil)

func newFakeStore() *fakeStore {
	return &fakeStore{
		pending:   1,
		putAt:     map[storeKey]int{},
		markAt:    map[storeKey][]int{},
		committed: map[storeKey]*storedRecord{},
	}
}

func (fs *fakeStore) logLocked(op storeOp) uint64 {
	fs.ops = append(fs.ops, op)
	return fs.pending
}

func (fs *fakeStore) Put(id, seq uint64, m *Message, expiresAt int64, transient bool) uint64 {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.putAt[storeKey{id, seq}] = len(fs.ops)
	return fs.logLocked(storeOp{kind: opPut, id: id, seq: seq, msg: m, expiresAt: expiresAt, transient: transient})
}

func (fs *fakeStore) Delivered(id, seq uint64) uint64 {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	k := storeKey{id, seq}
	fs.markAt[k] = append(fs.markAt[k], len(fs.ops))
	return fs.logLocked(storeOp{kind: opDelivered, id: id, seq: seq})
}

// Delete drops the entry's pending Put and marks; if there was a pending
// Put, nothing at all is logged.
func (fs *fakeStore) Delete(id, seq uint64) uint64 {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	k := storeKey{id, seq}
	for _, i := range fs.markAt[k] {
		fs.ops[i].kind = opNone
	}
	delete(fs.markAt, k)
	if i, ok := fs.putAt[k]; ok {
		fs.ops[i].kind = opNone
		delete(fs.putAt, k)
		if _, ok := fs.committed[k]; !ok {
			return fs.pending
		}
	}
	return fs.logLocked(storeOp{kind: opDelete, id: id, seq: seq})
}

func (fs *fakeStore) DeleteRange(id, lo, hi uint64) uint64 {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.logLocked(storeOp{kind: opDeleteRange, id: id, seq: lo, hi: hi})
}

func (fs *fakeStore) Watch(w Waiter) uint64 {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.watchers = append(fs.watchers, watcher{w: w, batch: fs.pending})
	return fs.pending
}

func (fs *fakeStore) Pending() uint64 {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.pending
}

func (fs *fakeStore) Load(id, after, hi uint64, maxBytes int64, buf []Entry) ([]Entry, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.loads++
	if fs.loadErr != nil {
		return buf, fs.loadErr
	}
	var seqs []uint64
	for k := range fs.committed {
		if k.id == id && k.seq > after && k.seq <= hi {
			seqs = append(seqs, k.seq)
		}
	}
	slices.Sort(seqs)
	var total int64
	for _, seq := range seqs {
		r := fs.committed[storeKey{id, seq}]
		if r.corrupt {
			return buf, &CorruptEntryError{Seq: seq, Err: errors.New("bad bytes")}
		}
		m := r.msg
		m.Props = slices.Clone(m.Props)
		m.Body = slices.Clone(m.Body)
		buf = append(buf, Entry{Msg: &m, Seq: seq, Redelivered: r.delivered, Stored: true, ExpiresAt: r.expiresAt})
		total += EntryCost(&m)
		if total >= maxBytes {
			break
		}
	}
	return buf, nil
}

// takeLocked ends the pending batch and returns its id, its live ops and the
// waiters it completes.
func (fs *fakeStore) takeLocked() (batch uint64, ops []storeOp, done []Waiter) {
	batch = fs.pending
	for _, op := range fs.ops {
		if op.kind != opNone {
			ops = append(ops, op)
		}
	}
	fs.pending++
	fs.ops = nil
	clear(fs.putAt)
	clear(fs.markAt)
	keep := fs.watchers[:0]
	for _, w := range fs.watchers {
		if w.batch <= batch {
			done = append(done, w.w)
		} else {
			keep = append(keep, w)
		}
	}
	clear(fs.watchers[len(keep):])
	fs.watchers = keep
	return batch, ops, done
}

// commit writes the pending batch and tells its waiters. It returns the
// batch's id.
func (fs *fakeStore) commit() uint64 {
	fs.commitMu.Lock()
	defer fs.commitMu.Unlock()
	fs.mu.Lock()
	batch, ops, done := fs.takeLocked()
	for _, op := range ops {
		fs.applyLocked(op)
	}
	lastFailed := fs.lastFailed
	fs.mu.Unlock()
	for _, w := range done {
		w.Committed(batch, lastFailed)
	}
	return batch
}

// fail drops the pending batch, as a failed write would, and tells its
// waiters. It returns the batch's id.
func (fs *fakeStore) fail() uint64 {
	fs.commitMu.Lock()
	defer fs.commitMu.Unlock()
	fs.mu.Lock()
	batch, _, done := fs.takeLocked()
	fs.lastFailed = batch
	fs.mu.Unlock()
	for _, w := range done {
		w.Committed(batch, batch)
	}
	return batch
}

func (fs *fakeStore) applyLocked(op storeOp) {
	fs.written[op.kind]++
	k := storeKey{op.id, op.seq}
	switch op.kind {
	case opPut:
		delivered := false
		if r, ok := fs.committed[k]; ok {
			// The queue logs a spilled entry again when the batch
			// holding its write may have failed; if that write did
			// land, the second one just rewrites it, as the real store
			// does (keeping any delivered mark). A Put of another
			// message over the entry is a bug.
			if r.src == op.msg && r.transient == op.transient {
				delivered = r.delivered
			} else {
				fs.overwrites = append(fs.overwrites, op)
			}
		}
		m := *op.msg
		m.Props = slices.Clone(m.Props)
		m.Body = slices.Clone(m.Body)
		fs.committed[k] = &storedRecord{msg: m, src: op.msg, expiresAt: op.expiresAt, transient: op.transient, delivered: delivered}
	case opDelivered:
		if r, ok := fs.committed[k]; ok {
			r.delivered = true
		} else {
			fs.strays = append(fs.strays, op)
		}
	case opDelete:
		if _, ok := fs.committed[k]; ok {
			delete(fs.committed, k)
		} else {
			fs.strays = append(fs.strays, op)
		}
	case opDeleteRange:
		for k := range fs.committed {
			if k.id == op.id && k.seq >= op.seq && k.seq <= op.hi {
				delete(fs.committed, k)
			}
		}
	}
}

// preload writes an entry straight into the committed set, as if a
// previous run of the broker had stored it.
func (fs *fakeStore) preload(id, seq uint64, m *Message, delivered bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.committed[storeKey{id, seq}] = &storedRecord{msg: *m, delivered: delivered}
}

// preloadCorrupt commits an entry whose bytes, as far as Load can tell, do
// not make a message.
func (fs *fakeStore) preloadCorrupt(id, seq uint64) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.committed[storeKey{id, seq}] = &storedRecord{corrupt: true}
}

// failLoads makes Load fail with err until it is called with nil.
func (fs *fakeStore) failLoads(err error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.loadErr = err
}

// pendingOps returns the live ops of the pending batch, in log order.
func (fs *fakeStore) pendingOps() []storeOp {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var out []storeOp
	for _, op := range fs.ops {
		if op.kind != opNone {
			out = append(out, op)
		}
	}
	return out
}

// writes returns how many ops of kind committed batches have written.
func (fs *fakeStore) writes(kind opKind) int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.written[kind]
}

// totalWrites returns how many ops committed batches have written.
func (fs *fakeStore) totalWrites() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n := 0
	for _, c := range fs.written {
		n += c
	}
	return n
}

// stored returns the committed seqs of queue id, in order.
func (fs *fakeStore) stored(id uint64) []uint64 {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var seqs []uint64
	for k := range fs.committed {
		if k.id == id {
			seqs = append(seqs, k.seq)
		}
	}
	slices.Sort(seqs)
	return seqs
}

// record returns a copy of the committed entry (id, seq).
func (fs *fakeStore) record(id, seq uint64) (storedRecord, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	r, ok := fs.committed[storeKey{id, seq}]
	if !ok {
		return storedRecord{}, false
	}
	return *r, true
}

// loadCalls returns how many times Load was called.
func (fs *fakeStore) loadCalls() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.loads
}

// anomalies returns the written ops that found the store in a state the
// queue should never leave it in: marks or deletes of entries that are not
// there, and Puts over entries another message's Put wrote. (A Put of the
// same message again, as the queue logs after a batch that may have failed,
// is not one.)
func (fs *fakeStore) anomalies() (strays, overwrites []storeOp) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return slices.Clone(fs.strays), slices.Clone(fs.overwrites)
}
