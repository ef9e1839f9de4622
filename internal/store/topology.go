package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/warrenmq/warren/internal/wire"
)

// ExchangeRecord is a durable exchange. Args must not be changed once
// passed to PutExchange.
type ExchangeRecord struct {
	Name       string
	Type       string
	AutoDelete bool
	Internal   bool
	Args       wire.Table
}

// QueueRecord is a durable queue. ID keys its entries. Args must not be
// changed once passed to PutQueue.
type QueueRecord struct {
	Name       string
	ID         uint64
	AutoDelete bool
	Args       wire.Table
}

// BindingRecord is a binding from exchange Source to a queue, or to an
// exchange if ToExchange is set, named Destination. Args must not be
// changed once passed to PutBinding.
type BindingRecord struct {
	Source      string
	Destination string
	ToExchange  bool
	RoutingKey  string
	Args        wire.Table
}

// topologyVersion is the first byte of exchange, queue and binding values.
const topologyVersion = 1

// Flag bits of exchange and queue records.
const (
	flagAutoDelete = 1 << 0
	flagInternal   = 1 << 1
)

func appendFlags(b []byte, autoDelete, internal bool) []byte {
	var f byte
	if autoDelete {
		f |= flagAutoDelete
	}
	if internal {
		f |= flagInternal
	}
	return append(b, f)
}

// encodeExchange encodes r's value: version, flags, type (uvarint length
// and bytes), args table.
func encodeExchange(r *ExchangeRecord) ([]byte, error) {
	b := []byte{topologyVersion}
	b = appendFlags(b, r.AutoDelete, r.Internal)
	b = binary.AppendUvarint(b, uint64(len(r.Type)))
	b = append(b, r.Type...)
	return wire.AppendTable(b, r.Args)
}

func decodeExchange(k, v []byte) (ExchangeRecord, error) {
	r := ExchangeRecord{Name: string(k)}
	if len(v) < 2 || v[0] != topologyVersion {
		return r, fmt.Errorf("%w: exchange %q: bad header", errCorrupt, k)
	}
	r.AutoDelete, r.Internal = v[1]&flagAutoDelete != 0, v[1]&flagInternal != 0
	kind, rest, err := readBytes(v[2:], "exchange type")
	if err != nil {
		return r, fmt.Errorf("exchange %q: %w", k, err)
	}
	r.Type = string(kind)
	if r.Args, err = readArgs(rest); err != nil {
		return r, fmt.Errorf("exchange %q: %w", k, err)
	}
	return r, nil
}

// encodeQueue encodes r's value: version, flags, id (8 bytes), args table.
func encodeQueue(r *QueueRecord) ([]byte, error) {
	b := []byte{topologyVersion}
	b = appendFlags(b, r.AutoDelete, false)
	b = binary.BigEndian.AppendUint64(b, r.ID)
	return wire.AppendTable(b, r.Args)
}

func decodeQueue(k, v []byte) (QueueRecord, error) {
	r := QueueRecord{Name: string(k)}
	if len(v) < 10 || v[0] != topologyVersion {
		return r, fmt.Errorf("%w: queue %q: bad header", errCorrupt, k)
	}
	r.AutoDelete = v[1]&flagAutoDelete != 0
	r.ID = binary.BigEndian.Uint64(v[2:])
	var err error
	if r.Args, err = readArgs(v[10:]); err != nil {
		return r, fmt.Errorf("queue %q: %w", k, err)
	}
	return r, nil
}

// readArgs decodes a table that must fill b.
func readArgs(b []byte) (wire.Table, error) {
	t, rest, err := wire.ReadTable(b)
	if err != nil {
		return nil, fmt.Errorf("%w: arguments: %w", errCorrupt, err)
	}
	if len(rest) > 0 {
		return nil, fmt.Errorf("%w: %d bytes after the arguments", errCorrupt, len(rest))
	}
	return t, nil
}

// Binding kinds in keys.
const (
	kindToQueue    = 0
	kindToExchange = 1
)

// bindingPrefix is the part of a binding's key that names it: source,
// destination, kind and routing key, the strings as uvarint length and
// bytes. Args are not in the key (tables with equal contents may encode
// differently), so several bindings can share a prefix; each key ends with
// an 8-byte sequence number to tell them apart.
func bindingPrefix(r *BindingRecord) []byte {
	b := make([]byte, 0, len(r.Source)+len(r.Destination)+len(r.RoutingKey)+8+8)
	b = binary.AppendUvarint(b, uint64(len(r.Source)))
	b = append(b, r.Source...)
	b = binary.AppendUvarint(b, uint64(len(r.Destination)))
	b = append(b, r.Destination...)
	if r.ToExchange {
		b = append(b, kindToExchange)
	} else {
		b = append(b, kindToQueue)
	}
	b = binary.AppendUvarint(b, uint64(len(r.RoutingKey)))
	return append(b, r.RoutingKey...)
}

// encodeBinding encodes r's value: version, args table.
func encodeBinding(r *BindingRecord) ([]byte, error) {
	return wire.AppendTable([]byte{topologyVersion}, r.Args)
}

// decodeBinding decodes a binding's key and value.
func decodeBinding(k, v []byte) (BindingRecord, error) {
	var r BindingRecord
	src, rest, err := readBytes(k, "binding source")
	if err != nil {
		return r, err
	}
	dst, rest, err := readBytes(rest, "binding destination")
	if err != nil {
		return r, err
	}
	if len(rest) < 1 || rest[0] > kindToExchange {
		return r, fmt.Errorf("%w: binding %q -> %q: bad kind", errCorrupt, src, dst)
	}
	r.ToExchange = rest[0] == kindToExchange
	key, rest, err := readBytes(rest[1:], "binding routing key")
	if err != nil {
		return r, err
	}
	if len(rest) != 8 {
		return r, fmt.Errorf("%w: binding %q -> %q: bad key suffix", errCorrupt, src, dst)
	}
	r.Source, r.Destination, r.RoutingKey = string(src), string(dst), string(key)
	if len(v) < 1 || v[0] != topologyVersion {
		return r, fmt.Errorf("%w: binding %q -> %q: bad value header", errCorrupt, src, dst)
	}
	if r.Args, err = readArgs(v[1:]); err != nil {
		return r, fmt.Errorf("binding %q -> %q: %w", src, dst, err)
	}
	return r, nil
}

// applyTopology applies a topology op other than opDeleteQueue.
func (s *Store) applyTopology(tx *bbolt.Tx, o *op) error {
	switch o.kind {
	case opPutExchange:
		r := o.topo.(*ExchangeRecord)
		if r.Name == "" {
			s.log.Warn("store: not writing an exchange with no name")
			return nil
		}
		v, err := encodeExchange(r)
		if err != nil {
			return fmt.Errorf("exchange %q: %w", r.Name, err)
		}
		return tx.Bucket(bucketExchanges).Put([]byte(r.Name), v)
	case opDeleteExchange:
		name := o.topo.(string)
		if name != "" {
			if err := tx.Bucket(bucketExchanges).Delete([]byte(name)); err != nil {
				return err
			}
		}
		return deleteBindings(tx, func(r *BindingRecord) bool {
			return r.Source == name || (r.ToExchange && r.Destination == name)
		})
	case opPutQueue:
		r := o.topo.(*QueueRecord)
		if r.Name == "" {
			s.log.Warn("store: not writing a queue with no name", "id", r.ID)
			return nil
		}
		v, err := encodeQueue(r)
		if err != nil {
			return fmt.Errorf("queue %q: %w", r.Name, err)
		}
		return tx.Bucket(bucketQueues).Put([]byte(r.Name), v)
	case opPutBinding:
		return putBinding(tx, o.topo.(*BindingRecord))
	case opDeleteBinding:
		r := o.topo.(*BindingRecord)
		return deleteBindings(tx, func(b *BindingRecord) bool {
			return b.Source == r.Source && b.Destination == r.Destination && b.ToExchange == r.ToExchange &&
				b.RoutingKey == r.RoutingKey && wire.TablesEqual(b.Args, r.Args)
		}, bindingPrefix(r))
	}
	return fmt.Errorf("unknown op %d", o.kind)
}

// putBinding writes r unless an equal binding is stored.
func putBinding(tx *bbolt.Tx, r *BindingRecord) error {
	bs := tx.Bucket(bucketBindings)
	prefix := bindingPrefix(r)
	c := bs.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if b, err := decodeBinding(k, v); err == nil && wire.TablesEqual(b.Args, r.Args) {
			return nil
		}
	}
	v, err := encodeBinding(r)
	if err != nil {
		return fmt.Errorf("binding %q -> %q: %w", r.Source, r.Destination, err)
	}
	seq, err := bs.NextSequence()
	if err != nil {
		return err
	}
	return bs.Put(binary.BigEndian.AppendUint64(prefix, seq), v)
}

// deleteBindings deletes the bindings for which match is true, among those
// whose key starts with prefix (all if none is given).
func deleteBindings(tx *bbolt.Tx, match func(*BindingRecord) bool, prefix ...[]byte) error {
	var p []byte
	if len(prefix) > 0 {
		p = prefix[0]
	}
	bs := tx.Bucket(bucketBindings)
	var doomed [][]byte
	c := bs.Cursor()
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		if b, err := decodeBinding(k, v); err == nil && match(&b) {
			doomed = append(doomed, bytes.Clone(k))
		}
	}
	for _, k := range doomed {
		if err := bs.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// applyDeleteQueue deletes a queue's bucket and, if the record named by
// the op has the op's id or there is none, the record and the bindings to
// the queue.
func (s *Store) applyDeleteQueue(tx *bbolt.Tx, msgs *bbolt.Bucket, o *op) error {
	name := o.topo.(string)
	delete(s.cache, o.id) // its handles die with the bucket
	k := key64(o.id)
	if err := msgs.DeleteBucket(k[:]); err != nil && !errors.Is(err, bbolt.ErrBucketNotFound) {
		return fmt.Errorf("queue %d: %w", o.id, err)
	}
	if name == "" {
		return nil
	}
	queues := tx.Bucket(bucketQueues)
	if v := queues.Get([]byte(name)); v != nil {
		if r, err := decodeQueue([]byte(name), v); err == nil && r.ID != o.id {
			return nil // a different queue by that name
		}
		if err := queues.Delete([]byte(name)); err != nil {
			return err
		}
	}
	return deleteBindings(tx, func(r *BindingRecord) bool {
		return !r.ToExchange && r.Destination == name
	})
}
