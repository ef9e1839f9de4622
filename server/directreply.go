package server

import (
	"crypto/rand"
	"encoding/base64"
	"strings"
	"sync"

	"github.com/warrenmq/warren/internal/wire"
	"github.com/warrenmq/warren/queue"
)

// Direct reply-to, as RabbitMQ has it. A requester consumes the
// pseudo-queue amq.rabbitmq.reply-to in no-ack mode; a publish on that
// channel with reply_to amq.rabbitmq.reply-to leaves with reply_to
// amq.rabbitmq.reply-to.<token>; a reply published to the default exchange
// with that routing key is delivered straight to the requester's consumer,
// with no queue in between. The token is 128 random bits the vhost maps to
// the consumer: it names one channel's consumer and cannot be guessed to
// reach another. A reply to a consumer that has gone is unroutable: dropped,
// or returned if mandatory, as in RabbitMQ.

const (
	replyQueue  = "amq.rabbitmq.reply-to"
	replyPrefix = replyQueue + "."
)

// isReplyKey reports whether a publish to exchange with key is a reply to a
// direct reply-to consumer.
func isReplyKey(exchange, key string) bool {
	return exchange == "" && len(key) > len(replyPrefix) && key[:len(replyPrefix)] == replyPrefix
}

// replyConsumer is a channel's consumer of amq.rabbitmq.reply-to.
type replyConsumer struct {
	ch     *channel
	tag    string
	token  string // the rewritten reply_to: replyPrefix + a random key
	active bool   // guarded by ch.mu: from consume-ok until cancelled
}

// replyRegistry maps tokens to the consumers they name.
type replyRegistry struct {
	mu sync.Mutex // guards m; a leaf, taken with no other lock held
	m  map[string]*replyConsumer
}

func (r *replyRegistry) add(rc *replyConsumer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]*replyConsumer{}
	}
	r.m[rc.token] = rc
}

func (r *replyRegistry) remove(token string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, token)
}

func (r *replyRegistry) get(token string) *replyConsumer {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[token]
}

// deliver hands a reply to its consumer, reporting whether it went out.
func (rc *replyConsumer) deliver(m *queue.Message) bool {
	ch := rc.ch
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if ch.closed || !rc.active {
		return false
	}
	tag := ch.nextTag + 1
	if !ch.c.out.appendDelivery(ch.id, nil, rc.tag, tag, queue.Entry{Msg: m}) {
		return false
	}
	ch.nextTag = tag
	ch.c.stats.deliveredConsumeAuto.Add(1)
	return true
}

// consumeReplies implements basic.consume of amq.rabbitmq.reply-to.
func (ch *channel) consumeReplies(m *wire.BasicConsume) error {
	if !m.NoAck {
		return errorf(wire.PreconditionFailed, "reply consumer cannot acknowledge")
	}
	if ch.reply != nil {
		return errorf(wire.PreconditionFailed, "reply consumer already set")
	}
	tag, err := ch.consumerTag(m.ConsumerTag)
	if err != nil {
		return err
	}
	var key [16]byte
	rand.Read(key[:])
	rc := &replyConsumer{ch: ch, tag: tag, token: replyPrefix + base64.RawURLEncoding.EncodeToString(key[:])}
	ch.reply = rc
	ch.c.vh.replies.add(rc)
	if !m.NoWait {
		ch.c.out.sendMethod(ch.id, &wire.BasicConsumeOk{ConsumerTag: tag})
	}
	ch.mu.Lock()
	rc.active = true
	ch.mu.Unlock()
	return nil
}

// cancelReplies ends the channel's reply consumer, if any: replies to its
// token are unroutable from now on.
func (ch *channel) cancelReplies() {
	rc := ch.reply
	if rc == nil {
		return
	}
	ch.reply = nil
	ch.c.vh.replies.remove(rc.token)
	ch.mu.Lock()
	rc.active = false
	ch.mu.Unlock()
}

// rewriteReplyTo gives a message published with reply_to
// amq.rabbitmq.reply-to the channel's token instead.
func (ch *channel) rewriteReplyTo(m *queue.Message) *amqpError {
	if ch.reply == nil {
		return errorf(wire.PreconditionFailed, "fast reply consumer does not exist")
	}
	var p wire.Properties
	// The properties were validated when the header arrived, and the
	// token is short: neither step fails but on a bug.
	if err := p.Decode(m.Props); err != nil {
		return errorf(wire.InternalError, "reply_to rewrite: %v", err)
	}
	p.ReplyTo = ch.reply.token
	props, err := p.AppendTo(nil)
	if err != nil {
		return errorf(wire.InternalError, "reply_to rewrite: %v", err)
	}
	m.Props = props
	return nil
}

// publishReply delivers a reply to the consumer its routing key names.
func (ch *channel) publishReply(m *queue.Message, mandatory bool) {
	delivered := false
	if rc := ch.c.vh.replies.get(m.RoutingKey); rc != nil {
		delivered = rc.deliver(m)
	}
	switch {
	case delivered:
		ch.c.stats.routed.Add(1)
	case mandatory:
		ch.c.stats.unroutableReturned.Add(1)
	default:
		ch.c.stats.unroutableDropped.Add(1)
	}
	if !delivered && mandatory {
		ch.c.out.sendContent(ch.id, &wire.BasicReturn{
			ReplyCode: wire.NoRoute, ReplyText: "NO_ROUTE", Exchange: m.Exchange, RoutingKey: m.RoutingKey,
		}, m)
	}
	if ch.confirm != nil {
		ch.settleConfirm(0, 0, false)
	}
}

// declareReplies answers queue.declare of amq.rabbitmq.reply-to (always
// there) or of a token (there while its consumer is), as RabbitMQ does:
// no messages, one consumer.
func (ch *channel) declareReplies(m *wire.QueueDeclare) error {
	if m.Queue != replyQueue && ch.c.vh.replies.get(m.Queue) == nil {
		return ch.c.vh.errNoQueue(m.Queue)
	}
	ch.lastQueue = m.Queue
	if !m.NoWait {
		ch.c.out.sendMethod(ch.id, &wire.QueueDeclareOk{Queue: m.Queue, MessageCount: 0, ConsumerCount: 1})
	}
	return nil
}

// isReplyQueue reports whether name is the reply pseudo-queue or a token.
func isReplyQueue(name string) bool {
	return name == replyQueue || strings.HasPrefix(name, replyPrefix)
}
