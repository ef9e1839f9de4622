package store

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
)

// FileName is the name of the store's file in its data directory.
const FileName = "warren.db"

// SchemaVersion is the layout version this package reads and writes, kept
// in the meta bucket.
const SchemaVersion = 1

// DefaultLockTimeout is how long Open waits for the file lock when
// Options.LockTimeout is 0.
const DefaultLockTimeout = 200 * time.Millisecond

// initialMmapSize is the size bbolt maps at open. It is address space, not
// memory, and saves remapping (which waits for readers) as the file grows.
const initialMmapSize = 256 << 20

// filePageSize is the page size of the bbolt files the store creates (a
// new data dir, and the copy a compaction writes); a file keeps the page
// size it was created with. bbolt keeps one in-memory entry for every free
// page of the file, so with the operating system's 4 KiB pages a drained
// backlog of 10M x 1 KiB messages grew the heap by about 13 MB per million
// messages drained, until the compaction at its end. 16 KiB pages have a
// quarter of the entries; they also hold 1 KiB messages more densely. A
// var so that tests can create files as older versions did.
var filePageSize = 16 << 10

var (
	// ErrLocked is returned (wrapped, with the directory) by Open and
	// CheckDir when another process holds the store's file lock. The error
	// also wraps bbolt.ErrTimeout.
	ErrLocked = errors.New("store is in use by another process")
	// ErrSchema is returned (wrapped) by Open and CheckDir for a file
	// whose schema version this package does not read.
	ErrSchema = errors.New("unsupported store schema version")
	// ErrClosed is returned by Wait for a batch logged after Close.
	ErrClosed = errors.New("store is closed")
)

// Options configures Open. The zero value is ready to use.
type Options struct {
	// Logger receives failed commits (Error level) and other events. nil
	// discards them.
	Logger *slog.Logger
	// LockTimeout is how long Open waits for the file lock held by another
	// process before giving up with ErrLocked. 0 means DefaultLockTimeout.
	LockTimeout time.Duration
	// Fault, if set, is called at the start of every commit; a non-nil
	// error fails that batch exactly as a write error from the disk would
	// (the transaction is rolled back). For tests.
	Fault func() error
	// CheckpointFault, if set, is called at the start of every checkpoint,
	// in its bbolt transaction; a non-nil error fails the checkpoint as a
	// bbolt error would (it is retried). For tests, which may also block
	// in it to stand for a slow disk.
	CheckpointFault func() error
}

// Store is the broker's disk state: one bbolt file holding durable topology
// and queue entries. It implements queue.Store. Its methods are safe for
// concurrent use.
type Store struct {
	// db is the bbolt file. The checkpointer, its only writer, replaces
	// it after a compaction (compact.go) holding dbMu, and reads it
	// without; everyone else holds dbMu shared while using it (view,
	// update).
	db   *bbolt.DB
	dbMu sync.RWMutex // guards db as above; a leaf
	dir  string
	// dirLock holds the data dir's lock (lockDir) until Close.
	dirLock *os.File
	log     *slog.Logger
	fault   func() error

	// lastQueueID is the last id NewQueueID handed out.
	lastQueueID atomic.Uint64
	stats       statCounters
	// readSinceUnmap counts entries loaded since the file was last
	// unmapped (see unmapAfterReads).
	readSinceUnmap atomic.Int64

	mu sync.Mutex // guards the fields below; a leaf lock, taken under queue locks
	// work is signalled (on mu) when pending becomes ready or closing is set.
	work *sync.Cond
	// pending is the batch changes are logged into now.
	pending *batch
	// closing asks the commit loop to write pending and stop.
	closing bool
	// closed is set by the commit loop as it takes its last batch; changes
	// logged after it are dropped.
	closed bool
	// holds counts Hold calls not yet Released; the commit loop does not
	// take the pending batch while it is above zero.
	holds int
	// lazyTimer (made once, in Open) sets lazyDue when a batch no one
	// waits for has waited lazyDelay; lazyArmed says it is running.
	lazyTimer          *time.Timer
	lazyDue, lazyArmed bool

	doneMu sync.Mutex // guards the fields below
	// doneCond is signalled (on doneMu) whenever done or stopped changes.
	doneCond *sync.Cond
	// done is the id of the last batch the checkpointer finished (in
	// bbolt); synced, of the last batch the logger finished (on disk).
	done, synced uint64
	// lastFailed is the id of the latest failed batch, 0 if none.
	lastFailed uint64
	// lastErr is the error of batch lastFailed.
	lastErr error
	// stopped is set when the commit loop has exited.
	stopped bool

	logMu sync.Mutex // guards the fields below; a leaf, taken by the logger and the checkpointer
	// wal is the log; the logger writes it, the checkpointer switches its
	// file.
	wal *wal
	// group is the batches the logger has finished (logged or failed)
	// since the checkpointer last took them, in order; groupBytes is the
	// bytes they hold (batch.bytes), and applyingBytes those of the group
	// the checkpointer is applying; groupWrites and applyingWrites are
	// what they will write to bbolt (batch.writes).
	group                       []*batch
	groupBytes, applyingBytes   int64
	groupWrites, applyingWrites int64
	// ckptDone is signalled (on logMu) when a checkpoint ends: the logger
	// waits on it when too much is unapplied.
	ckptDone *sync.Cond
	// urgent asks for a checkpoint now: a Wait wants a batch of group, or
	// the store is closing.
	urgent bool
	// loggerDone is set with the logger's last batch.
	loggerDone bool
	// free is batches to reuse as the pending one.
	free []*batch

	// backlog is the bytes (op.bytes) of the live ops of every batch not
	// yet checkpointed, pending, being logged or logged: the batches add
	// and take away their ops' bytes as they change (batch.add, cancel),
	// the logger takes away those of a failed batch and the checkpointer
	// those of a group it is done with. Over reads it (flow.go).
	backlog atomic.Int64
	flowMu  sync.Mutex // guards flow; a leaf
	// flow is closed once the backlog is down to flowResume; nil until
	// Throttle asks for it.
	flow chan struct{}

	// pauseCheckpoints keeps the checkpointer from starting one until the
	// store closes. For tests: with it, bbolt's file stays as it is and a
	// copy of the directory is what a crash would leave.
	pauseCheckpoints atomic.Bool
	// closingNow is set by Close: the logger stops waiting for the
	// checkpointer, so a failing disk cannot keep Close waiting.
	closingNow atomic.Bool
	// ckptFault (Options.CheckpointFault; tests may set it before any
	// change is logged) fails checkpoints as a bbolt error would.
	ckptFault func() error

	// ckptWake wakes the checkpointer (buffered, one slot).
	ckptWake chan struct{}
	// loopDone is closed when the checkpointer, and so the logger, has
	// exited.
	loopDone  chan struct{}
	closeOnce sync.Once
	closeErr  error // set by closeOnce

	// Owned by the checkpointer (and by Open before it starts).
	arena []byte // record bytes of the transaction being written
	// usedChunks are the arena's chunks in this transaction, spareChunks
	// those kept for the next (alloc).
	usedChunks, spareChunks [][]byte
	cache                   map[uint64]*queueBuckets // bucket handles of the transaction being written
	coalescePuts            map[entryKey]coalescePut // coalesce's scratch
	coalesceGens            map[uint64]uint64        // coalesce's scratch
	// dirUnsynced says a compaction renamed its file but could not sync
	// the directory: the next checkpoint must not be written until it is
	// (compact.go).
	dirUnsynced bool
	// compactAfter is when a compaction may be tried again after one
	// failed.
	compactAfter time.Time
	// dirSyncFault, if set (tests, before any change is logged), fails
	// the data dir's syncs after a compaction's rename.
	dirSyncFault func() error
}

// lockedError is Open's error when the file lock is held elsewhere.
type lockedError struct {
	dir, path string
	timeout   time.Duration
}

func (e *lockedError) Error() string {
	return fmt.Sprintf("data dir %q is in use by another Warren (could not lock %s within %v)", e.dir, e.path, e.timeout)
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *lockedError) Is(target error) bool { return target == ErrLocked }

// Unwrap returns bbolt.ErrTimeout.
func (e *lockedError) Unwrap() error { return bbolt.ErrTimeout }

// openDB opens dir's bbolt file with Warren's options.
func openDB(dir string, timeout time.Duration, readOnly bool) (*bbolt.DB, error) {
	return openFile(dir, filepath.Join(dir, FileName), timeout, readOnly)
}

// openFile opens the bbolt file at path, in the data dir dir, with
// Warren's options.
func openFile(dir, path string, timeout time.Duration, readOnly bool) (*bbolt.DB, error) {
	if timeout <= 0 {
		timeout = DefaultLockTimeout
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:      timeout,
		FreelistType: bbolt.FreelistMapType,
		// Commits do not write the free page list: with a large drained
		// backlog it is megabytes, rewritten by every commit (a 10M x
		// 1 KiB drain ran at 32k msg/s with it, 78k without). Close writes
		// it once, so a clean restart reads it; after a crash Open rebuilds
		// it by walking the file's pages (about 1 s for 1M messages).
		NoFreelistSync:  true,
		InitialMmapSize: initialMmapSize,
		ReadOnly:        readOnly,
		PageSize:        filePageSize, // used only when creating the file
	})
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, &lockedError{dir: dir, path: path, timeout: timeout}
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return db, nil
}

// Open opens the store in dir, creating dir and the file if need be, and
// starts its commit loop. It fails with ErrLocked if another process has
// the store open, and with ErrSchema if the file has another layout
// version. Call Recover before using the store's contents.
func Open(dir string, opts Options) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("store dir: %w", err)
	}
	dirLock, err := lockDir(dir, opts.LockTimeout, true)
	if err != nil {
		return nil, err
	}
	opened := false
	defer func() {
		if !opened {
			dirLock.Close()
		}
	}()
	db, err := openDB(dir, opts.LockTimeout, false)
	if err != nil {
		return nil, err
	}
	if err := removeCompactionFile(dir); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	var lastID uint64
	var size int64
	var fresh bool // the bbolt file was new
	err = db.Update(func(tx *bbolt.Tx) error {
		k, _ := tx.Cursor().First()
		fresh = k == nil
		if err := initSchema(tx); err != nil {
			return err
		}
		var err error
		lastID, err = maxQueueID(tx)
		size = tx.Size()
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", filepath.Join(dir, FileName), err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{
		db:           db,
		dir:          dir,
		dirLock:      dirLock,
		log:          log,
		fault:        opts.Fault,
		ckptFault:    opts.CheckpointFault,
		ckptWake:     make(chan struct{}, 1),
		loopDone:     make(chan struct{}),
		cache:        make(map[uint64]*queueBuckets),
		coalescePuts: make(map[entryKey]coalescePut),
		coalesceGens: make(map[uint64]uint64),
	}
	s.pending = newBatch(1, &s.backlog)
	s.work = sync.NewCond(&s.mu)
	s.doneCond = sync.NewCond(&s.doneMu)
	s.ckptDone = sync.NewCond(&s.logMu)
	s.lazyTimer = time.AfterFunc(time.Hour, s.lazyFired)
	s.lazyTimer.Stop()
	if fresh {
		// Log files left beside a new bbolt file (one deleted by hand)
		// belong to another store: their records must not be applied.
		for _, name := range walNames {
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				db.Close()
				return nil, fmt.Errorf("open store: %w", err)
			}
		}
	}
	if s.wal, err = openWAL(dir); err != nil {
		db.Close()
		return nil, err
	}
	replayed, err := s.replay(s.wal)
	if err != nil {
		s.wal.close()
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", filepath.Join(dir, FileName), err)
	}
	if replayed > 0 {
		log.Info("store: applied log records written before an unclean stop", "records", replayed)
		if err := db.View(func(tx *bbolt.Tx) error {
			var err error
			lastID, err = maxQueueID(tx)
			size = tx.Size()
			return err
		}); err != nil {
			s.wal.close()
			db.Close()
			return nil, fmt.Errorf("open store %s: %w", filepath.Join(dir, FileName), err)
		}
	}
	s.lastQueueID.Store(lastID)
	s.noteSize(db, size)
	s.wal.syncs.Store(0) // Stats.Syncs counts from here
	go s.loop()
	go s.checkpointLoop()
	opened = true
	return s, nil
}

// initSchema writes the meta bucket and the top-level buckets into a new
// file, or checks the schema version of an existing one.
func initSchema(tx *bbolt.Tx) error {
	if k, _ := tx.Cursor().First(); k == nil {
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		if err := meta.Put(keySchema, schemaValue()); err != nil {
			return err
		}
	} else if err := checkSchema(tx); err != nil {
		return err
	}
	for _, name := range topBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}

// checkSchema returns an error wrapping ErrSchema unless the file's schema
// version is SchemaVersion.
func checkSchema(tx *bbolt.Tx) error {
	v := schemaOf(tx)
	if v != SchemaVersion {
		return fmt.Errorf("%w %d (this Warren reads %d)", ErrSchema, v, SchemaVersion)
	}
	return nil
}

// Close writes every pending change (telling its waiters), stops the commit
// loop and closes the file. Changes logged after Close are dropped: their
// waiters are told their batch failed. Close may be called more than once;
// later calls return the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closingNow.Store(true)
		s.logMu.Lock()
		s.ckptDone.Broadcast()
		s.logMu.Unlock()
		s.mu.Lock()
		s.closing = true
		s.work.Signal()
		s.mu.Unlock()
		<-s.loopDone
		s.lazyTimer.Stop()
		s.resumeFlow() // Over is false from closingNow on: let everyone go
		s.closeErr = errors.Join(s.wal.close(), s.db.Close(), s.dirLock.Close())
	})
	return s.closeErr
}
