package server

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/warrenmq/warren/binding"
	"github.com/warrenmq/warren/exchange"
	"github.com/warrenmq/warren/internal/store"
	"github.com/warrenmq/warren/internal/wire"
	"github.com/warrenmq/warren/queue"
)

// vhost is one virtual host's topology: exchanges, queues and the bindings
// between them. Every change and every routing decision takes mu; queues have
// their own locks for their messages (lock order: vhost.mu before queue.mu).
type vhost struct {
	name   string
	store  *store.Store  // durable topology and messages; set once by the server
	window int64         // each queue's memory window in bytes
	budget *queue.Budget // the memory all queues share; nil for none

	mu        sync.Mutex              // guards the fields below and every exchangeRec.matcher
	exchanges map[string]*exchangeRec // by name; "" is the default exchange
	queues    map[string]*queueRec    // by name
	headers   int                     // headers exchanges with bindings: publishes must decode headers

	replies replyRegistry // direct reply-to consumers by token; its own lock
	stats   brokerStats   // atomics

	// nowBatch is the store batch the commit loop last reported done and
	// nowWrites how many writeNowFor calls it made for it (atomics).
	nowBatch  atomic.Uint64
	nowWrites atomic.Int32

	// lookup is lookupLocked as a func value, made once so routing does
	// not allocate a closure per publish.
	lookup func(string) (exchange.Matcher, string, bool)
}

type exchangeRec struct {
	name                          string
	kind                          exchange.Kind
	durable, autoDelete, internal bool
	args                          wire.Table
	alternate                     string // alternate-exchange argument, "" if none
	matcher                       exchange.Matcher
}

type queueRec struct {
	name string
	id   uint64 // in the store
	q    *queue.Queue
	// declBatch is the store batch holding the queue's record while it is
	// not known to be on disk, 0 after. A confirm for a message written to
	// the queue waits for it too, and is a nack if it failed.
	declBatch                      atomic.Uint64
	durable, exclusive, autoDelete bool
	args                           wire.Table
	owner                          *conn // the declaring connection of an exclusive queue
	deadLetterExchange             string
	hasDLX                         bool
	deadLetterRoutingKey           string
	hasDLRK                        bool
	quorum                         bool // x-queue-type quorum: deliveries carry x-delivery-count
}

// maxWriteNows is how many connections the commit loop writes a batch's
// confirms and commit-oks to itself (outbox.writeNow).
const maxWriteNows = 4

// writeNowFor says whether the commit loop, reporting batch done, should
// write to a connection itself rather than wake the connection's writer:
// yes for the first maxWriteNows calls per batch, so that a batch that
// many publishers wait for does not hold up the next one.
func (vh *vhost) writeNowFor(batch uint64) bool {
	if vh.nowBatch.Swap(batch) != batch {
		vh.nowWrites.Store(0)
	}
	return vh.nowWrites.Add(1) <= maxWriteNows
}

func newVhost(name string, st *store.Store, window int64, budget *queue.Budget) *vhost {
	vh := &vhost{name: name, store: st, window: window, budget: budget, exchanges: map[string]*exchangeRec{}, queues: map[string]*queueRec{}}
	for _, x := range []struct {
		name string
		kind exchange.Kind
	}{{"", "direct"}, {"amq.direct", "direct"}, {"amq.fanout", "fanout"}, {"amq.topic", "topic"}, {"amq.headers", "headers"}, {"amq.match", "headers"}} {
		vh.exchanges[x.name] = &exchangeRec{name: x.name, kind: x.kind, durable: true, matcher: exchange.NewMatcher(x.kind)}
	}
	vh.lookup = vh.lookupLocked
	return vh
}

func (vh *vhost) errNoExchange(name string) *amqpError {
	return errorf(wire.NotFound, "no exchange '%s' in vhost '%s'", name, vh.name)
}

func (vh *vhost) errNoQueue(name string) *amqpError {
	return errorf(wire.NotFound, "no queue '%s' in vhost '%s'", name, vh.name)
}

func (vh *vhost) errLocked(name string) *amqpError {
	return errorf(wire.ResourceLocked, "cannot obtain exclusive access to locked queue '%s' in vhost '%s'. It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.", name, vh.name)
}

func errDefaultExchange() *amqpError {
	return errorf(wire.AccessRefused, "operation not permitted on the default exchange")
}

func inequivalent(arg, what, name, vhost string, received, current any) *amqpError {
	return errorf(wire.PreconditionFailed, "inequivalent arg '%s' for %s '%s' in vhost '%s': received '%v' but current is '%v'", arg, what, name, vhost, received, current)
}

// declareExchange implements exchange.declare. A durable exchange is on
// disk before the declare succeeds.
func (vh *vhost) declareExchange(m *wire.ExchangeDeclare) error {
	vh.mu.Lock()
	batch, err := vh.declareExchangeLocked(m)
	mine := vh.exchanges[m.Exchange]
	vh.mu.Unlock()
	if err != nil {
		return err
	}
	if err := vh.wait(batch); err != nil {
		// Not on disk: it must not be used as if it were, so it goes,
		// unless it has been deleted and declared again meanwhile.
		vh.mu.Lock()
		if x, ok := vh.exchanges[m.Exchange]; ok && x == mine {
			vh.removeExchangeLocked(x)
		}
		vh.mu.Unlock()
		return err
	}
	return nil
}

// wait blocks until the store batch holding a topology change is on disk.
func (vh *vhost) wait(batch uint64) error {
	if batch == 0 {
		return nil
	}
	return storeError(vh.store.WaitSynced(batch))
}

// waitSince blocks until every change logged since Pending() returned lo
// is on disk: they may have been spread over several batches.
func (vh *vhost) waitSince(lo uint64) error {
	return storeError(vh.store.WaitRangeSynced(lo, vh.store.Pending()))
}

func storeError(err error) error {
	if err != nil {
		return errorf(wire.InternalError, "could not write to the store: %v", err)
	}
	return nil
}

func (vh *vhost) declareExchangeLocked(m *wire.ExchangeDeclare) (batch uint64, err error) {
	x, exists := vh.exchanges[m.Exchange]
	// RabbitMQ refuses the default exchange even to a passive declare.
	if m.Exchange == "" {
		return 0, errDefaultExchange()
	}
	if m.Passive {
		if !exists {
			return 0, vh.errNoExchange(m.Exchange)
		}
		return 0, nil
	}
	kind, ok := exchange.ParseKind(m.Type)
	if !ok {
		return 0, errorf(wire.CommandInvalid, "unknown exchange type '%s'", m.Type)
	}
	if exists {
		switch {
		case x.kind != kind:
			return 0, inequivalent("type", "exchange", m.Exchange, vh.name, m.Type, x.kind)
		case x.durable != m.Durable:
			return 0, inequivalent("durable", "exchange", m.Exchange, vh.name, m.Durable, x.durable)
		case x.autoDelete != m.AutoDelete:
			return 0, inequivalent("auto_delete", "exchange", m.Exchange, vh.name, m.AutoDelete, x.autoDelete)
		case x.internal != m.Internal:
			return 0, inequivalent("internal", "exchange", m.Exchange, vh.name, m.Internal, x.internal)
		}
		if arg, ok := argsEquivalent(exchangeEquivalenceArgs, x.args, m.Arguments); !ok {
			return 0, inequivalentArg(arg, "exchange", m.Exchange, vh.name, m.Arguments, x.args)
		}
		return 0, nil
	}
	// The reserved prefix only stops creation: an equivalent declare of
	// amq.direct succeeds in RabbitMQ, as checked above.
	if strings.HasPrefix(m.Exchange, "amq.") {
		return 0, errorf(wire.AccessRefused, "exchange name '%s' contains reserved prefix 'amq.*'", m.Exchange)
	}
	alternate, err := stringArg(m.Arguments, "alternate-exchange")
	if err != nil {
		return 0, errorf(wire.PreconditionFailed, "invalid type '%s' for arg 'alternate-exchange' in exchange '%s' in vhost '%s'", amqpType(m.Arguments["alternate-exchange"]), m.Exchange, vh.name)
	}
	vh.exchanges[m.Exchange] = &exchangeRec{
		name: m.Exchange, kind: kind, durable: m.Durable, autoDelete: m.AutoDelete,
		internal: m.Internal, args: m.Arguments, alternate: alternate, matcher: exchange.NewMatcher(kind),
	}
	if m.Durable {
		batch = vh.store.PutExchange(store.ExchangeRecord{Name: m.Exchange, Type: string(kind), AutoDelete: m.AutoDelete, Internal: m.Internal, Args: m.Arguments})
	}
	return batch, nil
}

// deleteExchange implements exchange.delete. Deleting a missing exchange
// succeeds, as in RabbitMQ 3.x.
func (vh *vhost) deleteExchange(name string, ifUnused bool) error {
	if name == "" {
		return errDefaultExchange()
	}
	if strings.HasPrefix(name, "amq.") {
		// even a missing amq.* exchange, as RabbitMQ
		return errorf(wire.AccessRefused, "deletion of system exchange '%s' in vhost '%s' not allowed", name, vh.name)
	}
	since := vh.store.Pending()
	vh.mu.Lock()
	x, ok := vh.exchanges[name]
	if !ok {
		vh.mu.Unlock()
		return nil
	}
	if ifUnused && x.matcher.Len() > 0 {
		vh.mu.Unlock()
		return errorf(wire.PreconditionFailed, "exchange '%s' in vhost '%s' in use", name, vh.name)
	}
	vh.removeExchangeLocked(x)
	vh.mu.Unlock()
	if !x.durable {
		return nil
	}
	return vh.waitSince(since)
}

func (vh *vhost) removeExchangeLocked(x *exchangeRec) {
	if x.kind == "headers" && x.matcher.Len() > 0 {
		vh.headers--
	}
	delete(vh.exchanges, x.name)
	if x.durable {
		// The store drops the bindings from and to it as well.
		vh.store.DeleteExchange(x.name)
	}
	vh.removeDestinationLocked(binding.ToExchange, x.name)
}

// removeDestinationLocked drops every binding to dest and auto-deletes the
// exchanges that lose their last binding that way.
func (vh *vhost) removeDestinationLocked(kind binding.DestKind, dest string) {
	for _, x := range vh.exchanges {
		hadBindings := x.matcher.Len() > 0
		if len(x.matcher.RemoveDestination(kind, dest)) > 0 {
			vh.afterUnbindLocked(x, hadBindings)
		}
	}
}

// afterUnbindLocked keeps the headers count and auto-delete promise after x
// lost bindings.
func (vh *vhost) afterUnbindLocked(x *exchangeRec, hadBindings bool) {
	if x.matcher.Len() > 0 || !hadBindings {
		return
	}
	if x.kind == "headers" {
		vh.headers--
	}
	if x.autoDelete {
		vh.removeExchangeLocked(x)
	}
}

// bind adds a binding; dest is a queue or an exchange by b.Kind.
func (vh *vhost) bind(c *conn, b binding.Binding) error {
	if b.Source == "" {
		return errDefaultExchange()
	}
	vh.mu.Lock()
	batch, err := vh.bindLocked(c, b)
	vh.mu.Unlock()
	if err != nil {
		return err
	}
	if err := vh.wait(batch); err != nil {
		vh.mu.Lock()
		if x, ok := vh.exchanges[b.Source]; ok && x.matcher.Remove(b) {
			vh.afterUnbindLocked(x, true)
		}
		vh.mu.Unlock()
		return err
	}
	return nil
}

func (vh *vhost) bindLocked(c *conn, b binding.Binding) (batch uint64, err error) {
	durableDest := false
	if b.Kind == binding.ToQueue {
		r, err := vh.queueLocked(c, b.Destination)
		if err != nil {
			return 0, err
		}
		durableDest = r.persistent()
	} else {
		if b.Destination == "" {
			return 0, errDefaultExchange()
		}
		d, ok := vh.exchanges[b.Destination]
		if !ok {
			return 0, vh.errNoExchange(b.Destination)
		}
		durableDest = d.durable
	}
	x, ok := vh.exchanges[b.Source]
	if !ok {
		return 0, vh.errNoExchange(b.Source)
	}
	if err := exchange.ValidateBinding(x.kind, b); err != nil {
		return 0, errorf(wire.PreconditionFailed, "%v", err)
	}
	hadBindings := x.matcher.Len() > 0
	if !x.matcher.Add(b) {
		return 0, nil
	}
	if !hadBindings && x.kind == "headers" {
		vh.headers++
	}
	// A binding is durable when both its ends are, as in RabbitMQ.
	if x.durable && durableDest {
		batch = vh.store.PutBinding(bindingRecord(b))
	}
	return batch, nil
}

func bindingRecord(b binding.Binding) store.BindingRecord {
	return store.BindingRecord{Source: b.Source, Destination: b.Destination, ToExchange: b.Kind == binding.ToExchange, RoutingKey: b.Key, Args: b.Args}
}

// persistent reports whether the queue outlives a restart. RabbitMQ deletes
// exclusive queues with their connection, durable or not.
func (r *queueRec) persistent() bool { return r.durable && !r.exclusive }

// unbind removes a binding. A missing binding is not an error.
func (vh *vhost) unbind(c *conn, b binding.Binding) error {
	if b.Source == "" {
		return errDefaultExchange()
	}
	if b.Kind == binding.ToExchange && b.Destination == "" {
		return errDefaultExchange()
	}
	vh.mu.Lock()
	// Removing what is not there succeeds, even with the source or the
	// destination missing, as in RabbitMQ 3.x.
	x, ok := vh.exchanges[b.Source]
	if !ok || !x.matcher.Remove(b) {
		vh.mu.Unlock()
		return nil
	}
	// Only a binding that exists is guarded by its queue's exclusivity.
	if r, ok := vh.queues[b.Destination]; ok && b.Kind == binding.ToQueue && r.exclusive && r.owner != c {
		x.matcher.Add(b)
		vh.mu.Unlock()
		return vh.errLocked(b.Destination)
	}
	var batch uint64
	if x.durable {
		// Deleting a binding the store never had is harmless.
		batch = vh.store.DeleteBinding(bindingRecord(b))
	}
	vh.afterUnbindLocked(x, true)
	vh.mu.Unlock()
	return vh.wait(batch)
}

// queueLocked finds a queue the connection may use.
func (vh *vhost) queueLocked(c *conn, name string) (*queueRec, error) {
	r, ok := vh.queues[name]
	if !ok {
		return nil, vh.errNoQueue(name)
	}
	if r.exclusive && r.owner != c {
		return nil, vh.errLocked(name)
	}
	return r, nil
}

// queue finds a queue the connection may use.
func (vh *vhost) queue(c *conn, name string) (*queueRec, error) {
	vh.mu.Lock()
	defer vh.mu.Unlock()
	return vh.queueLocked(c, name)
}

func newQueueName() string {
	var b [16]byte
	rand.Read(b[:])
	return "amq.gen-" + base64.RawURLEncoding.EncodeToString(b[:])
}

// declareQueue implements queue.declare; it returns the queue's name (made
// up when m.Queue is empty) and counts.
func (vh *vhost) declareQueue(c *conn, m *wire.QueueDeclare) (name string, messages, consumers int, err error) {
	vh.mu.Lock()
	r, messages, consumers, err := vh.declareQueueLocked(c, m)
	vh.mu.Unlock()
	if err != nil {
		return "", 0, 0, err
	}
	// A new durable queue, or one whose record is still being written
	// (declared by someone else a moment ago), is on disk before the
	// declare succeeds.
	batch := r.declBatch.Load()
	if err := vh.wait(batch); err != nil {
		// Not on disk: it goes now, unless it has been deleted and
		// declared again meanwhile. (Confirms of messages written to it
		// meanwhile are nacks: see declBatch.)
		vh.mu.Lock()
		var gone []queue.Consumer
		if vh.queues[r.name] == r {
			_, gone, _ = vh.removeQueueLocked(r, false, false)
		}
		vh.mu.Unlock()
		cancelConsumers(gone)
		return "", 0, 0, err
	}
	r.declBatch.CompareAndSwap(batch, 0)
	return r.name, messages, consumers, nil
}

func (vh *vhost) declareQueueLocked(c *conn, m *wire.QueueDeclare) (r *queueRec, messages, consumers int, err error) {
	vh.stats.queuesDeclared.Add(1)
	name := m.Queue
	if m.Passive {
		r, err := vh.queueLocked(c, name)
		if err != nil {
			return nil, 0, 0, err
		}
		r.q.Touch()
		st := r.q.Stats()
		return r, st.Ready, st.Consumers, nil
	}
	if name == "" {
		name = newQueueName()
	} else if strings.HasPrefix(name, "amq.") {
		return nil, 0, 0, errorf(wire.AccessRefused, "queue name '%s' contains reserved prefix 'amq.*'", name)
	}
	if r, ok := vh.queues[name]; ok {
		if r.exclusive && r.owner != c || r.exclusive != m.Exclusive {
			return nil, 0, 0, vh.errLocked(name)
		}
		switch {
		case r.durable != m.Durable && !r.exclusive: // RabbitMQ ignores it for exclusive queues
			return nil, 0, 0, inequivalent("durable", "queue", name, vh.name, m.Durable, r.durable)
		case r.autoDelete != m.AutoDelete:
			return nil, 0, 0, inequivalent("auto_delete", "queue", name, vh.name, m.AutoDelete, r.autoDelete)
		}
		if arg, ok := argsEquivalent(queueEquivalenceArgs, r.args, m.Arguments); !ok {
			return nil, 0, 0, inequivalentArg(arg, "queue", name, vh.name, m.Arguments, r.args)
		}
		r.q.Touch()
		st := r.q.Stats()
		return r, st.Ready, st.Consumers, nil
	}
	// RabbitMQ validates arguments only when it creates the queue: a
	// redeclare is checked for equivalence alone.
	cfg, aerr := parseQueueArgs(m.Arguments)
	if aerr != nil {
		return nil, 0, 0, aerr.amqpError(name, vh.name)
	}
	if err := checkQueueType(cfg, m.Durable, m.Exclusive, m.AutoDelete, m.Arguments, name, vh.name); err != nil {
		return nil, 0, 0, err
	}
	r = vh.newQueueLocked(name, vh.store.NewQueueID(), cfg, m.Durable, m.Exclusive, m.AutoDelete, m.Arguments)
	vh.stats.queuesCreated.Add(1)
	if r.persistent() {
		r.declBatch.Store(vh.store.PutQueue(store.QueueRecord{Name: name, ID: r.id, AutoDelete: m.AutoDelete, Args: m.Arguments}))
	}
	if m.Exclusive {
		r.owner = c
		// Forget the ones deleted meanwhile, so a connection that declares
		// and deletes reply queues all day holds only the live ones.
		c.exclusiveQueues = slices.DeleteFunc(c.exclusiveQueues, func(r *queueRec) bool { return r.q.Deleted() })
		c.exclusiveQueues = append(c.exclusiveQueues, r)
	}
	r.q.SetExpireHook(func() { vh.expireQueue(r) })
	return r, 0, 0, nil
}

// newQueueLocked makes a queue and adds it to the vhost; the caller
// starts its x-expires lease once it is ready for use.
func (vh *vhost) newQueueLocked(name string, id uint64, cfg queueConfig, durable, exclusive, autoDelete bool, args wire.Table) *queueRec {
	opts := cfg.opts
	opts.Store, opts.ID, opts.Window, opts.Budget = vh.store, id, vh.window, vh.budget
	opts.Durable = durable && !exclusive
	r := &queueRec{
		name: name, id: id, q: queue.New(name, opts), durable: durable, exclusive: exclusive,
		autoDelete: autoDelete, args: args,
		deadLetterExchange: cfg.dlx, hasDLX: cfg.hasDLX, deadLetterRoutingKey: cfg.dlrk, hasDLRK: cfg.hasDLRK, quorum: cfg.queueType == "quorum",
	}
	r.q.SetDeadHook(func(dead []queue.Dead) { vh.deadLetter(r, dead) })
	vh.queues[name] = r
	return r
}

// deleteQueue implements queue.delete; a missing queue is deleted already.
func (vh *vhost) deleteQueue(c *conn, name string, ifUnused, ifEmpty bool) (int, error) {
	since := vh.store.Pending()
	vh.mu.Lock()
	r, ok := vh.queues[name]
	if !ok {
		vh.mu.Unlock()
		return 0, nil
	}
	if r.exclusive && r.owner != c {
		vh.mu.Unlock()
		return 0, vh.errLocked(name)
	}
	n, consumers, err := vh.removeQueueLocked(r, ifUnused, ifEmpty)
	vh.mu.Unlock()
	switch err {
	case nil:
	case queue.ErrInUse:
		return 0, errorf(wire.PreconditionFailed, "queue '%s' in vhost '%s' in use", name, vh.name)
	case queue.ErrNotEmpty:
		return 0, errorf(wire.PreconditionFailed, "queue '%s' in vhost '%s' not empty", name, vh.name)
	default:
		return 0, nil
	}
	cancelConsumers(consumers)
	if r.persistent() {
		return n, vh.waitSince(since)
	}
	return n, nil
}

func (vh *vhost) removeQueueLocked(r *queueRec, ifUnused, ifEmpty bool) (int, []queue.Consumer, error) {
	n, consumers, err := r.q.Delete(ifUnused, ifEmpty)
	if err != nil {
		return 0, nil, err
	}
	if vh.queues[r.name] == r {
		delete(vh.queues, r.name)
	}
	vh.stats.queuesDeleted.Add(1)
	// Every queue may have paged messages out, so every queue's entries
	// go; the store drops a durable one's record and bindings too.
	if r.persistent() || r.q.UsedStore() {
		vh.store.DeleteQueue(r.name, r.id)
	}
	vh.removeDestinationLocked(binding.ToQueue, r.name)
	return n, consumers, nil
}

// cancelConsumers tells the consumers of a deleted queue.
func cancelConsumers(consumers []queue.Consumer) {
	for _, qc := range consumers {
		if cs, ok := qc.(*consumer); ok {
			cs.ch.serverCancel(cs)
		}
	}
}

// deleteIfUnused removes an auto-delete queue that lost its last consumer.
func (vh *vhost) deleteIfUnused(r *queueRec) {
	vh.mu.Lock()
	defer vh.mu.Unlock()
	vh.removeQueueLocked(r, true, false)
}

// expireQueue deletes a queue whose x-expires lease ran out, unless a
// consumer came in the meantime.
func (vh *vhost) expireQueue(r *queueRec) {
	vh.mu.Lock()
	defer vh.mu.Unlock()
	if vh.queues[r.name] == r {
		vh.removeQueueLocked(r, true, false)
	}
}

// dropExclusive deletes the exclusive queues of a closing connection.
func (vh *vhost) dropExclusive(c *conn) {
	for _, r := range c.exclusiveQueues {
		vh.mu.Lock()
		_, consumers, _ := vh.removeQueueLocked(r, false, false)
		vh.mu.Unlock()
		cancelConsumers(consumers)
	}
	c.exclusiveQueues = nil
}

// route resolves a publish to the queues it reaches, appended to out.
func (vh *vhost) route(m *queue.Message, s *routeScratch, out []*queueRec) ([]*queueRec, error) {
	exchangeName, key := m.Exchange, m.RoutingKey
	vh.mu.Lock()
	defer vh.mu.Unlock()
	if exchangeName == "" {
		if r, ok := vh.queues[key]; ok {
			out = append(out, r)
		}
		return out, nil
	}
	x, ok := vh.exchanges[exchangeName]
	if !ok {
		return out, vh.errNoExchange(exchangeName)
	}
	if x.internal {
		return out, errorf(wire.AccessRefused, "cannot publish to internal exchange '%s' in vhost '%s'", exchangeName, vh.name)
	}
	var headers map[string]any
	if vh.headers > 0 && wire.PropsHasHeaders(m.Props) {
		var p wire.Properties
		if p.Decode(m.Props) == nil {
			headers = p.Headers
		}
	}
	s.names = exchange.Route(exchangeName, key, headers, vh.lookup, &s.route, s.names[:0])
	for _, n := range s.names {
		if r, ok := vh.queues[n]; ok {
			out = append(out, r)
		}
	}
	return out, nil
}

// current replaces each queue in recs by the one now under its name, if
// any: a queue deleted and declared again since recs were routed.
func (vh *vhost) current(recs []*queueRec) {
	vh.mu.Lock()
	defer vh.mu.Unlock()
	for i, r := range recs {
		if cur, ok := vh.queues[r.name]; ok {
			recs[i] = cur
		}
	}
}

// lookupLocked is exchange.Route's view of the exchanges; vh.mu is held.
func (vh *vhost) lookupLocked(name string) (exchange.Matcher, string, bool) {
	x, ok := vh.exchanges[name]
	if !ok {
		return nil, "", false
	}
	return x.matcher, x.alternate, true
}

// routeScratch is per-channel memory reused by route.
type routeScratch struct {
	route exchange.RouteScratch
	names []string
}

func stringArg(t wire.Table, key string) (string, error) {
	v, ok := t[key]
	if !ok {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%v is not a string", v)
	}
	return s, nil
}

// recover rebuilds the durable topology the store kept, before the server
// serves: exchanges, queues with their messages on disk, and bindings.
func (vh *vhost) recover(rec *store.Recovered) error {
	vh.mu.Lock()
	defer vh.mu.Unlock()
	for _, x := range rec.Exchanges {
		if _, ok := vh.exchanges[x.Name]; ok {
			continue // predeclared
		}
		kind, ok := exchange.ParseKind(x.Type)
		if !ok {
			return fmt.Errorf("exchange %q: unknown type %q", x.Name, x.Type)
		}
		alternate, _ := stringArg(x.Args, "alternate-exchange")
		vh.exchanges[x.Name] = &exchangeRec{
			name: x.Name, kind: kind, durable: true, autoDelete: x.AutoDelete,
			internal: x.Internal, args: x.Args, alternate: alternate, matcher: exchange.NewMatcher(kind),
		}
	}
	var queues []*queueRec
	for _, q := range rec.Queues {
		cfg, aerr := parseQueueArgs(q.Args)
		if aerr != nil {
			return fmt.Errorf("queue %q: %s", q.Name, aerr.amqpError(q.Name, vh.name).text)
		}
		r := vh.newQueueLocked(q.Name, q.ID, cfg, true, false, q.AutoDelete, q.Args)
		if q.Lanes == nil {
			r.q.Recover(q.Count, q.Bytes, q.Lo, q.Hi)
		}
		for _, l := range q.Lanes {
			r.q.Recover(l.Count, l.Bytes, l.Lo, l.Hi)
		}
		queues = append(queues, r)
	}
	for _, b := range rec.Bindings {
		x, ok := vh.exchanges[b.Source]
		if !ok {
			continue
		}
		kind := binding.ToQueue
		if b.ToExchange {
			kind = binding.ToExchange
		}
		hadBindings := x.matcher.Len() > 0
		if x.matcher.Add(binding.Binding{Source: b.Source, Destination: b.Destination, Kind: kind, Key: b.RoutingKey, Args: b.Args}) && !hadBindings && x.kind == "headers" {
			vh.headers++
		}
	}
	for _, r := range queues {
		r.q.SetExpireHook(func() { vh.expireQueue(r) })
	}
	return nil
}
