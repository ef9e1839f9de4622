package server

import (
	"crypto/rand"
	"encoding/base64"
	"errors"

	"github.com/warrenmq/warren/binding"
	"github.com/warrenmq/warren/confirm"
	"github.com/warrenmq/warren/internal/store"
	"github.com/warrenmq/warren/internal/wire"
	"github.com/warrenmq/warren/queue"
	"github.com/warrenmq/warren/txn"
)

// handle is the one switch over the methods a client may send on an open
// channel. A returned error is an exception; its code decides whether it
// closes the channel or the connection.
func (ch *channel) handle(m wire.Method) error {
	c := ch.c
	vh := c.vh
	switch m := m.(type) {
	case *wire.BasicPublish:
		return ch.startPublish(m)
	case *wire.BasicAck:
		return ch.ack(txn.Ack, m.DeliveryTag, m.Multiple, false)
	case *wire.BasicNack:
		return ch.ack(txn.Nack, m.DeliveryTag, m.Multiple, m.Requeue)
	case *wire.BasicReject:
		return ch.ack(txn.Reject, m.DeliveryTag, false, m.Requeue)

	case *wire.ChannelClose:
		if ch.confirm != nil {
			ch.emitConfirms() // settled confirms go before close-ok
		}
		ch.shutdown()
		c.dropChannel(ch.id)
		c.out.sendMethod(ch.id, &wire.ChannelCloseOk{})
		return nil
	case *wire.ChannelFlow:
		if !m.Active {
			return errorf(wire.NotImplemented, "active=false")
		}
		c.out.sendMethod(ch.id, &wire.ChannelFlowOk{Active: true})
		return nil
	// channel.close-ok on an open channel and channel.flow-ok (RabbitMQ
	// never sends flow) fall to the 503 below, as in RabbitMQ.
	case *wire.ChannelOpen:
		return errorf(wire.ChannelError, "second 'channel.open' seen")

	case *wire.ExchangeDeclare:
		if err := vh.declareExchange(m); err != nil {
			return err
		}
		if !m.NoWait {
			c.out.sendMethod(ch.id, &wire.ExchangeDeclareOk{})
		}
		return nil
	case *wire.ExchangeDelete:
		if err := vh.deleteExchange(m.Exchange, m.IfUnused); err != nil {
			return err
		}
		if !m.NoWait {
			c.out.sendMethod(ch.id, &wire.ExchangeDeleteOk{})
		}
		return nil
	case *wire.ExchangeBind:
		b := binding.Binding{Source: m.Source, Destination: m.Destination, Kind: binding.ToExchange, Key: m.RoutingKey, Args: m.Arguments}
		if err := vh.bind(c, b); err != nil {
			return err
		}
		if !m.NoWait {
			c.out.sendMethod(ch.id, &wire.ExchangeBindOk{})
		}
		return nil
	case *wire.ExchangeUnbind:
		b := binding.Binding{Source: m.Source, Destination: m.Destination, Kind: binding.ToExchange, Key: m.RoutingKey, Args: m.Arguments}
		if err := vh.unbind(c, b); err != nil {
			return err
		}
		if !m.NoWait {
			c.out.sendMethod(ch.id, &wire.ExchangeUnbindOk{})
		}
		return nil

	case *wire.QueueDeclare:
		if isReplyQueue(m.Queue) {
			return ch.declareReplies(m)
		}
		name, messages, consumers, err := vh.declareQueue(c, m)
		if err != nil {
			return err
		}
		ch.lastQueue = name
		if !m.NoWait {
			c.out.sendMethod(ch.id, &wire.QueueDeclareOk{Queue: name, MessageCount: uint32(messages), ConsumerCount: uint32(consumers)})
		}
		return nil
	case *wire.QueueBind:
		name, err := ch.queueName(m.Queue)
		if err != nil {
			return err
		}
		key := m.RoutingKey
		if m.Queue == "" && key == "" {
			key = name // spec: both empty binds with the last queue's name
		}
		if err := vh.bind(c, binding.Binding{Source: m.Exchange, Destination: name, Kind: binding.ToQueue, Key: key, Args: m.Arguments}); err != nil {
			return err
		}
		if !m.NoWait {
			c.out.sendMethod(ch.id, &wire.QueueBindOk{})
		}
		return nil
	case *wire.QueueUnbind:
		name, err := ch.queueName(m.Queue)
		if err != nil {
			return err
		}
		if err := vh.unbind(c, binding.Binding{Source: m.Exchange, Destination: name, Kind: binding.ToQueue, Key: m.RoutingKey, Args: m.Arguments}); err != nil {
			return err
		}
		c.out.sendMethod(ch.id, &wire.QueueUnbindOk{})
		return nil
	case *wire.QueuePurge:
		name, err := ch.queueName(m.Queue)
		if err != nil {
			return err
		}
		r, err := vh.queue(c, name)
		if err != nil {
			return err
		}
		n := r.q.Purge()
		if !m.NoWait {
			c.out.sendMethod(ch.id, &wire.QueuePurgeOk{MessageCount: uint32(n)})
		}
		return nil
	case *wire.QueueDelete:
		name, err := ch.queueName(m.Queue)
		if err != nil {
			return err
		}
		n, err := vh.deleteQueue(c, name, m.IfUnused, m.IfEmpty)
		if err != nil {
			return err
		}
		if !m.NoWait {
			c.out.sendMethod(ch.id, &wire.QueueDeleteOk{MessageCount: uint32(n)})
		}
		return nil

	case *wire.BasicQos:
		if m.PrefetchSize != 0 {
			return errorf(wire.NotImplemented, "prefetch_size!=0 (%d)", m.PrefetchSize)
		}
		ch.mu.Lock()
		if m.Global {
			ch.globalPrefetch = m.PrefetchCount
		} else {
			ch.prefetch = m.PrefetchCount
		}
		var kick []*queueRec
		for _, cs := range ch.consumers {
			kick = append(kick, cs.rec)
		}
		ch.mu.Unlock()
		c.out.sendMethod(ch.id, &wire.BasicQosOk{})
		for _, r := range kick {
			r.q.Kick() // a raised global limit may let deliveries through
		}
		return nil
	case *wire.BasicConsume:
		return ch.consume(m)
	case *wire.BasicCancel:
		if ch.reply != nil && ch.reply.tag == m.ConsumerTag {
			ch.cancelReplies()
		} else {
			ch.cancel(m.ConsumerTag)
		}
		if !m.NoWait {
			c.out.sendMethod(ch.id, &wire.BasicCancelOk{ConsumerTag: m.ConsumerTag})
		}
		return nil
	case *wire.BasicGet:
		return ch.get(m)
	case *wire.BasicRecover:
		if !m.Requeue {
			return errorf(wire.NotImplemented, "requeue=false")
		}
		ch.recover()
		c.out.sendMethod(ch.id, &wire.BasicRecoverOk{})
		return nil
	case *wire.BasicRecoverAsync:
		if !m.Requeue {
			return errorf(wire.NotImplemented, "requeue=false")
		}
		ch.recover()
		return nil

	case *wire.ConfirmSelect:
		if ch.tx != nil {
			return errorf(wire.PreconditionFailed, "cannot switch from tx to confirm mode")
		}
		if ch.confirm == nil {
			ch.confirm = &confirm.Tracker{}
			ch.mode.Store(modeConfirm)
		}
		if !m.NoWait {
			c.out.sendMethod(ch.id, &wire.ConfirmSelectOk{})
		}
		return nil

	case *wire.TxSelect:
		if ch.confirm != nil {
			return errorf(wire.PreconditionFailed, "cannot switch from confirm to tx mode")
		}
		if ch.tx == nil {
			ch.tx = &txn.Buffer[[]*queueRec]{MaxOps: c.srv.opts.MaxTxOps, MaxBytes: c.srv.opts.MaxTxBytes}
			ch.mode.Store(modeTx)
		}
		c.out.sendMethod(ch.id, &wire.TxSelectOk{})
		return nil
	case *wire.TxCommit:
		if ch.tx == nil {
			return errorf(wire.PreconditionFailed, "channel is not transactional")
		}
		// Everything the transaction logs (its publishes' writes, its
		// acks' deletes) goes into one store batch, so it is on disk
		// whole or not at all; commit-ok waits for that batch's fsync.
		// Concurrent commits join the same batch and share the fsync:
		// the reader does not wait for it (other channels carry on), the
		// commit loop sends commit-ok (see txCommitWaiter).
		vh.store.Hold()
		ch.commit()
		if vh.store.HeldClean() {
			// Nothing to write (transient messages, non-durable queues,
			// or persistent ones consumed with no-ack at once): no
			// batch to wait for.
			vh.store.Release()
			c.out.sendMethod(ch.id, &wire.TxCommitOk{})
			return nil
		}
		if ch.txWait.done == nil {
			ch.txWait = txCommitWaiter{ch: ch, done: make(chan struct{}, 1)}
		}
		ch.txWait.batch = vh.store.WatchSynced(&ch.txWait) // the held batch
		vh.store.Release()
		if ch.txWait.batch == 0 {
			return storeError(store.ErrClosed)
		}
		ch.txPending = true
		return nil
	case *wire.TxRollback:
		if ch.tx == nil {
			return errorf(wire.PreconditionFailed, "channel is not transactional")
		}
		ch.rollbackTx()
		clear(ch.txTags)
		c.out.sendMethod(ch.id, &wire.TxRollbackOk{})
		return nil
	}
	// A method only a server sends; RabbitMQ's text (the close carries
	// the method's ids).
	return errorf(wire.CommandInvalid, "unimplemented method")
}

// queueName resolves an empty queue name to the channel's last declared
// queue, as the spec allows.
func (ch *channel) queueName(name string) (string, error) {
	if name != "" {
		return name, nil
	}
	if ch.lastQueue == "" {
		return "", errorf(wire.NotFound, "no previously declared queue")
	}
	return ch.lastQueue, nil
}

// ack holds an acknowledgement in a transaction or applies it now.
func (ch *channel) ack(kind txn.SettleKind, tag uint64, multiple, requeue bool) error {
	if ch.tx != nil {
		tag, err := ch.claimTxTags(tag, multiple)
		if err != nil || tag == 0 {
			return err // tag 0: a multiple ack with nothing outstanding
		}
		return ch.txAdd(ch.tx.Settle(kind, tag, multiple, requeue))
	}
	return ch.settle(kind, tag, multiple, requeue, false)
}

// claimTxTags checks a transactional acknowledgement when it arrives, as
// RabbitMQ does, not at commit: its tag must be outstanding and not settled
// already in the transaction. It marks the tags the acknowledgement covers
// and returns the tag to settle at commit: "multiple with tag 0" means the
// deliveries made so far, not those made before the commit, so it becomes
// the last tag delivered (0 if none).
func (ch *channel) claimTxTags(tag uint64, multiple bool) (uint64, error) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.timedOut.Load() {
		return 0, ch.timeoutError()
	}
	if multiple && tag == 0 {
		tag = ch.nextTag
		if tag == 0 {
			return 0, nil
		}
	} else if ch.unacked.find(tag) < 0 || ch.txTags[tag] {
		return 0, errorf(wire.PreconditionFailed, "unknown delivery tag %d", tag)
	}
	if ch.txTags == nil {
		ch.txTags = map[uint64]bool{}
	}
	if !multiple {
		ch.txTags[tag] = true
		return tag, nil
	}
	for _, r := range ch.unacked.recs[ch.unacked.head:] {
		if r.tag > tag {
			break
		}
		if r.tag != 0 {
			ch.txTags[r.tag] = true
		}
	}
	return tag, nil
}

func (ch *channel) txAdd(err error) error {
	// The channel closes, which rolls the transaction back whole.
	switch {
	case errors.Is(err, txn.ErrTooManyOps):
		return errorf(wire.PreconditionFailed, "transaction too large: it would hold more than %d publishes and acknowledgements (max-tx-ops); nothing of it was applied", ch.c.srv.opts.MaxTxOps)
	case errors.Is(err, txn.ErrTooManyBytes):
		return errorf(wire.PreconditionFailed, "transaction too large: it would hold more than %d bytes of message bodies (max-tx-bytes); nothing of it was applied", ch.c.srv.opts.MaxTxBytes)
	}
	return err
}

// commit applies a transaction's held work in order. Every op was checked
// (and every publish routed) when it arrived, so none fails here and the
// work is applied whole: a queue deleted since takes nothing (one declared
// again under its name takes it, as in RabbitMQ, which routes to names),
// and the deliveries an acknowledgement covers are still outstanding
// (basic.recover leaves them alone).
func (ch *channel) commit() {
	clear(ch.txTags)
	ch.tx.Drain(func(op txn.Op[[]*queueRec]) {
		if op.Msg != nil {
			ch.c.vh.current(op.Dest)
			ch.deliverRouted(op.Msg, op.Mandatory, op.Dest)
			return
		}
		ch.settle(op.Kind, op.Tag, op.Multiple, op.Requeue, true)
	})
	ch.dropTxDests()
}

func newConsumerTag() string {
	var b [16]byte
	rand.Read(b[:])
	return "amq.ctag-" + base64.RawURLEncoding.EncodeToString(b[:])
}

// consumerTag returns the tag a new consumer gets: the client's, unless a
// consumer of the channel (the direct reply-to one too) has it, or a new
// one if the client gave none.
func (ch *channel) consumerTag(tag string) (string, error) {
	if tag == "" {
		return newConsumerTag(), nil
	}
	ch.mu.Lock()
	_, dup := ch.consumers[tag]
	ch.mu.Unlock()
	if dup || (ch.reply != nil && ch.reply.tag == tag) {
		return "", errorf(wire.NotAllowed, "attempt to reuse consumer tag '%s'", tag)
	}
	return tag, nil
}

func (ch *channel) consume(m *wire.BasicConsume) error {
	c := ch.c
	name, err := ch.queueName(m.Queue)
	if err != nil {
		return err
	}
	if name == replyQueue {
		return ch.consumeReplies(m)
	}
	r, err := c.vh.queue(c, name)
	if err != nil {
		return err
	}
	tag, err := ch.consumerTag(m.ConsumerTag)
	if err != nil {
		return err
	}
	cs := &consumer{ch: ch, tag: tag, rec: r, noAck: m.NoAck, exclusive: m.Exclusive}
	if v, ok := m.Arguments["x-priority"]; ok {
		p, isInt := intArg(v)
		if !isInt {
			return errorf(wire.PreconditionFailed, "invalid arg 'x-priority' for queue '%s' in vhost '%s': {unacceptable_type,%s}", name, c.vh.name, amqpType(v))
		}
		cs.priority = int(p)
	}
	if err := ch.addConsumer(cs); err != nil {
		var ae *amqpError
		if errors.As(err, &ae) {
			return ae
		}
		if errors.Is(err, queue.ErrExclusiveUse) {
			return errorf(wire.AccessRefused, "queue '%s' in vhost '%s' in exclusive use", name, c.vh.name)
		}
		return c.vh.errNoQueue(name)
	}
	// consume-ok goes out before the first delivery.
	if !m.NoWait {
		c.out.sendMethod(ch.id, &wire.BasicConsumeOk{ConsumerTag: tag})
	}
	ch.mu.Lock()
	cs.active = true
	ch.mu.Unlock()
	r.q.Kick()
	return nil
}

func (ch *channel) get(m *wire.BasicGet) error {
	c := ch.c
	name, err := ch.queueName(m.Queue)
	if err != nil {
		return err
	}
	r, err := c.vh.queue(c, name)
	if err != nil {
		return err
	}
	e, remaining, ok := r.q.Get(m.NoAck)
	if !ok {
		c.stats.getEmpty.Add(1)
		c.out.sendMethod(ch.id, &wire.BasicGetEmpty{})
		return nil
	}
	if m.NoAck {
		c.stats.deliveredGetAuto.Add(1)
	} else {
		c.stats.deliveredGetManual.Add(1)
	}
	if e.Redelivered {
		c.stats.redelivered.Add(1)
	}
	tag := ch.deliverGet(r, e, m.NoAck)
	msg := e.Msg
	if r.quorum {
		msg = withDeliveryCount(msg, e.Returns)
	}
	c.out.sendContent(ch.id, &wire.BasicGetOk{
		DeliveryTag: tag, Redelivered: e.Redelivered, Exchange: e.Msg.Exchange,
		RoutingKey: e.Msg.RoutingKey, MessageCount: uint32(remaining),
	}, msg)
	return nil
}

// withDeliveryCount returns m as a quorum queue delivers it: its headers
// carry x-delivery-count, the times it was returned to the queue before.
// m itself, which other queues and the store share, is not changed.
func withDeliveryCount(m *queue.Message, returns uint32) *queue.Message {
	var p wire.Properties
	if p.Decode(m.Props) != nil {
		return m // checked when it was published: cannot happen
	}
	if p.Headers == nil {
		p.Headers = wire.Table{}
	}
	p.Headers["x-delivery-count"] = int64(returns)
	props, err := p.AppendTo(nil)
	if err != nil {
		return m
	}
	d := *m
	d.Props = props
	return &d
}
