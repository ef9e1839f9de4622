package store

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/warrenmq/warren/internal/raceflag"
	"github.com/warrenmq/warren/queue"
)

// The write-ahead log. A batch is durable once its record is in the log
// and the log is fdatasynced: one sync, against bbolt's two per
// transaction (data pages, then the meta page). bbolt is brought up to
// date later, by checkpoints that apply many logged batches in one
// ordinary, fully synced bbolt transaction, which also records the last
// log sequence number (LSN) it holds. So the bbolt file on disk is always
// a consistent state of its own, and what it lacks is in the log.
//
// There are two log files. Records are appended to the current one; a
// checkpoint switches the logger to the other file, from its start, and
// applies what the first one holds. A file is only switched to after the
// checkpoint of its previous contents is in bbolt, so old records are
// never needed again and are simply overwritten. Both files are filled
// with zeros ahead of use and reused from the start, so a record's
// fdatasync flushes its data and not the file's size.
//
// A record is a 16-byte header and a payload:
//
//	lsn      uint64 BE, 1 for the first record ever, one more for each
//	length   uint32 BE, of the payload
//	crc      uint32 BE, CRC-32C of the lsn, the length and the payload
//	payload  the batch's ops (appendOps)
//
// Opening reads each file from its start while records are whole, their
// CRCs match and their LSNs follow one another, then applies, in order,
// those above the checkpoint's LSN. Records of an earlier use of a file
// have lower LSNs than anything after them, so they end a file's run; a
// record torn by a crash fails its CRC, and was never confirmed.

// WAL file names in the data directory.
var walNames = [2]string{"warren.wal.0", "warren.wal.1"}

const (
	walHeader = 16
	// walMinSize is the size each log file is first filled to. A file
	// grows (doubling, filled with zeros and synced) when a checkpoint's
	// worth of records does not fit.
	walMinSize = 1 << 20
	// maxWALRecord bounds a record's length when reading: a longer one
	// is taken as the end of the log.
	maxWALRecord = 1 << 31
)

// keyCheckpoint, in the meta bucket, is the LSN of the last log record a
// bbolt transaction applied (uint64 BE); absent means 0.
var keyCheckpoint = []byte("checkpoint")

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// wal is the two log files and where the next record goes. Owned by the
// logger, under Store.logMu.
type wal struct {
	files [2]*os.File
	size  [2]int64 // bytes each file is filled to
	cur   int      // the file records go to
	off   int64    // where the next record goes in files[cur]
	lsn   uint64   // the last LSN written
	buf   []byte   // the record being written
	// broken is set when a failed record could not be wiped out: from
	// then on every append fails, until the store is opened again (a
	// record that may or may not be on disk must not be followed by
	// others).
	broken error
	// syncFault, if set (tests), is called after a record's write in
	// place of its fdatasync.
	syncFault func() error
	// rawOK says append may write and sync a record with raw system calls
	// (rawio.go): not under the race detector; tests set
	// it to exercise them there too.
	rawOK bool
	// rawMaxCommit is rawMaxCommit, but tests may wait longer.
	rawMaxCommit time.Duration
	// lastRaw says the last record append wrote used raw system calls.
	lastRaw bool
	// syncs counts the fsyncs and fdatasyncs of the log files (Stats.Syncs);
	// read without logMu.
	syncs atomic.Uint64
}

// rawMaxRecord is the largest record append writes with a raw system
// call: a raw call keeps its P, and a stop-the-world waits for it.
const rawMaxRecord = 64 << 10

// openWAL opens (creating if need be) the log files in dir.
func openWAL(dir string) (*wal, error) {
	w := &wal{rawOK: rawIO && !raceflag.Enabled, rawMaxCommit: rawMaxCommit}
	created := false
	for i, name := range walNames {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			w.close()
			return nil, fmt.Errorf("open log: %w", err)
		}
		w.files[i] = f
		fi, err := f.Stat()
		if err != nil {
			w.close()
			return nil, fmt.Errorf("open log: %w", err)
		}
		w.size[i] = fi.Size()
		if w.size[i] < walMinSize {
			created = true
			if err := w.fill(i, walMinSize); err != nil {
				w.close()
				return nil, err
			}
		}
	}
	if created {
		// The files' names must be on disk before records in them count.
		if err := syncDir(dir); err != nil {
			w.close()
			return nil, err
		}
	}
	return w, nil
}

// syncDir fsyncs a directory, making the names in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// fill writes zeros to file i from its current size up to size, and
// fsyncs it, size included.
func (w *wal) fill(i int, size int64) error {
	zeros := make([]byte, 256<<10)
	f := w.files[i]
	for off := w.size[i]; off < size; {
		n := min(int64(len(zeros)), size-off)
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			return fmt.Errorf("grow log %s: %w", f.Name(), err)
		}
		off += n
	}
	w.syncs.Add(1)
	if err := f.Sync(); err != nil {
		return fmt.Errorf("grow log %s: %w", f.Name(), err)
	}
	w.size[i] = size
	return nil
}

func (w *wal) close() error {
	var errs []error
	for i, f := range w.files {
		if f != nil {
			errs = append(errs, f.Close())
			w.files[i] = nil
		}
	}
	return errors.Join(errs...)
}

// append writes ops as the next record and fdatasyncs it, with raw system
// calls if raw is set, w.rawOK and the record is small. It returns the
// number of bytes written, 0 if no op needed logging (then nothing is
// written). On error the record does not count: the next one is written
// in its place, with the same LSN.
func (w *wal) append(ops []op, raw bool) (int, error) {
	w.buf = append(w.buf[:0], make([]byte, walHeader)...)
	var n int
	var err error
	if w.buf, n, err = appendOps(w.buf, ops); err != nil || n == 0 {
		return 0, err
	}
	if w.broken != nil {
		return 0, fmt.Errorf("log is unusable until the store is reopened: %w", w.broken)
	}
	length := len(w.buf) - walHeader
	if int64(length) >= maxWALRecord {
		return 0, fmt.Errorf("log record of %d bytes is too large", length)
	}
	lsn := w.lsn + 1
	binary.BigEndian.PutUint64(w.buf[0:], lsn)
	binary.BigEndian.PutUint32(w.buf[8:], uint32(length))
	crc := crc32.Update(0, crcTable, w.buf[:12])
	crc = crc32.Update(crc, crcTable, w.buf[walHeader:])
	binary.BigEndian.PutUint32(w.buf[12:], crc)

	end := w.off + int64(len(w.buf))
	if end > w.size[w.cur] {
		if err := w.fill(w.cur, max(2*w.size[w.cur], (end+walMinSize-1)/walMinSize*walMinSize)); err != nil {
			return 0, err
		}
	}
	f := w.files[w.cur]
	raw = raw && w.rawOK && len(w.buf) <= rawMaxRecord
	w.lastRaw = raw
	if raw {
		err = rawWriteAt(f, w.buf, w.off)
	} else {
		_, err = f.WriteAt(w.buf, w.off)
	}
	if err != nil {
		return 0, w.wipe(fmt.Errorf("write log %s: %w", f.Name(), err))
	}
	if w.syncFault != nil {
		err = w.syncFault()
	} else {
		w.syncs.Add(1)
		err = fdatasync(f, raw)
	}
	if err != nil {
		return 0, w.wipe(fmt.Errorf("sync log %s: %w", f.Name(), err))
	}
	w.off = end
	w.lsn = lsn
	n = len(w.buf)
	if cap(w.buf) > maxKeptArena {
		w.buf = nil
	}
	return n, nil
}

// wipe zeroes the header of a record whose write failed, which may have
// reached the disk whole (a failed fdatasync leaves the data in the page
// cache), so that it ends the log: its batch was reported failed, and
// the next record takes its place. If that fails too, the log is marked
// broken. It returns err.
func (w *wal) wipe(err error) error {
	f := w.files[w.cur]
	var zero [walHeader]byte
	if _, werr := f.WriteAt(zero[:], w.off); werr != nil {
		w.broken = werr
		return err
	}
	w.syncs.Add(1)
	if serr := fdatasync(f, false); serr != nil {
		w.broken = serr
	}
	return err
}

// fdatasync flushes f's data, and only the metadata needed to read it,
// through the runtime or, with raw, as a raw system call (rawio.go).
func fdatasync(f *os.File, raw bool) error {
	for {
		var err error
		if raw {
			if _, _, e := unix.RawSyscall(unix.SYS_FDATASYNC, f.Fd(), 0, 0); e != 0 {
				err = e
			}
		} else {
			err = unix.Fdatasync(int(f.Fd()))
		}
		if err != unix.EINTR {
			return err
		}
	}
}

// switchFile makes records go to the start of the other file. The caller
// must know that file's records are all checkpointed.
func (w *wal) switchFile() {
	w.cur ^= 1
	w.off = 0
}

// Log op kinds. They are the file format: never renumber.
const (
	logPut            = 1
	logDelivered      = 2
	logDelete         = 3
	logDeleteRange    = 4
	logPutExchange    = 5
	logDeleteExchange = 6
	logPutQueue       = 7
	logDeleteQueue    = 8
	logPutBinding     = 9
	logDeleteBinding  = 10
	logPutShared      = 11
)

// sharedRecent is how far back a put looks for another of the same
// message: appendOps among the record's last puts that carried one, and
// batch.add among the batch's last ops. A message routed to several
// durable queues is put to each in turn, perhaps between other
// connections' ops.
const sharedRecent = 4

// appendOps appends the ops that must survive a crash: every live op but
// the writes of transient entries, which the next Open drops anyway. It
// returns the buffer and how many ops it appended, or an error for a
// record that does not encode (bbolt would refuse it too). Each op is a kind byte
// and then:
//
//	put              queue id, seq (uvarints), record (uvarint length, bytes)
//	put shared       queue id, seq, op (uvarint: the number in this record,
//	                 from 0, of the put whose message it shares), then a
//	                 record of no message (its own flags and expiry)
//	delivered/delete queue id, seq
//	delete range     queue id, lo, hi
//	put exchange     name, value (each uvarint length, bytes), as in bbolt
//	delete exchange  name
//	put queue        name, value
//	delete queue     queue id, name
//	binding ops      key (with a zero sequence number), value, as in bbolt
//
// A message put to several queues (a fanout to durable queues) is written
// once per record: its later puts are "put shared", which name the put
// that carries it.
func appendOps(b []byte, ops []op) ([]byte, int, error) {
	n := 0
	// recent are the last puts that carried their message, and the
	// numbers of their ops in the record.
	var recent [sharedRecent]carrier
	next := 0
	for i := range ops {
		o := &ops[i]
		switch o.kind {
		case opNone:
			continue
		case opPut:
			if o.transient {
				continue
			}
			if j := sharedPut(recent[:], o.msg); j >= 0 {
				b = append(b, logPutShared)
				b = binary.AppendUvarint(b, o.id)
				b = binary.AppendUvarint(b, o.seq)
				b = binary.AppendUvarint(b, uint64(j))
				b = binary.AppendUvarint(b, uint64(recordSize(nil)))
				b = appendRecordFlags(b, nil, o.expiresAt, o.delivered)
				break
			}
			size := recordSize(o.msg)
			if size > bbolt.MaxValueSize {
				return b, n, fmt.Errorf("queue %d entry %d: %d bytes is more than the store holds", o.id, o.seq, size)
			}
			if need := len(b) + 1 + 3*binary.MaxVarintLen64 + size; need > cap(b) {
				// Grow by doubling: append grows a large slice by a
				// quarter, copying it each time.
				nb := make([]byte, len(b), max(need, 2*cap(b)))
				copy(nb, b)
				b = nb
			}
			b = append(b, logPut)
			b = binary.AppendUvarint(b, o.id)
			b = binary.AppendUvarint(b, o.seq)
			b = binary.AppendUvarint(b, uint64(size))
			b = appendRecordFlags(b, o.msg, o.expiresAt, o.delivered)
			if o.msg != nil {
				recent[next] = carrier{o.msg, n}
				next = (next + 1) % sharedRecent
			}
		case opDelivered, opDelete:
			k := byte(logDelivered)
			if o.kind == opDelete {
				k = logDelete
			}
			b = append(b, k)
			b = binary.AppendUvarint(b, o.id)
			b = binary.AppendUvarint(b, o.seq)
		case opDeleteRange:
			b = append(b, logDeleteRange)
			b = binary.AppendUvarint(b, o.id)
			b = binary.AppendUvarint(b, o.seq)
			b = binary.AppendUvarint(b, o.hi)
		case opPutExchange:
			r := o.topo.(*ExchangeRecord)
			v, err := encodeExchange(r)
			if b, err = appendKeyed(b, logPutExchange, []byte(r.Name), v, err); err != nil {
				return b, n, fmt.Errorf("exchange %q: %w", r.Name, err)
			}
		case opDeleteExchange:
			b = appendField(append(b, logDeleteExchange), []byte(o.topo.(string)))
		case opPutQueue:
			r := o.topo.(*QueueRecord)
			v, err := encodeQueue(r)
			if b, err = appendKeyed(b, logPutQueue, []byte(r.Name), v, err); err != nil {
				return b, n, fmt.Errorf("queue %q: %w", r.Name, err)
			}
		case opDeleteQueue:
			b = binary.AppendUvarint(append(b, logDeleteQueue), o.id)
			b = appendField(b, []byte(o.topo.(string)))
		case opPutBinding, opDeleteBinding:
			r := o.topo.(*BindingRecord)
			k := byte(logPutBinding)
			if o.kind == opDeleteBinding {
				k = logDeleteBinding
			}
			v, err := encodeBinding(r)
			key := append(bindingPrefix(r), make([]byte, 8)...)
			if b, err = appendKeyed(b, k, key, v, err); err != nil {
				return b, n, fmt.Errorf("binding %q -> %q: %w", r.Source, r.Destination, err)
			}
		default:
			continue
		}
		n++
	}
	return b, n, nil
}

// carrier is a put that carried its message, and its op's number in the
// record.
type carrier struct {
	msg *queue.Message
	n   int
}

// sharedPut returns the number of the op in recent that carries m, or -1.
func sharedPut(recent []carrier, m *queue.Message) int {
	if m == nil {
		return -1
	}
	for _, r := range recent {
		if r.msg == m {
			return r.n
		}
	}
	return -1
}

// appendKeyed appends a topology op: its kind, then key and value as
// bbolt holds them. encErr is the value's encoding error; a key bbolt
// would refuse is an error too, so its batch fails when it is logged, not
// at every checkpoint after.
func appendKeyed(b []byte, kind byte, key, v []byte, encErr error) ([]byte, error) {
	if encErr != nil {
		return b, encErr
	}
	if len(key) > bbolt.MaxKeySize {
		return b, fmt.Errorf("key of %d bytes is too long", len(key))
	}
	b = appendField(append(b, kind), key)
	return appendField(b, v), nil
}

func appendField(b, f []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(f)))
	return append(b, f...)
}

// decodeOps appends to ops the ops of a record's payload. Messages and
// names are built from copies of p's bytes.
func decodeOps(p []byte, ops []op) ([]op, error) {
	start := len(ops) // this record's first op
	for len(p) > 0 {
		kind := p[0]
		p = p[1:]
		var o op
		var err error
		switch kind {
		case logPut, logPutShared:
			if o.id, p, err = readUvarint(p); err != nil {
				return ops, err
			}
			if o.seq, p, err = readUvarint(p); err != nil {
				return ops, err
			}
			var shared *queue.Message
			if kind == logPutShared {
				var j uint64
				if j, p, err = readUvarint(p); err != nil {
					return ops, err
				}
				if j >= uint64(len(ops)-start) || ops[start+int(j)].kind != opPut || ops[start+int(j)].msg == nil {
					return ops, fmt.Errorf("%w: shared put names op %d of %d, not a put", errCorrupt, j, len(ops)-start)
				}
				shared = ops[start+int(j)].msg
			}
			var v []byte
			if v, p, err = readBytes(p, "log record"); err != nil {
				return ops, err
			}
			r, err := decodeRecord(v)
			if err != nil {
				return ops, err
			}
			o.kind, o.expiresAt, o.delivered, o.msg = opPut, r.expiresAt, r.delivered, shared
			if shared == nil {
				o.msg = r.message(true, nil)
			}
		case logDelivered, logDelete:
			o.kind = opDelivered
			if kind == logDelete {
				o.kind = opDelete
			}
			if o.id, p, err = readUvarint(p); err != nil {
				return ops, err
			}
			if o.seq, p, err = readUvarint(p); err != nil {
				return ops, err
			}
		case logDeleteRange:
			o.kind = opDeleteRange
			if o.id, p, err = readUvarint(p); err != nil {
				return ops, err
			}
			if o.seq, p, err = readUvarint(p); err != nil {
				return ops, err
			}
			if o.hi, p, err = readUvarint(p); err != nil {
				return ops, err
			}
		case logPutExchange, logPutQueue, logPutBinding, logDeleteBinding:
			var k, v []byte
			if k, p, err = readBytes(p, "log key"); err != nil {
				return ops, err
			}
			if v, p, err = readBytes(p, "log value"); err != nil {
				return ops, err
			}
			switch kind {
			case logPutExchange:
				r, err := decodeExchange(k, v)
				if err != nil {
					return ops, err
				}
				o.kind, o.topo = opPutExchange, &r
			case logPutQueue:
				r, err := decodeQueue(k, v)
				if err != nil {
					return ops, err
				}
				o.kind, o.topo = opPutQueue, &r
			default:
				r, err := decodeBinding(k, v)
				if err != nil {
					return ops, err
				}
				o.kind, o.topo = opPutBinding, &r
				if kind == logDeleteBinding {
					o.kind = opDeleteBinding
				}
			}
		case logDeleteExchange:
			var name []byte
			if name, p, err = readBytes(p, "log exchange name"); err != nil {
				return ops, err
			}
			o.kind, o.topo = opDeleteExchange, string(name)
		case logDeleteQueue:
			var name []byte
			if o.id, p, err = readUvarint(p); err != nil {
				return ops, err
			}
			if name, p, err = readBytes(p, "log queue name"); err != nil {
				return ops, err
			}
			o.kind, o.topo = opDeleteQueue, string(name)
		default:
			return ops, fmt.Errorf("%w: unknown log op %d", errCorrupt, kind)
		}
		ops = append(ops, o)
	}
	return ops, nil
}

func readUvarint(b []byte) (uint64, []byte, error) {
	n, l := binary.Uvarint(b)
	if l <= 0 {
		return 0, b, fmt.Errorf("%w: bad number in log", errCorrupt)
	}
	return n, b[l:], nil
}

// walRecord is one record read back from a log file.
type walRecord struct {
	lsn     uint64
	payload []byte
}

// readRun returns the records at the start of r, up to the first that is
// not whole, fails its CRC or does not follow the one before.
func readRun(r io.ReaderAt, size int64) ([]walRecord, error) {
	var recs []walRecord
	var hdr [walHeader]byte
	var off int64
	for off+walHeader <= size {
		if _, err := r.ReadAt(hdr[:], off); err != nil {
			return nil, err
		}
		lsn := binary.BigEndian.Uint64(hdr[0:])
		length := int64(binary.BigEndian.Uint32(hdr[8:]))
		if lsn == 0 || length >= maxWALRecord || length > size-off-walHeader {
			break
		}
		if len(recs) > 0 && lsn != recs[len(recs)-1].lsn+1 {
			break
		}
		payload := make([]byte, length)
		if _, err := r.ReadAt(payload, off+walHeader); err != nil {
			return nil, err
		}
		crc := crc32.Update(0, crcTable, hdr[:12])
		if crc32.Update(crc, crcTable, payload) != binary.BigEndian.Uint32(hdr[12:]) {
			break
		}
		recs = append(recs, walRecord{lsn, payload})
		off += walHeader + length
	}
	return recs, nil
}

// readLog returns the records of the run at the start of each file.
func readLog(files []*os.File) ([]walRecord, error) {
	var recs []walRecord
	for _, f := range files {
		fi, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("read log: %w", err)
		}
		run, err := readRun(f, fi.Size())
		if err != nil {
			return nil, fmt.Errorf("read log %s: %w", f.Name(), err)
		}
		recs = append(recs, run...)
	}
	return recs, nil
}

// pendingRecords returns, in order, the records of recs after ckpt, and an
// error if one is missing between ckpt and the last of them.
func pendingRecords(recs []walRecord, ckpt uint64) ([]walRecord, error) {
	var out []walRecord
	for _, r := range recs {
		if r.lsn > ckpt {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b walRecord) int { return cmp.Compare(a.lsn, b.lsn) })
	for i, r := range out {
		if want := ckpt + uint64(i) + 1; r.lsn != want {
			return nil, fmt.Errorf("%w: log record %d is missing (bbolt holds up to %d, the log has %d)", errCorrupt, want, ckpt, r.lsn)
		}
	}
	return out, nil
}

// checkpointOf returns the LSN recorded in tx's meta bucket.
func checkpointOf(tx *bbolt.Tx) uint64 {
	v := tx.Bucket(bucketMeta).Get(keyCheckpoint)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// putCheckpoint records lsn in tx's meta bucket.
func putCheckpoint(tx *bbolt.Tx, lsn uint64) error {
	return tx.Bucket(bucketMeta).Put(keyCheckpoint, binary.BigEndian.AppendUint64(nil, lsn))
}

// replay applies the log records that bbolt lacks, in one transaction, and
// leaves w writing after the last of them. It returns how many it applied.
func (s *Store) replay(w *wal) (int, error) {
	var ckpt uint64
	if err := s.db.View(func(tx *bbolt.Tx) error {
		ckpt = checkpointOf(tx)
		return nil
	}); err != nil {
		return 0, err
	}
	all, err := readLog(w.files[:])
	if err != nil {
		return 0, err
	}
	recs, err := pendingRecords(all, ckpt)
	if err != nil {
		return 0, err
	}
	w.lsn = ckpt
	if len(recs) > 0 {
		last := recs[len(recs)-1].lsn
		err := s.db.Update(func(tx *bbolt.Tx) error {
			var ops []op
			for _, r := range recs {
				var err error
				if ops, err = decodeOps(r.payload, ops[:0]); err != nil {
					return fmt.Errorf("log record %d: %w", r.lsn, err)
				}
				if err := s.applyOps(tx, ops); err != nil {
					return fmt.Errorf("log record %d: %w", r.lsn, err)
				}
			}
			if err := s.writeCounters(); err != nil {
				return err
			}
			return putCheckpoint(tx, last)
		})
		s.resetScratch()
		if err != nil {
			return 0, fmt.Errorf("replay log: %w", err)
		}
		w.lsn = last
	}
	w.cur, w.off = 0, 0
	return len(recs), nil
}
