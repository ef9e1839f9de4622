package store

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"go.etcd.io/bbolt"
)

// maxProblems is how many problems a check error lists.
const maxProblems = 20

// problems collects what a check finds.
type problems struct {
	list []string
	n    int
}

func (p *problems) add(format string, args ...any) {
	p.n++
	if len(p.list) < maxProblems {
		p.list = append(p.list, fmt.Sprintf(format, args...))
	}
}

func (p *problems) err() error {
	if p.n == 0 {
		return nil
	}
	msg := fmt.Sprintf("store check found %d problem(s):\n\t%s", p.n, strings.Join(p.list, "\n\t"))
	if p.n > len(p.list) {
		msg += fmt.Sprintf("\n\t... and %d more", p.n-len(p.list))
	}
	return errors.New(msg)
}

// Check checks the open store: bbolt's own page checks, then Warren's
// invariants: the schema version is present; every record decodes; every
// queue's counters equal the count and body bytes of its persistent
// entries; every delivered mark has an entry. It returns an error listing
// the first problems found. It holds up commits while it runs.
func (s *Store) Check() error {
	// A writable transaction, so that commits cannot run during bbolt's
	// check; it is rolled back.
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	tx, err := s.db.Begin(true)
	if err != nil {
		return fmt.Errorf("store check: %w", err)
	}
	defer tx.Rollback()
	return checkTx(tx)
}

// CheckDir checks the store in dir as Check does, opening it read-only,
// and checks that the write-ahead log records bbolt lacks (those written
// since the last checkpoint, which the next Open applies) follow on from
// its checkpoint and decode. It fails with ErrLocked if a running Warren
// holds it.
func CheckDir(dir string) error {
	path := filepath.Join(dir, FileName)
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("no store in %q: %w", dir, err)
	}
	dirLock, err := lockDir(dir, 0, false)
	if err != nil {
		return err
	}
	defer dirLock.Close()
	db, err := openDB(dir, 0, true)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bbolt.Tx) error {
		if err := checkTx(tx); err != nil {
			return err
		}
		return checkLog(dir, checkpointOf(tx))
	})
}

// checkLog checks the log records in dir after ckpt, without changing
// anything.
func checkLog(dir string, ckpt uint64) error {
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for _, name := range walNames {
		f, err := os.Open(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("log: %w", err)
		}
		files = append(files, f)
	}
	recs, err := readLog(files)
	if err != nil {
		return err
	}
	pending, err := pendingRecords(recs, ckpt)
	if err != nil {
		return err
	}
	var ops []op
	for _, r := range pending {
		if ops, err = decodeOps(r.payload, ops[:0]); err != nil {
			return fmt.Errorf("log record %d: %w", r.lsn, err)
		}
	}
	return nil
}

// checkTx runs every check in tx.
func checkTx(tx *bbolt.Tx) error {
	var p problems
	for err := range tx.Check() {
		p.add("bbolt: %v", err)
	}
	if v := schemaOf(tx); v != SchemaVersion {
		p.add("schema version is %d, not %d", v, SchemaVersion)
	}
	for _, name := range topBuckets {
		if tx.Bucket(name) == nil {
			p.add("bucket %q is missing", name)
		}
	}
	_ = tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
		if !isTopBucket(name) {
			p.add("unknown bucket %q", name)
		}
		return nil
	})
	if b := tx.Bucket(bucketExchanges); b != nil {
		_ = b.ForEach(func(k, v []byte) error {
			if _, err := decodeExchange(k, v); err != nil {
				p.add("%v", err)
			}
			return nil
		})
	}
	if b := tx.Bucket(bucketQueues); b != nil {
		ids := make(map[uint64]string)
		_ = b.ForEach(func(k, v []byte) error {
			r, err := decodeQueue(k, v)
			if err != nil {
				p.add("%v", err)
			} else if other, dup := ids[r.ID]; dup {
				p.add("queues %q and %q have the same id %d", other, r.Name, r.ID)
			} else {
				ids[r.ID] = r.Name
			}
			return nil
		})
	}
	if b := tx.Bucket(bucketBindings); b != nil {
		_ = b.ForEach(func(k, v []byte) error {
			if _, err := decodeBinding(k, v); err != nil {
				p.add("binding %x: %v", k, err)
			}
			return nil
		})
	}
	if msgs := tx.Bucket(bucketMessages); msgs != nil {
		_ = msgs.ForEach(func(k, v []byte) error {
			id, ok := parseKey64(k)
			q := msgs.Bucket(k)
			if !ok || q == nil {
				p.add("messages: key %x is not a queue id's bucket", k)
				return nil
			}
			checkQueue(&p, id, q)
			return nil
		})
	}
	return p.err()
}

func isTopBucket(name []byte) bool {
	for _, b := range topBuckets {
		if bytes.Equal(name, b) {
			return true
		}
	}
	return false
}

// checkQueue checks the bucket of queue id.
func checkQueue(p *problems, id uint64, q *bbolt.Bucket) {
	_ = q.ForEach(func(k, v []byte) error {
		switch {
		case bytes.Equal(k, keyCounters):
			if v == nil {
				p.add("queue %d: counters are a bucket", id)
			} else if _, err := decodeCounters(v); err != nil {
				p.add("queue %d: %v", id, err)
			}
		case bytes.Equal(k, subPersistent), bytes.Equal(k, subTransient), bytes.Equal(k, subDelivered):
			if v != nil {
				p.add("queue %d: %q is not a bucket", id, k)
			}
		default:
			p.add("queue %d: unknown key %q", id, k)
		}
		return nil
	})
	var actual, stored counters
	if v := q.Get(keyCounters); v != nil {
		stored, _ = decodeCounters(v)
	}
	entries := func(name []byte, c *counters) *bbolt.Bucket {
		b := q.Bucket(name)
		if b == nil {
			return nil
		}
		_ = b.ForEach(func(k, v []byte) error {
			seq, ok := parseKey64(k)
			switch {
			case !ok || v == nil:
				p.add("queue %d %s: bad key %x", id, name, k)
			default:
				r, err := decodeMessage(v)
				if err != nil {
					p.add("queue %d %s entry %d: %v", id, name, seq, err)
				}
				if c != nil {
					c.count++
					c.bytes += int64(len(r.body))
				}
			}
			return nil
		})
		return b
	}
	pb := entries(subPersistent, &actual)
	tb := entries(subTransient, nil)
	if actual != stored {
		p.add("queue %d: counters say %d entries of %d bytes; there are %d of %d bytes", id, stored.count, stored.bytes, actual.count, actual.bytes)
	}
	if d := q.Bucket(subDelivered); d != nil {
		_ = d.ForEach(func(k, _ []byte) error {
			seq, ok := parseKey64(k)
			if !ok {
				p.add("queue %d delivered: bad key %x", id, k)
			} else if (pb == nil || pb.Get(k) == nil) && (tb == nil || tb.Get(k) == nil) {
				p.add("queue %d: delivered mark %d has no entry", id, seq)
			}
			return nil
		})
	}
}
