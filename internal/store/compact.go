package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"go.etcd.io/bbolt"
)

// Compaction. bbolt never shrinks its file: the pages of a drained backlog
// stay in it, free, and its free page list keeps every one of them in a
// map in memory (about 10 MB per GB of file). When most of the file is
// free and what is left is small, the checkpointer copies the live data
// into a new file and puts it in the old one's place, which gives both the
// disk space and that memory back.
//
// The new file, FileName+compactSuffix, is filled in one synced
// transaction while dbMu is held exclusively, so nothing reads or writes
// the old one meanwhile (bbolt.Compact also leaves the new file's values
// pointing into the old file's mapping until it commits, so no other
// transaction may remap it). It is then renamed over FileName and the
// directory synced: the name always refers to a whole file holding the
// same state (the checkpoint's LSN included, so the log applies to
// either). A crash before the rename leaves the old file and a stray new
// one, which Open removes. Another process is kept out by the data dir's
// lock (lockdir.go), not by bbolt's lock on the file, which a waiting
// process would get once the old file is closed.

// compactSuffix names the file a compaction writes before its rename.
const compactSuffix = ".compact"

// The checkpointer compacts after a checkpoint when at least compactMinFree
// bytes of the file are free, at least compactFreeRatio times what is in
// use, and what is in use is at most compactMaxLive (copying it holds up
// Load and the next checkpoint). Tests lower them.
var (
	compactMinFree   int64 = 256 << 20
	compactMaxLive   int64 = 64 << 20
	compactFreeRatio int64 = 4
	// compactRetry is how long the checkpointer waits after a failed
	// compaction before it tries again.
	compactRetry = 10 * time.Minute
)

// compactDue reports whether the file is worth compacting, by the sizes
// the last checkpoint noted (noteSize). The checkpointer calls it.
func (s *Store) compactDue() bool {
	free := s.stats.freeBytes.Load()
	live := s.stats.bytes.Load() - free
	return free >= compactMinFree && free >= compactFreeRatio*live && live <= compactMaxLive
}

// compact copies the store's data into a new file and swaps it in for the
// old one (see above), reporting whether it did. An error with swapped
// false leaves the old file in use. With swapped true the new file is in
// use, and an error is about what follows: a failed directory sync leaves
// dirUnsynced set for the checkpointer to retry before its next
// checkpoint. The checkpointer calls it.
func (s *Store) compact() (swapped bool, err error) {
	path := filepath.Join(s.dir, FileName)
	tmp := path + compactSuffix
	if err := removeCompactionFile(s.dir); err != nil {
		return false, fmt.Errorf("compact store: %w", err)
	}
	dst, err := openFile(s.dir, tmp, DefaultLockTimeout, false)
	if err != nil {
		return false, fmt.Errorf("compact store: %w", err)
	}
	start := time.Now()
	before := s.stats.bytes.Load()

	s.dbMu.Lock()
	var size int64
	err = bbolt.Compact(dst, s.db, 0)
	if err == nil {
		err = dst.View(func(tx *bbolt.Tx) error {
			size = tx.Size()
			return nil
		})
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		s.dbMu.Unlock()
		dst.Close()
		os.Remove(tmp)
		return false, fmt.Errorf("compact store: %w", err)
	}
	old := s.db
	s.db = dst
	s.dbMu.Unlock()

	s.noteSize(dst, size)
	s.stats.compactions.Add(1)
	var errs []error
	if err := s.syncDataDir(); err != nil {
		s.dirUnsynced = true
		errs = append(errs, fmt.Errorf("compact store: %w", err))
	}
	if err := old.Close(); err != nil {
		errs = append(errs, fmt.Errorf("compact store: close the old file: %w", err))
	}
	// The old file's free page list, up to hundreds of MB after a large
	// drain, is garbage now: collect it and give it back to the system at
	// once rather than whenever the runtime would.
	debug.FreeOSMemory()
	s.log.Info("store: compacted", "bytes_before", before, "bytes_after", size, "took", time.Since(start))
	return true, errors.Join(errs...)
}

// syncDataDir syncs the data directory, or fails with dirSyncFault
// (tests).
func (s *Store) syncDataDir() error {
	if s.dirSyncFault != nil {
		if err := s.dirSyncFault(); err != nil {
			return err
		}
	}
	s.stats.syncs.Add(1)
	return syncDir(s.dir)
}

// removeCompactionFile removes the file a compaction writes, if it is
// there: one left by a crash before its rename (Open calls it holding the
// store's lock), or by a failed compaction.
func removeCompactionFile(dir string) error {
	err := os.Remove(filepath.Join(dir, FileName+compactSuffix))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove an unfinished compaction: %w", err)
	}
	return nil
}

// syncCompaction syncs the data directory if a compaction's rename is not
// known to be on disk yet. The checkpointer calls it before each
// checkpoint: once a checkpoint is in the new file, the log records it
// holds are written over, so the old file must not come back.
func (s *Store) syncCompaction() error {
	if !s.dirUnsynced {
		return nil
	}
	if err := s.syncDataDir(); err != nil {
		return fmt.Errorf("compacted store: %w", err)
	}
	s.dirUnsynced = false
	return nil
}
