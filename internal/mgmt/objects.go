package mgmt

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/warrenmq/warren/internal/wire"
	"github.com/warrenmq/warren/server"
)

// rabbitVersion is the RabbitMQ release whose management API this one
// follows; tools read it to know which fields to expect.
const rabbitVersion = "3.10.8"

// table turns an AMQP table into JSON-ready values: RabbitMQ shows
// timestamps as seconds, byte arrays and decimals as text, and an absent
// table as {}.
func table(t wire.Table) map[string]any {
	m := make(map[string]any, len(t))
	for k, v := range t {
		m[k] = jsonValue(v)
	}
	return m
}

func jsonValue(v any) any {
	switch v := v.(type) {
	case wire.Table:
		return table(v)
	case map[string]any:
		return table(v)
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = jsonValue(x)
		}
		return out
	case []byte:
		return string(v)
	case time.Time:
		return v.Unix()
	case wire.Decimal:
		return fmt.Sprint(v)
	case float64:
		return finite(v)
	case float32:
		return finite(float64(v))
	}
	return v
}

// finite keeps a number JSON can carry; NaN and the infinities, which AMQP
// doubles may be and JSON numbers may not, become text.
func finite(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return f
}

// fromJSON turns decoded JSON (with json.Number) into AMQP table values:
// whole numbers become long integers, others doubles, as RabbitMQ does.
func fromJSON(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		if f, err := v.Float64(); err == nil && !math.IsInf(f, 0) {
			return f
		}
		return string(v) // out of a double's range: kept as written
	case map[string]any:
		t := make(wire.Table, len(v))
		for k, x := range v {
			t[k] = fromJSON(x)
		}
		return t
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = fromJSON(x)
		}
		return out
	}
	return v
}

func tableFromJSON(m map[string]any) wire.Table {
	if len(m) == 0 {
		return nil
	}
	return fromJSON(m).(wire.Table)
}

func (a *api) queueJSON(q server.QueueInfo, prev, cur *sample) map[string]any {
	typ, ok := q.Arguments["x-queue-type"].(string) // validated when declared
	if !ok {
		typ = "classic"
	}
	m := map[string]any{
		"name": q.Name, "vhost": a.srv.Vhost(), "durable": q.Durable, "auto_delete": q.AutoDelete,
		"exclusive": q.Exclusive, "arguments": table(q.Arguments), "node": a.node,
		"state": "running", "type": typ,
		"messages":                q.Ready + q.Unacked,
		"messages_ready":          q.Ready,
		"messages_unacknowledged": q.Unacked,
		"message_bytes_ready":     q.ReadyBytes,
		// Unacknowledged messages are always in memory; ready ones past
		// the queue's window are paged out to the store.
		"messages_ready_ram":          q.ReadyInMemory,
		"messages_unacknowledged_ram": q.Unacked,
		"messages_ram":                q.ReadyInMemory + q.Unacked,
		"messages_paged_out":          q.Ready - q.ReadyInMemory,
		"consumers":                   q.Consumers,
		"message_stats":               queueStats(prev, cur, q.Name, q.Counts),
		"policy":                      nil,
		"exclusive_consumer_tag":      nil,
		"single_active_consumer_tag":  nil,
	}
	if q.ActiveTag != "" {
		m["single_active_consumer_tag"] = q.ActiveTag
	}
	if q.Owner != "" {
		m["owner_pid_details"] = map[string]any{"name": q.Owner}
	}
	return m
}

func (a *api) exchangeJSON(x server.ExchangeInfo) map[string]any {
	return map[string]any{
		"name": x.Name, "vhost": a.srv.Vhost(), "type": x.Type, "durable": x.Durable,
		"auto_delete": x.AutoDelete, "internal": x.Internal, "arguments": table(x.Arguments),
		"user_who_performed_action": "rmq-internal",
	}
}

// propertiesKey names a binding in URLs: its routing key, escaped, and a
// digest of its arguments if it has any ("~" alone for an empty key
// without arguments), as RabbitMQ's properties_key does.
func propertiesKey(b server.BindingInfo) string {
	key := url.PathEscape(b.RoutingKey)
	if len(b.Arguments) == 0 {
		if key == "" {
			return "~"
		}
		return key
	}
	// json.Marshal sorts map keys, so equal tables digest equally.
	data, _ := json.Marshal(table(b.Arguments))
	sum := sha256.Sum256(data)
	return key + "~" + base64.RawURLEncoding.EncodeToString(sum[:6])
}

func (a *api) bindingJSON(b server.BindingInfo) map[string]any {
	return map[string]any{
		"source": b.Source, "vhost": a.srv.Vhost(), "destination": b.Destination,
		"destination_type": b.DestinationType, "routing_key": b.RoutingKey,
		"arguments": table(b.Arguments), "properties_key": propertiesKey(b),
	}
}

func (a *api) connectionJSON(c server.ConnectionInfo) map[string]any {
	state := "running"
	switch {
	case c.Blocked:
		state = "blocked"
	case c.Blocking:
		state = "blocking"
	case c.Flow:
		state = "flow"
	}
	m := map[string]any{
		"name": c.Name, "node": a.node, "vhost": c.Vhost, "user": c.User, "state": state,
		"channels": c.Channels, "protocol": "AMQP 0-9-1", "auth_mechanism": "PLAIN",
		"host": c.Host, "port": c.Port, "peer_host": c.PeerHost, "peer_port": c.PeerPort,
		"ssl": false, "type": "network", "client_properties": table(c.ClientProperties),
		"connected_at": c.ConnectedAt.UnixMilli(), "frame_max": c.FrameMax,
		"channel_max": c.ChannelMax, "timeout": int(c.Heartbeat / time.Second),
		"user_who_performed_action": c.User,
	}
	if name, ok := c.ClientProperties["connection_name"].(string); ok {
		m["user_provided_name"] = name
	}
	return m
}

func (a *api) channelJSON(c server.ChannelInfo) map[string]any {
	return map[string]any{
		"name": c.Name(), "number": c.Number, "node": a.node, "vhost": c.Vhost, "user": c.User,
		"state": "running", "consumer_count": c.Consumers, "messages_unacknowledged": c.Unacked,
		"prefetch_count": c.Prefetch, "global_prefetch_count": c.GlobalPrefetch,
		"confirm": c.Confirm, "transactional": c.Transactional,
		"messages_unconfirmed": 0, "messages_uncommitted": 0, "acks_uncommitted": 0,
		"connection_details":        map[string]any{"name": c.Connection, "peer_host": c.PeerHost, "peer_port": c.PeerPort},
		"user_who_performed_action": c.User,
	}
}

func (a *api) consumerJSON(c server.ConsumerInfo) map[string]any {
	ch := c.Channel
	args := map[string]any{}
	if c.Priority != 0 {
		args["x-priority"] = c.Priority
	}
	return map[string]any{
		"consumer_tag": c.Tag, "ack_required": c.AckRequired, "exclusive": c.Exclusive,
		"prefetch_count": c.Prefetch, "active": c.Active, "activity_status": c.ActivityStatus, "arguments": args,
		"queue": map[string]any{"name": c.Queue, "vhost": a.srv.Vhost()},
		"channel_details": map[string]any{
			"name": ch.Name(), "number": ch.Number, "connection_name": ch.Connection,
			"peer_host": ch.PeerHost, "peer_port": ch.PeerPort, "user": ch.User, "node": a.node,
		},
	}
}

// overview answers GET /api/overview.
func (a *api) overview(w http.ResponseWriter, r *http.Request) error {
	prev, cur := a.rates.observe(a.srv)
	o := a.srv.Overview()
	c := a.srv.Counters()
	churn := stats{}
	churn.add("connection_created", c.ConnectionsOpened, rate(prev, cur, func(s *sample) uint64 { return s.global.ConnectionsOpened }))
	churn.add("connection_closed", c.ConnectionsClosed, rate(prev, cur, func(s *sample) uint64 { return s.global.ConnectionsClosed }))
	churn.add("channel_created", c.ChannelsOpened, rate(prev, cur, func(s *sample) uint64 { return s.global.ChannelsOpened }))
	churn.add("channel_closed", c.ChannelsClosed, rate(prev, cur, func(s *sample) uint64 { return s.global.ChannelsClosed }))
	churn.add("queue_declared", c.QueuesDeclared, rate(prev, cur, func(s *sample) uint64 { return s.global.QueuesDeclared }))
	churn.add("queue_created", c.QueuesCreated, rate(prev, cur, func(s *sample) uint64 { return s.global.QueuesCreated }))
	churn.add("queue_deleted", c.QueuesDeleted, rate(prev, cur, func(s *sample) uint64 { return s.global.QueuesDeleted }))
	host, port, _ := net.SplitHostPort(a.srv.Addr().String())
	portNum, _ := strconv.Atoi(port)
	return ok(w, map[string]any{
		"management_version": rabbitVersion, "rabbitmq_version": rabbitVersion,
		"product_name": "Warren", "product_version": server.Version,
		"rates_mode": "basic", "cluster_name": a.node, "node": a.node,
		"erlang_version": runtime.Version(), "disable_stats": false, "enable_queue_totals": true,
		"exchange_types": []map[string]any{
			{"name": "direct", "description": "AMQP direct exchange, as per the AMQP specification", "enabled": true},
			{"name": "fanout", "description": "AMQP fanout exchange, as per the AMQP specification", "enabled": true},
			{"name": "headers", "description": "AMQP headers exchange, as per the AMQP specification", "enabled": true},
			{"name": "topic", "description": "AMQP topic exchange, as per the AMQP specification", "enabled": true},
		},
		"message_stats": globalStats(prev, cur, c),
		"churn_rates":   churn,
		"queue_totals": map[string]any{
			"messages": o.Ready + o.Unacked, "messages_ready": o.Ready, "messages_unacknowledged": o.Unacked,
		},
		"object_totals": map[string]any{
			"connections": o.Connections, "channels": o.Channels, "consumers": o.Consumers,
			"queues": o.Queues, "exchanges": o.Exchanges,
		},
		"listeners": []map[string]any{{"node": a.node, "protocol": "amqp", "ip_address": host, "port": portNum}},
		"contexts":  []map[string]any{{"node": a.node, "description": "Warren Management", "path": "/"}},
	})
}

func (a *api) nodeJSON() map[string]any {
	disk, mem := a.srv.Disk(), a.srv.Memory()
	m := stats{
		"name": a.node, "type": "disc", "running": true, "os_pid": strconv.Itoa(os.Getpid()),
		"uptime": time.Since(a.started).Milliseconds(), "processors": runtime.NumCPU(),
		"mem_used": mem.Used, "mem_limit": mem.Limit, "mem_alarm": mem.Alarm, "disk_free": max(a.srv.DiskFreeNow(), 0), "disk_free_limit": disk.Limit, "disk_free_alarm": disk.Alarm,
		"rates_mode": "basic", "db_dir": a.srv.DataDir(), "partitions": []string{},
		"run_queue": 0, "proc_used": runtime.NumGoroutine(),
	}
	prev, cur := a.rates.observe(a.srv)
	m.add("io_sync_count", a.srv.StoreStats().Syncs, rate(prev, cur, func(s *sample) uint64 { return s.syncs }))
	return m
}

func (a *api) nodes(w http.ResponseWriter, r *http.Request) error {
	return ok(w, []map[string]any{a.nodeJSON()})
}

func (a *api) nodeOne(w http.ResponseWriter, r *http.Request) error {
	if r.PathValue("node") != a.node {
		return errNotFound
	}
	return ok(w, a.nodeJSON())
}

func (a *api) vhostJSON() map[string]any {
	prev, cur := a.rates.observe(a.srv)
	o := a.srv.Overview()
	return map[string]any{
		"name": a.srv.Vhost(), "description": "Default virtual host", "tags": []string{}, "tracing": false,
		"metadata":      map[string]any{"description": "Default virtual host", "tags": []string{}},
		"cluster_state": map[string]string{a.node: "running"},
		"messages":      o.Ready + o.Unacked, "messages_ready": o.Ready, "messages_unacknowledged": o.Unacked,
		"message_stats": globalStats(prev, cur, a.srv.Counters()),
	}
}

func (a *api) vhosts(w http.ResponseWriter, r *http.Request) error {
	return ok(w, []map[string]any{a.vhostJSON()})
}

func (a *api) vhostOne(w http.ResponseWriter, r *http.Request) error {
	if err := a.vhost(r); err != nil {
		return err
	}
	return ok(w, a.vhostJSON())
}

func userJSON(name string) map[string]any {
	return map[string]any{"name": name, "tags": []string{"administrator"}, "limits": map[string]any{}}
}

func (a *api) users(w http.ResponseWriter, r *http.Request) error {
	out := []map[string]any{}
	for _, u := range a.srv.Users() {
		out = append(out, userJSON(u))
	}
	return ok(w, out)
}

func (a *api) userOne(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("user")
	if !slices.Contains(a.srv.Users(), name) {
		return errNotFound
	}
	return ok(w, userJSON(name))
}

func (a *api) permissionsList() []map[string]any {
	out := []map[string]any{}
	for _, u := range a.srv.Users() {
		out = append(out, map[string]any{"user": u, "vhost": a.srv.Vhost(), "configure": ".*", "write": ".*", "read": ".*"})
	}
	return out
}

func (a *api) permissions(w http.ResponseWriter, r *http.Request) error {
	return ok(w, a.permissionsList())
}

func (a *api) whoami(w http.ResponseWriter, r *http.Request) error {
	user, _, _ := r.BasicAuth()
	return ok(w, map[string]any{"name": user, "tags": []string{"administrator"}})
}

// healthAlarms is RabbitMQ's alarms health check: 200 and status ok, or
// 503 naming the alarms in effect (Warren's one node has two: memory and
// free disk space, RabbitMQ's resource names), with reason as the reply's
// text.
func (a *api) healthAlarms(reason string) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		var alarms []map[string]string
		if a.srv.Memory().Alarm {
			alarms = append(alarms, map[string]string{"node": a.node, "resource": "memory"})
		}
		if a.srv.Disk().Alarm {
			alarms = append(alarms, map[string]string{"node": a.node, "resource": "disk space"})
		}
		if alarms == nil {
			return ok(w, map[string]string{"status": "ok"})
		}
		return writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "failed", "reason": reason, "alarms": alarms})
	}
}

// aliveness declares the queue aliveness-test, publishes a message to it
// and gets it back, as RabbitMQ's aliveness test does.
func (a *api) aliveness(w http.ResponseWriter, r *http.Request) error {
	if err := a.vhost(r); err != nil {
		return err
	}
	a.aliveMu.Lock()
	defer a.aliveMu.Unlock()
	const name = "aliveness-test"
	if err := a.srv.DeclareQueue(server.QueueInfo{Name: name}); err != nil {
		return err
	}
	if _, err := a.srv.Publish("", name, wire.Properties{}, []byte("test_message")); err != nil {
		return err
	}
	got, settle, err := a.srv.Get(name, 1)
	if err != nil {
		return err
	}
	settle(server.GetAck)
	if len(got) != 1 || string(got[0].Body) != "test_message" {
		return ok(w, map[string]string{"status": "failed", "reason": "the test message did not come back"})
	}
	return ok(w, map[string]string{"status": "ok"})
}
