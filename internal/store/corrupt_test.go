package store

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"go.etcd.io/bbolt"

	"github.com/warrenmq/warren/internal/wire"
	"github.com/warrenmq/warren/queue"
)

// rawPut writes v at key k of sub-bucket sub of queue id, bypassing the
// store.
func rawPut(t *testing.T, s *Store, id uint64, sub []byte, k, v []byte) {
	t.Helper()
	err := s.db.Update(func(tx *bbolt.Tx) error {
		qk := key64(id)
		return tx.Bucket(bucketMessages).Bucket(qk[:]).Bucket(sub).Put(k, v)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCorruptRecord(t *testing.T) {
	s := openTest(t, "", Options{})
	id := s.NewQueueID()
	s.Put(id, 1, msg("a", 10), 0, false)
	s.Put(id, 2, msg("b", 10), 0, false)
	s.Put(id, 3, msg("c", 10), 0, true)
	flush(t, s)

	k3 := key64(3)
	garbage := []byte{recordVersion, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x0f, 'x'}
	rawPut(t, s, id, subTransient, k3[:], garbage)
	buf := []queue.Entry{{Seq: 77}}
	got, err := s.Load(id, 0, 10, 1<<20, buf)
	var bad *queue.CorruptEntryError
	if !errors.As(err, &bad) || bad.Seq != 3 || bad.Bytes != 0 || !errors.Is(err, errCorrupt) {
		t.Fatalf("Load over a corrupt record: %v", err)
	}
	if len(got) != 3 || got[0].Seq != 77 || got[1].Seq != 1 || got[2].Seq != 2 {
		t.Fatalf("Load returned %v with its error, want [77 1 2]", seqs(got))
	}
	if es, err := s.Load(id, 3, 10, 1<<20, nil); err != nil || len(es) != 0 {
		t.Fatalf("Load after the corrupt record: %v, %v", seqs(es), err)
	}
	if err := s.Check(); err == nil || !strings.Contains(err.Error(), "entry 3") {
		t.Fatalf("Check: %v", err)
	}
	s.Delete(id, 3)
	flush(t, s)
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}

	// A record that decodes but whose properties would not make a
	// content header: Load and Check refuse it as well.
	k1 := key64(1)
	short := appendRecord(nil, &queue.Message{Props: []byte{0x80}, Body: []byte("abcdefghij")}, 0)
	rawPut(t, s, id, subPersistent, k1[:], short)
	if _, err := s.Load(id, 0, 10, 1<<20, nil); !errors.As(err, &bad) || bad.Seq != 1 || bad.Bytes != 10 || !strings.Contains(err.Error(), "properties") {
		t.Fatalf("Load over a record with 1 byte of properties: %v", err)
	}
	if err := s.Check(); err == nil || !strings.Contains(err.Error(), "entry 1") {
		t.Fatalf("Check: %v", err)
	}

	// A corrupt persistent record: Check sees it and the counters off.
	k2 := key64(2)
	rawPut(t, s, id, subPersistent, k2[:], []byte{9})
	err = s.Check()
	if err == nil || !strings.Contains(err.Error(), "entry 2") || !strings.Contains(err.Error(), "counters") {
		t.Fatalf("Check: %v", err)
	}
	// Deleting it cannot take its unknown body size out of the counters;
	// they are right again once the queue has no persistent entries.
	s.Delete(id, 1)
	s.Delete(id, 2)
	flush(t, s)
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptTopology(t *testing.T) {
	s := openTest(t, "", Options{})
	for _, b := range [][]byte{bucketExchanges, bucketQueues, bucketBindings} {
		err := s.db.Update(func(tx *bbolt.Tx) error {
			return tx.Bucket(b).Put([]byte("bad"), []byte{topologyVersion, 0, 0xff})
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recover(); !errors.Is(err, errCorrupt) {
			t.Errorf("Recover with a bad %s record: %v", b, err)
		}
		if err := s.Check(); err == nil {
			t.Errorf("Check missed a bad %s record", b)
		}
		err = s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(b).Delete([]byte("bad")) })
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Recover(); err != nil {
		t.Fatal(err)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(appendRecord(nil, msg("seed", 20), 5))
	f.Add(appendRecord(nil, &queue.Message{}, 0))
	f.Add(appendRecord(nil, &queue.Message{Props: bytes.Repeat([]byte{1}, 300)}, -1))
	f.Add([]byte{recordVersion, 0, 0, 0, 0, 0, 0, 0, 0, 0xff})
	f.Fuzz(func(t *testing.T, v []byte) {
		r, err := decodeRecord(v)
		if err != nil {
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("error %v does not wrap errCorrupt", err)
			}
			return
		}
		m := r.message(true, nil)
		if len(m.Body) != len(r.body) || len(m.Props) != len(r.props) {
			t.Fatal("message lost bytes")
		}
		again := appendRecord(nil, m, r.expiresAt)
		if len(again) != recordSize(m) {
			t.Fatalf("recordSize %d, appended %d", recordSize(m), len(again))
		}
		r2, err := decodeRecord(again)
		if err != nil {
			t.Fatal(err)
		}
		if r2.expiresAt != r.expiresAt || !bytes.Equal(r2.exchange, r.exchange) || !bytes.Equal(r2.routingKey, r.routingKey) ||
			!bytes.Equal(r2.props, r.props) || !bytes.Equal(r2.body, r.body) {
			t.Fatal("round trip changed the record")
		}
	})
}

func FuzzDecodeTopology(f *testing.F) {
	x, _ := encodeExchange(&ExchangeRecord{Type: "topic", AutoDelete: true, Args: wire.Table{"a": int32(1)}})
	q, _ := encodeQueue(&QueueRecord{ID: 7, Args: wire.Table{"x-max-length": int64(3)}})
	b := BindingRecord{Source: "s", Destination: "d", RoutingKey: "k.#"}
	bv, _ := wire.AppendTable([]byte{topologyVersion}, wire.Table{"x-match": "all"})
	f.Add(x, append(bindingPrefix(&b), 0, 0, 0, 0, 0, 0, 0, 1))
	f.Add(q, bv)
	f.Fuzz(func(t *testing.T, k, v []byte) {
		if r, err := decodeExchange(k, v); err == nil {
			if _, err := encodeExchange(&r); err != nil {
				t.Fatal(err)
			}
		}
		if r, err := decodeQueue(k, v); err == nil {
			if _, err := encodeQueue(&r); err != nil {
				t.Fatal(err)
			}
		}
		if r, err := decodeBinding(k, v); err == nil {
			if !bytes.HasPrefix(k, bindingPrefix(&r)) {
				t.Fatal("binding key does not start with its prefix")
			}
		}
		_, _ = decodeCounters(v)
	})
}
