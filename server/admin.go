package server

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/warrenmq/warren/binding"
	"github.com/warrenmq/warren/internal/wire"
	"github.com/warrenmq/warren/queue"
)

// This file is the broker's administrative interface: snapshots of its
// state and the operations the management API and the metrics collector
// need. Everything here may be called from any goroutine; nothing on the
// message path waits for it beyond the locks it already takes.

// ErrNotFound is returned for an object that does not exist.
var ErrNotFound = errors.New("not found")

// Error is an operation refused with an AMQP reply code, as a client
// would have been refused.
type Error struct {
	Code uint16 // AMQP reply code, such as 404 or 406
	Text string // RabbitMQ-style text, "NOT_FOUND - no queue 'x' in vhost '/'"
}

func (e *Error) Error() string { return e.Text }

// adminError turns an internal error into an *Error.
func adminError(err error) error {
	var ae *amqpError
	if errors.As(err, &ae) {
		return &Error{Code: ae.code, Text: ae.text}
	}
	return err
}

// QueueInfo describes a queue.
type QueueInfo struct {
	Name                           string
	Durable, Exclusive, AutoDelete bool
	Arguments                      wire.Table
	// Owner is the name of the connection that owns an exclusive queue.
	Owner string
	queue.Stats
	// ReadyInMemory is how many of the ready messages are held in memory,
	// counted against the queue's window; the rest are paged out to the
	// store (some of them still in memory until the store commits them).
	ReadyInMemory int
	// SingleActive is x-single-active-consumer; ActiveTag is then the tag
	// of the consumer it delivers to, "" while it has none.
	SingleActive bool
	ActiveTag    string
}

// ExchangeInfo describes an exchange.
type ExchangeInfo struct {
	Name                          string
	Type                          string
	Durable, AutoDelete, Internal bool
	Arguments                     wire.Table
}

// BindingInfo describes a binding. DestinationType is "queue" or
// "exchange". The default exchange's implicit bindings (one per queue,
// keyed by its name) are listed too, as RabbitMQ does.
type BindingInfo struct {
	Source          string
	Destination     string
	DestinationType string
	RoutingKey      string
	Arguments       wire.Table
}

// ConnectionInfo describes an open client connection.
type ConnectionInfo struct {
	// Name is RabbitMQ's: "peerhost:peerport -> host:port".
	Name             string
	User             string
	Vhost            string
	PeerHost         string
	PeerPort         int
	Host             string
	Port             int
	ConnectedAt      time.Time
	Channels         int
	ClientProperties wire.Table
	FrameMax         uint32
	ChannelMax       uint16
	Heartbeat        time.Duration
	// Flow is true while publisher flow control holds the connection back
	// (RabbitMQ's state "flow").
	Flow bool
	// Blocked is true while a resource alarm (free disk space, memory)
	// holds the connection back after it published (RabbitMQ's state
	// "blocked"); Blocking while an alarm is raised and it has not
	// published since ("blocking").
	Blocked, Blocking bool
	Counters          Counters // this connection's message counters
}

// ChannelInfo describes an open channel.
type ChannelInfo struct {
	Connection     string // the connection's name
	PeerHost       string // the connection's client address
	PeerPort       int
	Number         uint16
	User           string
	Vhost          string
	Consumers      int
	Unacked        int
	Prefetch       uint16 // basic.qos global=false, for new consumers
	GlobalPrefetch uint16 // basic.qos global=true
	Confirm        bool
	Transactional  bool
}

// Name is RabbitMQ's channel name: the connection's and the number.
func (c ChannelInfo) Name() string { return fmt.Sprintf("%s (%d)", c.Connection, c.Number) }

// ConsumerInfo describes a consumer.
type ConsumerInfo struct {
	Queue       string
	Tag         string
	AckRequired bool
	Exclusive   bool
	Prefetch    uint16
	Priority    int
	Active      bool
	// ActivityStatus is RabbitMQ's: "up", or in a single active consumer
	// queue "single_active" for the consumer it delivers to and "waiting"
	// (and Active false) for the others.
	ActivityStatus string
	Channel        ChannelInfo // the channel it consumes on
}

// Overview counts what the broker holds now.
type Overview struct {
	Connections, Channels, Consumers, Queues, Exchanges int
	Ready, Unacked                                      int
	ReadyBytes                                          int64
}

// Vhost is the one virtual host Warren serves.
func (s *Server) Vhost() string { return s.vhost.name }

// Authenticate reports whether user and password name a broker user.
func (s *Server) Authenticate(user, password string) bool {
	want, ok := s.opts.Users[user]
	return ok && subtle.ConstantTimeCompare([]byte(want), []byte(password)) == 1
}

// Password returns a user's password ("" for none).
func (s *Server) Password(user string) string { return s.opts.Users[user] }

// Users returns the broker's user names, sorted.
func (s *Server) Users() []string {
	var names []string
	for u := range s.opts.Users {
		names = append(names, u)
	}
	slices.Sort(names)
	return names
}

// Queues returns every queue, sorted by name.
func (s *Server) Queues() []QueueInfo {
	vh := s.vhost
	vh.mu.Lock()
	recs := make([]*queueRec, 0, len(vh.queues))
	for _, r := range vh.queues {
		recs = append(recs, r)
	}
	vh.mu.Unlock()
	out := make([]QueueInfo, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.info())
	}
	slices.SortFunc(out, func(a, b QueueInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Queue returns one queue.
func (s *Server) Queue(name string) (QueueInfo, error) {
	vh := s.vhost
	vh.mu.Lock()
	r, ok := vh.queues[name]
	vh.mu.Unlock()
	if !ok {
		return QueueInfo{}, ErrNotFound
	}
	return r.info(), nil
}

func (r *queueRec) info() QueueInfo {
	qi := QueueInfo{
		Name: r.name, Durable: r.durable, Exclusive: r.exclusive, AutoDelete: r.autoDelete,
		Arguments: r.args,
	}
	qi.Stats, qi.ReadyInMemory = r.q.StatsInMemory()
	if qi.SingleActive = r.q.SingleActive(); qi.SingleActive {
		if cs, ok := r.q.ActiveConsumer().(*consumer); ok {
			qi.ActiveTag = cs.tag
		}
	}
	if r.owner != nil {
		qi.Owner = r.owner.name()
	}
	return qi
}

// Exchanges returns every exchange, sorted by name ("" first).
func (s *Server) Exchanges() []ExchangeInfo {
	vh := s.vhost
	vh.mu.Lock()
	out := make([]ExchangeInfo, 0, len(vh.exchanges))
	for _, x := range vh.exchanges {
		out = append(out, x.info())
	}
	vh.mu.Unlock()
	slices.SortFunc(out, func(a, b ExchangeInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Exchange returns one exchange.
func (s *Server) Exchange(name string) (ExchangeInfo, error) {
	vh := s.vhost
	vh.mu.Lock()
	defer vh.mu.Unlock()
	x, ok := vh.exchanges[name]
	if !ok {
		return ExchangeInfo{}, ErrNotFound
	}
	return x.info(), nil
}

func (x *exchangeRec) info() ExchangeInfo {
	return ExchangeInfo{Name: x.name, Type: string(x.kind), Durable: x.durable, AutoDelete: x.autoDelete, Internal: x.internal, Arguments: x.args}
}

// Bindings returns every binding: first the default exchange's implicit
// ones in queue name order, then the others by source exchange name, in
// the order they were made.
func (s *Server) Bindings() []BindingInfo {
	vh := s.vhost
	vh.mu.Lock()
	queues := make([]string, 0, len(vh.queues))
	for name := range vh.queues {
		queues = append(queues, name)
	}
	sources := make([]*exchangeRec, 0, len(vh.exchanges))
	for _, x := range vh.exchanges {
		if x.name != "" && x.matcher.Len() > 0 {
			sources = append(sources, x)
		}
	}
	var bs []binding.Binding
	slices.SortFunc(sources, func(a, b *exchangeRec) int { return strings.Compare(a.name, b.name) })
	for _, x := range sources {
		bs = append(bs, x.matcher.Bindings()...)
	}
	vh.mu.Unlock()
	slices.Sort(queues)
	out := make([]BindingInfo, 0, len(queues)+len(bs))
	for _, q := range queues {
		out = append(out, BindingInfo{Source: "", Destination: q, DestinationType: "queue", RoutingKey: q})
	}
	for _, b := range bs {
		bi := BindingInfo{Source: b.Source, Destination: b.Destination, DestinationType: "queue", RoutingKey: b.Key, Arguments: b.Args}
		if b.Kind == binding.ToExchange {
			bi.DestinationType = "exchange"
		}
		out = append(out, bi)
	}
	return out
}

// openConns returns the connections past connection.open.
func (s *Server) openConns() []*conn {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		if c.isOpen.Load() {
			conns = append(conns, c)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(conns, func(a, b *conn) int { return int(a.id) - int(b.id) })
	return conns
}

// name is RabbitMQ's connection name.
func (c *conn) name() string {
	return c.nc.RemoteAddr().String() + " -> " + c.nc.LocalAddr().String()
}

// openChannels returns the connection's channels in number order.
func (c *conn) openChannels() []*channel {
	c.chanMu.Lock()
	chs := make([]*channel, 0, len(c.channels))
	for _, ch := range c.channels {
		chs = append(chs, ch)
	}
	c.chanMu.Unlock()
	slices.SortFunc(chs, func(a, b *channel) int { return int(a.id) - int(b.id) })
	return chs
}

func splitHostPort(addr net.Addr) (string, int) {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String(), 0
	}
	p, _ := strconv.Atoi(port)
	return host, p
}

// Connections returns the open connections, oldest first.
func (s *Server) Connections() []ConnectionInfo {
	var out []ConnectionInfo
	for _, c := range s.openConns() {
		ci := ConnectionInfo{
			Name: c.name(), User: c.user, Vhost: s.vhost.name,
			ConnectedAt: c.connectedAt, ClientProperties: c.clientProps,
			FrameMax: c.frameMax, ChannelMax: c.channelMax,
			Heartbeat: time.Duration(c.heartbeat.Load()),
		}
		ci.PeerHost, ci.PeerPort = splitHostPort(c.nc.RemoteAddr())
		ci.Host, ci.Port = splitHostPort(c.nc.LocalAddr())
		c.chanMu.Lock()
		ci.Channels = len(c.channels)
		c.chanMu.Unlock()
		ci.Counters.add(&c.stats)
		ci.Flow = c.inFlow.Load()
		ci.Blocked = c.blocked.Load()
		ci.Blocking = !ci.Blocked && s.alarmed()
		out = append(out, ci)
	}
	return out
}

// Channels returns the open channels of every open connection.
func (s *Server) Channels() []ChannelInfo {
	var out []ChannelInfo
	for _, c := range s.openConns() {
		for _, ch := range c.openChannels() {
			out = append(out, ch.info())
		}
	}
	return out
}

func (ch *channel) info() ChannelInfo {
	mode := ch.mode.Load()
	ci := ChannelInfo{
		Connection: ch.c.name(), Number: ch.id, User: ch.c.user, Vhost: ch.c.vh.name,
		Confirm: mode == modeConfirm, Transactional: mode == modeTx,
	}
	ci.PeerHost, ci.PeerPort = splitHostPort(ch.c.nc.RemoteAddr())
	ch.mu.Lock()
	ci.Consumers = len(ch.consumers)
	ci.Unacked = ch.unacked.live
	ci.Prefetch, ci.GlobalPrefetch = ch.prefetch, ch.globalPrefetch
	ch.mu.Unlock()
	return ci
}

// Consumers returns every consumer of every open channel, by connection,
// channel and tag.
func (s *Server) Consumers() []ConsumerInfo {
	var out []ConsumerInfo
	var of []*consumer // out[i] is of[i]'s
	for _, c := range s.openConns() {
		for _, ch := range c.openChannels() {
			chi := ch.info()
			ch.mu.Lock()
			start := len(out)
			for _, cs := range ch.consumers {
				out = append(out, ConsumerInfo{
					Queue: cs.rec.name, Tag: cs.tag, AckRequired: !cs.noAck, Exclusive: cs.exclusive,
					Prefetch: cs.prefetch, Priority: cs.priority, Active: cs.active, ActivityStatus: "up", Channel: chi,
				})
				of = append(of, cs)
			}
			ch.mu.Unlock()
			slices.SortFunc(out[start:], func(a, b ConsumerInfo) int { return strings.Compare(a.Tag, b.Tag) })
			slices.SortFunc(of[start:], func(a, b *consumer) int { return strings.Compare(a.tag, b.tag) })
		}
	}
	// Asked with no channel's lock held: a queue's lock comes first.
	for i, cs := range of {
		if q := cs.rec.q; q.SingleActive() {
			if q.ActiveConsumer() == queue.Consumer(cs) {
				out[i].ActivityStatus = "single_active"
			} else {
				out[i].Active, out[i].ActivityStatus = false, "waiting"
			}
		}
	}
	return out
}

// Overview counts connections, channels, consumers, queues, exchanges and
// the messages the queues hold.
func (s *Server) Overview() Overview {
	var o Overview
	for _, c := range s.openConns() {
		o.Connections++
		for _, ch := range c.openChannels() {
			o.Channels++
			ch.mu.Lock()
			o.Consumers += len(ch.consumers)
			ch.mu.Unlock()
		}
	}
	for _, q := range s.Queues() {
		o.Queues++
		o.Ready += q.Ready
		o.Unacked += q.Unacked
		o.ReadyBytes += q.ReadyBytes
	}
	s.vhost.mu.Lock()
	o.Exchanges = len(s.vhost.exchanges)
	s.vhost.mu.Unlock()
	return o
}

// DeclareExchange declares an exchange as exchange.declare would.
func (s *Server) DeclareExchange(x ExchangeInfo) error {
	if err := checkShortstr("exchange name", x.Name); err != nil {
		return err
	}
	return adminError(s.vhost.declareExchange(&wire.ExchangeDeclare{
		Exchange: x.Name, Type: x.Type, Durable: x.Durable, AutoDelete: x.AutoDelete,
		Internal: x.Internal, Arguments: x.Arguments,
	}))
}

// DeleteExchange deletes an exchange as exchange.delete would; a missing
// one is ErrNotFound.
func (s *Server) DeleteExchange(name string, ifUnused bool) error {
	if _, err := s.Exchange(name); err != nil {
		return err
	}
	return adminError(s.vhost.deleteExchange(name, ifUnused))
}

// DeclareQueue declares a queue as queue.declare would. Exclusive queues
// belong to a connection, so they cannot be declared here.
func (s *Server) DeclareQueue(q QueueInfo) error {
	if q.Exclusive {
		return &Error{Code: wire.PreconditionFailed, Text: "PRECONDITION_FAILED - an exclusive queue belongs to a connection and cannot be declared here"}
	}
	if q.Name == "" {
		return &Error{Code: wire.PreconditionFailed, Text: "PRECONDITION_FAILED - a queue name is required"}
	}
	if err := checkShortstr("queue name", q.Name); err != nil {
		return err
	}
	_, _, _, err := s.vhost.declareQueue(nil, &wire.QueueDeclare{
		Queue: q.Name, Durable: q.Durable, AutoDelete: q.AutoDelete, Arguments: q.Arguments,
	})
	return adminError(err)
}

// DeleteQueue deletes a queue as queue.delete would, and returns the
// number of messages it held; a missing one is ErrNotFound.
func (s *Server) DeleteQueue(name string, ifUnused, ifEmpty bool) (int, error) {
	r, err := s.adminQueue(name)
	if err != nil {
		return 0, err
	}
	n, err := s.vhost.deleteQueue(r.owner, name, ifUnused, ifEmpty)
	return n, adminError(err)
}

// adminQueue finds a queue; the management API may act on exclusive
// queues too, as RabbitMQ's does.
func (s *Server) adminQueue(name string) (*queueRec, error) {
	vh := s.vhost
	vh.mu.Lock()
	defer vh.mu.Unlock()
	r, ok := vh.queues[name]
	if !ok {
		return nil, ErrNotFound
	}
	return r, nil
}

// PurgeQueue removes a queue's ready messages and returns how many.
func (s *Server) PurgeQueue(name string) (int, error) {
	r, err := s.adminQueue(name)
	if err != nil {
		return 0, err
	}
	return r.q.Purge(), nil
}

func (s *Server) binding(b BindingInfo) (binding.Binding, error) {
	bb := binding.Binding{Source: b.Source, Destination: b.Destination, Key: b.RoutingKey, Args: b.Arguments}
	if err := checkShortstr("routing key", b.RoutingKey); err != nil {
		return bb, err
	}
	switch b.DestinationType {
	case "queue", "q":
		bb.Kind = binding.ToQueue
	case "exchange", "e":
		bb.Kind = binding.ToExchange
	default:
		return bb, &Error{Code: wire.PreconditionFailed, Text: fmt.Sprintf("PRECONDITION_FAILED - unknown destination type %q", b.DestinationType)}
	}
	return bb, nil
}

// Bind adds a binding as queue.bind or exchange.bind would.
func (s *Server) Bind(b BindingInfo) error {
	bb, owner, err := s.bindingAs(b)
	if err != nil {
		return err
	}
	return adminError(s.vhost.bind(owner, bb))
}

// Unbind removes a binding as queue.unbind or exchange.unbind would.
func (s *Server) Unbind(b BindingInfo) error {
	bb, owner, err := s.bindingAs(b)
	if err != nil {
		return err
	}
	return adminError(s.vhost.unbind(owner, bb))
}

// bindingAs converts b and finds the connection to act as: the owner of
// an exclusive destination queue, which the management API may bind too.
func (s *Server) bindingAs(b BindingInfo) (binding.Binding, *conn, error) {
	bb, err := s.binding(b)
	if err != nil {
		return bb, nil, err
	}
	var owner *conn
	if bb.Kind == binding.ToQueue {
		if r, err := s.adminQueue(bb.Destination); err == nil {
			owner = r.owner
		}
	}
	return bb, owner, nil
}

// Publish routes a message as basic.publish would and reports whether it
// reached a queue (one that refused it as full counts, as in RabbitMQ).
// It returns once a persistent message is on disk in every durable queue
// it went to.
func (s *Server) Publish(exchangeName, routingKey string, props wire.Properties, body []byte) (routed bool, err error) {
	if err := checkShortstr("exchange name", exchangeName); err != nil {
		return false, err
	}
	if err := checkShortstr("routing key", routingKey); err != nil {
		return false, err
	}
	if int64(len(body)) > s.opts.MaxMessageSize {
		return false, &Error{Code: wire.PreconditionFailed, Text: fmt.Sprintf("PRECONDITION_FAILED - message size %d is larger than max size %d", len(body), s.opts.MaxMessageSize)}
	}
	buf, err := props.AppendTo(nil)
	if err != nil {
		return false, &Error{Code: wire.SyntaxError, Text: "SYNTAX_ERROR - " + err.Error()}
	}
	m := &queue.Message{Exchange: exchangeName, RoutingKey: routingKey, Props: buf, Body: append([]byte(nil), body...)}
	finishMessage(m)
	st := &s.adminStats
	st.received.Add(1)
	var scratch routeScratch
	recs, err := s.vhost.route(m, &scratch, nil)
	if err != nil {
		return false, adminError(err)
	}
	var hi uint64
	for _, r := range recs {
		batch, err := r.q.Publish(m)
		if err == nil || err == queue.ErrRejectPublish {
			routed = true
		}
		hi = max(hi, batch)
	}
	if routed {
		st.routed.Add(1)
	} else {
		st.unroutableDropped.Add(1)
	}
	return routed, s.vhost.wait(hi)
}

// checkShortstr refuses a name AMQP could not carry: longer than 255 bytes
// (a shortstr) or not UTF-8.
func checkShortstr(what, s string) error {
	if len(s) > 255 || !utf8.ValidString(s) {
		return &Error{Code: wire.PreconditionFailed, Text: fmt.Sprintf("PRECONDITION_FAILED - %s must be UTF-8 of at most 255 bytes", what)}
	}
	return nil
}

// GotMessage is a message taken by Get.
type GotMessage struct {
	Exchange     string
	RoutingKey   string
	Redelivered  bool
	Properties   wire.Properties
	Body         []byte
	MessageCount int // ready messages left after this one was taken
}

// GetMode says what Get does with the messages it took.
type GetMode int

const (
	// GetRequeue puts them back, marked redelivered (ack_requeue_true).
	GetRequeue GetMode = iota
	// GetAck acknowledges them: they are gone (ack_requeue_false).
	GetAck
	// GetReject rejects them without requeue: dead-lettered if the queue
	// has a dead-letter exchange (reject_requeue_false).
	GetReject
)

// MaxGet is the most messages one Get may take.
const MaxGet = 10000

// Get takes up to count messages from the head of a queue, as basic.get
// would. They are the caller's until it calls settle, with the mode to
// settle them by (the management API does once its answer is encoded:
// if it cannot be, they go back).
func (s *Server) Get(queueName string, count int) (msgs []GotMessage, settle func(GetMode), err error) {
	if count < 0 || count > MaxGet {
		return nil, nil, &Error{Code: wire.PreconditionFailed, Text: fmt.Sprintf("PRECONDITION_FAILED - count must be from 0 to %d", MaxGet)}
	}
	r, err := s.adminQueue(queueName)
	if err != nil {
		return nil, nil, err
	}
	var entries []queue.Entry
	var out []GotMessage
	for range count {
		e, remaining, ok := r.q.Get(false)
		if !ok {
			break
		}
		entries = append(entries, e)
		gm := GotMessage{Exchange: e.Msg.Exchange, RoutingKey: e.Msg.RoutingKey, Redelivered: e.Redelivered, Body: e.Msg.Body, MessageCount: remaining}
		gm.Properties.Decode(e.Msg.Props)
		out = append(out, gm)
		st := &s.adminStats
		st.deliveredGetManual.Add(1)
		if e.Redelivered {
			st.redelivered.Add(1)
		}
	}
	var once sync.Once
	settle = func(mode GetMode) {
		once.Do(func() {
			switch mode {
			case GetRequeue:
				r.q.Requeue(entries)
			case GetAck:
				r.q.Ack(entries)
				s.adminStats.acknowledged.Add(uint64(len(entries)))
			default:
				r.q.Discard(entries)
			}
		})
	}
	return out, settle, nil
}

// CloseConnection closes an open connection with 320 CONNECTION_FORCED
// and reason as its text, as RabbitMQ's management API does.
func (s *Server) CloseConnection(name, reason string) error {
	for _, c := range s.openConns() {
		if c.name() == name {
			if reason == "" {
				reason = "Closed via management plugin"
			}
			c.forceClose(reason)
			return nil
		}
	}
	return ErrNotFound
}

// DataDir is the directory the broker keeps its data in.
func (s *Server) DataDir() string { return s.opts.DataDir }
