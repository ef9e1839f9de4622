package store

import (
	"encoding/binary"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/warrenmq/warren/internal/wire"
)

// TestRestart runs the same changes through a clean restart and through a
// crash: with checkpoints held back, everything must come back from the
// write-ahead log alone.
func TestRestart(t *testing.T) {
	t.Run("clean", func(t *testing.T) { testRestart(t, false) })
	t.Run("crash", func(t *testing.T) { testRestart(t, true) })
}

func testRestart(t *testing.T, crash bool) {
	s := openTest(t, "", Options{})
	s.pauseCheckpoints.Store(crash)

	xArgs := wire.Table{"alternate-exchange": "alt", "n": int32(3), "nested": wire.Table{"b": true}}
	s.PutExchange(ExchangeRecord{Name: "x", Type: "direct", Args: xArgs})
	s.PutExchange(ExchangeRecord{Name: "y", Type: "topic", AutoDelete: true, Internal: true})
	s.PutExchange(ExchangeRecord{Name: "gone", Type: "fanout"})
	s.DeleteExchange("gone")
	q1 := QueueRecord{Name: "q1", ID: s.NewQueueID(), Args: wire.Table{"x-max-length": int32(10)}}
	s.PutQueue(q1)
	q2 := QueueRecord{Name: "q2", ID: s.NewQueueID(), AutoDelete: true}
	s.PutQueue(q2)
	bindings := []BindingRecord{
		{Source: "x", Destination: "q1", RoutingKey: "a"},
		{Source: "x", Destination: "q1", RoutingKey: "a", Args: wire.Table{"k": "v"}},
		{Source: "x", Destination: "y", ToExchange: true, RoutingKey: "a"},
		{Source: "y", Destination: "q2", RoutingKey: "#"},
		{Source: "amq.direct", Destination: "q1"},
	}
	for _, b := range bindings {
		s.PutBinding(b)
	}
	s.PutBinding(bindings[1]) // idempotent
	s.PutBinding(BindingRecord{Source: "x", Destination: "q1", RoutingKey: "a", Args: wire.Table{"k": "other"}})
	s.DeleteBinding(BindingRecord{Source: "x", Destination: "q1", RoutingKey: "a", Args: wire.Table{"k": "other"}})

	for seq := uint64(1); seq <= 5; seq++ {
		s.Put(q1.ID, seq, msg("p", int(seq)*100), 0, false)
	}
	s.Put(q1.ID, 6, msg("t", 100), 0, true)
	s.Put(q1.ID, 7, msg("p", 700), 0, false)
	s.Put(q1.ID, 8, msg("t", 100), 0, true)
	s.Delete(q1.ID, 1)
	s.Delivered(q1.ID, 3)
	s.Delivered(q1.ID, 6) // its transient entry is dropped, and so is the mark
	orphan := s.NewQueueID()
	s.Put(orphan, 1, msg("o", 10), 0, false)
	s.Put(orphan, 2, msg("o", 10), 0, true)
	s.Delivered(orphan, 1)
	s = reopen(t, s, crash)
	if id := s.NewQueueID(); id <= orphan {
		t.Fatalf("NewQueueID after reopening = %d, want > %d", id, orphan)
	}
	rec, err := s.Recover()
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Exchanges) != 2 || rec.Exchanges[0].Name != "x" || rec.Exchanges[0].Type != "direct" ||
		rec.Exchanges[0].AutoDelete || rec.Exchanges[0].Internal || !wire.TablesEqual(rec.Exchanges[0].Args, xArgs) {
		t.Fatalf("exchanges %+v", rec.Exchanges)
	}
	if y := rec.Exchanges[1]; y.Name != "y" || y.Type != "topic" || !y.AutoDelete || !y.Internal || len(y.Args) != 0 {
		t.Fatalf("exchange y = %+v", y)
	}
	if len(rec.Queues) != 2 {
		t.Fatalf("queues %+v", rec.Queues)
	}
	r1, r2 := rec.Queues[0], rec.Queues[1]
	if r1.Name != "q1" || r1.ID != q1.ID || r1.AutoDelete || !wire.TablesEqual(r1.Args, q1.Args) ||
		r1.Count != 5 || r1.Bytes != 200+300+400+500+700 || r1.Lo != 2 || r1.Hi != 7 {
		t.Fatalf("q1 recovered as %+v", r1)
	}
	if r2.Name != "q2" || r2.ID != q2.ID || !r2.AutoDelete || r2.Count != 0 || r2.Bytes != 0 || r2.Lo != 0 || r2.Hi != 0 {
		t.Fatalf("q2 recovered as %+v", r2)
	}
	if len(rec.Bindings) != len(bindings) {
		t.Fatalf("bindings %+v", rec.Bindings)
	}
	for _, want := range bindings {
		if !hasBinding(rec.Bindings, want) {
			t.Errorf("binding %+v not recovered", want)
		}
	}
	es := load(t, s, q1.ID)
	sameSeqs(t, es, 2, 3, 4, 5, 7)
	for _, e := range es {
		if e.Redelivered != (e.Seq == 3) || !e.Msg.Persistent {
			t.Errorf("entry %d: redelivered %v persistent %v", e.Seq, e.Redelivered, e.Msg.Persistent)
		}
	}
	if hasQueueBucket(t, s, orphan) {
		t.Error("the orphan queue's bucket survived Recover")
	}

	// Cascades.
	s.DeleteExchange("y")
	s.DeleteQueue("q1", q1.ID)
	s.DeleteQueue("q2", q2.ID+1000) // another id: the record stays
	if !crash {
		flush(t, s)
		if hasQueueBucket(t, s, q1.ID) {
			t.Error("q1's bucket survived DeleteQueue")
		}
	}
	s = reopen(t, s, crash)
	rec, err = s.Recover()
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Exchanges) != 1 || rec.Exchanges[0].Name != "x" {
		t.Errorf("exchanges after cascade %+v", rec.Exchanges)
	}
	if len(rec.Queues) != 1 || rec.Queues[0].Name != "q2" {
		t.Errorf("queues after cascade %+v", rec.Queues)
	}
	if len(rec.Bindings) != 0 {
		// x->q1 (twice) and amq.direct->q1 went with q1; x->y with y as
		// destination; y->q2 with y as source.
		t.Errorf("bindings after cascade %+v", rec.Bindings)
	}
}

func hasBinding(bs []BindingRecord, want BindingRecord) bool {
	for _, b := range bs {
		if b.Source == want.Source && b.Destination == want.Destination && b.ToExchange == want.ToExchange &&
			b.RoutingKey == want.RoutingKey && wire.TablesEqual(b.Args, want.Args) {
			return true
		}
	}
	return false
}

func TestRecoverRecountsBadCounters(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	q := QueueRecord{Name: "q", ID: s.NewQueueID()}
	s.PutQueue(q)
	s.Put(q.ID, 1, msg("a", 10), 0, false)
	s.Put(q.ID, 2, msg("a", 20), 0, false)
	flush(t, s)
	err := s.db.Update(func(tx *bbolt.Tx) error {
		k := key64(q.ID)
		return tx.Bucket(bucketMessages).Bucket(k[:]).Put(keyCounters, []byte("bad"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err == nil || !strings.Contains(err.Error(), "counters") {
		t.Fatalf("Check = %v, want a counters problem", err)
	}
	rec, err := s.Recover()
	if err != nil {
		t.Fatal(err)
	}
	if r := rec.Queues[0]; r.Count != 2 || r.Bytes != 30 || r.Lo != 1 || r.Hi != 2 {
		t.Fatalf("recovered %+v", r)
	}
}

func TestOpenLocked(t *testing.T) {
	dir := t.TempDir()
	openTest(t, dir, Options{})
	_, err := Open(dir, Options{LockTimeout: 20 * time.Millisecond})
	if !errors.Is(err, ErrLocked) || !errors.Is(err, bbolt.ErrTimeout) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "in use by another Warren") || !strings.Contains(msg, dir) {
		t.Fatalf("message %q", msg)
	}
	if err := CheckDir(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("CheckDir of a store in use: %v", err)
	}
}

func TestSchemaVersion(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(tx *bbolt.Tx) error
		want  string
	}{
		{"newer", func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucket(bucketMeta)
			if err != nil {
				return err
			}
			return b.Put(keySchema, binary.BigEndian.AppendUint32(nil, 2))
		}, "unsupported store schema version 2 (this Warren reads 1)"},
		{"no meta", func(tx *bbolt.Tx) error {
			_, err := tx.CreateBucket([]byte("something"))
			return err
		}, "unsupported store schema version 0 (this Warren reads 1)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			db, err := bbolt.Open(filepath.Join(dir, FileName), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(c.setup); err != nil {
				t.Fatal(err)
			}
			db.Close()
			_, err = Open(dir, Options{})
			if !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Open: %v, want %q", err, c.want)
			}
			if err := CheckDir(dir); err == nil || !strings.Contains(err.Error(), "schema") {
				t.Fatalf("CheckDir: %v", err)
			}
		})
	}
	if err := CheckDir(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Fatal("CheckDir of a missing store passed")
	}
}
