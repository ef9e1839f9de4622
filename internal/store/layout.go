package store

import (
	"encoding/binary"

	"go.etcd.io/bbolt"
)

// Top-level buckets. doc.go describes what each holds.
var (
	bucketMeta      = []byte("meta")
	bucketExchanges = []byte("exchanges")
	bucketQueues    = []byte("queues")
	bucketBindings  = []byte("bindings")
	bucketMessages  = []byte("messages")

	// topBuckets are the top-level buckets every store has.
	topBuckets = [][]byte{bucketMeta, bucketExchanges, bucketQueues, bucketBindings, bucketMessages}
)

// Keys inside a queue's bucket (under messages). p, t and d are buckets;
// n is a plain key.
var (
	subPersistent = []byte("p")
	subTransient  = []byte("t")
	subDelivered  = []byte("d")
	keyCounters   = []byte("n")
)

// keySchema is the schema version's key in the meta bucket.
var keySchema = []byte("schema")

// markValue is the value of a delivered mark. Never modified: bbolt keeps
// a reference until the transaction ends.
var markValue = []byte{1}

// messageFillPercent is the fill of entry buckets' pages: keys are appended
// in order, so pages can be packed fuller than bbolt's default half.
const messageFillPercent = 0.9

// schemaValue is the encoded SchemaVersion: a big-endian uint32.
func schemaValue() []byte {
	return binary.BigEndian.AppendUint32(nil, SchemaVersion)
}

// schemaOf returns the file's schema version, 0 if it has none.
func schemaOf(tx *bbolt.Tx) uint32 {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return 0
	}
	v := meta.Get(keySchema)
	if len(v) != 4 {
		return 0
	}
	return binary.BigEndian.Uint32(v)
}

// maxQueueID returns the largest queue id in the file: of queue records and
// of message buckets.
func maxQueueID(tx *bbolt.Tx) (uint64, error) {
	var maxID uint64
	if msgs := tx.Bucket(bucketMessages); msgs != nil {
		if k, _ := msgs.Cursor().Last(); k != nil {
			if id, ok := parseKey64(k); ok {
				maxID = id
			}
		}
	}
	if queues := tx.Bucket(bucketQueues); queues != nil {
		err := queues.ForEach(func(k, v []byte) error {
			r, err := decodeQueue(k, v)
			if err == nil && r.ID > maxID {
				maxID = r.ID
			}
			return nil // a bad record is reported by Recover and Check
		})
		if err != nil {
			return 0, err
		}
	}
	return maxID, nil
}

// NewQueueID returns a queue id never returned before by this Store and
// greater than every id in the file when it was opened.
func (s *Store) NewQueueID() uint64 { return s.lastQueueID.Add(1) }
