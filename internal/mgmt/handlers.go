package mgmt

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"time"
	"unicode/utf8"

	"github.com/warrenmq/warren/internal/wire"
	"github.com/warrenmq/warren/server"
)

// Exchanges.

func (a *api) exchanges(w http.ResponseWriter, r *http.Request) error {
	if err := a.vhost(r); err != nil {
		return err
	}
	out := []map[string]any{}
	for _, x := range a.srv.Exchanges() {
		out = append(out, a.exchangeJSON(x))
	}
	return ok(w, out)
}

func (a *api) exchangeGet(w http.ResponseWriter, r *http.Request) error {
	if err := a.vhost(r); err != nil {
		return err
	}
	x, err := a.srv.Exchange(exchangeName(r.PathValue("name")))
	if err != nil {
		return err
	}
	return ok(w, a.exchangeJSON(x))
}

// exchangeName maps the API's name for the default exchange, amq.default,
// to "".
func exchangeName(s string) string {
	if s == "amq.default" {
		return ""
	}
	return s
}

type exchangeBody struct {
	Type       string         `json:"type"`
	Durable    *bool          `json:"durable"`
	AutoDelete bool           `json:"auto_delete"`
	Internal   bool           `json:"internal"`
	Arguments  map[string]any `json:"arguments"`
}

func (a *api) exchangePut(w http.ResponseWriter, r *http.Request) error {
	if err := a.vhost(r); err != nil {
		return err
	}
	var body exchangeBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if body.Type == "" {
		return badRequest("[{key_missing,type}]")
	}
	name := r.PathValue("name")
	_, missing := a.srv.Exchange(name)
	err := a.srv.DeclareExchange(server.ExchangeInfo{
		Name: name, Type: body.Type, Durable: body.Durable == nil || *body.Durable,
		AutoDelete: body.AutoDelete, Internal: body.Internal, Arguments: tableFromJSON(body.Arguments),
	})
	if err != nil {
		return err
	}
	return created(w, missing == nil)
}

// created answers a PUT or POST: 201 for a new object, 204 for one that
// was there already.
func created(w http.ResponseWriter, existed bool) error {
	if existed {
		return noContent(w)
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (a *api) exchangeDelete(w http.ResponseWriter, r *http.Request) error {
	if err := a.vhost(r); err != nil {
		return err
	}
	if err := a.srv.DeleteExchange(exchangeName(r.PathValue("name")), queryBool(r, "if-unused")); err != nil {
		return err
	}
	return noContent(w)
}

type publishBody struct {
	Properties      map[string]any `json:"properties"`
	RoutingKey      string         `json:"routing_key"`
	Payload         string         `json:"payload"`
	PayloadEncoding string         `json:"payload_encoding"`
}

func (a *api) exchangePublish(w http.ResponseWriter, r *http.Request) error {
	if err := a.vhost(r); err != nil {
		return err
	}
	var body publishBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	payload := []byte(body.Payload)
	switch body.PayloadEncoding {
	case "", "string":
	case "base64":
		var err error
		if payload, err = base64.StdEncoding.DecodeString(body.Payload); err != nil {
			return badRequest("payload is not valid base64: %v", err)
		}
	default:
		return badRequest("payload_encoding must be string or base64, not %q", body.PayloadEncoding)
	}
	props, err := propertiesFromJSON(body.Properties)
	if err != nil {
		return err
	}
	routed, err := a.srv.Publish(exchangeName(r.PathValue("name")), body.RoutingKey, props, payload)
	var se *server.Error
	if errors.As(err, &se) {
		// RabbitMQ's answer: 400, with the AMQP code in the reason.
		return badRequest("%d %s", se.Code, se.Text)
	} else if err != nil {
		return err
	}
	return ok(w, map[string]bool{"routed": routed})
}

// propertiesFromJSON reads the properties object of a publish.
func propertiesFromJSON(m map[string]any) (wire.Properties, error) {
	var p wire.Properties
	for k, v := range m {
		v = fromJSON(v)
		str, isStr := v.(string)
		num, isNum := v.(int64)
		switch k {
		case "content_type":
			p.ContentType = str
		case "content_encoding":
			p.ContentEncoding = str
		case "correlation_id":
			p.CorrelationID = str
		case "reply_to":
			p.ReplyTo = str
		case "expiration":
			p.Expiration = str
		case "message_id":
			p.MessageID = str
		case "type":
			p.Type = str
		case "user_id":
			p.UserID = str
		case "app_id":
			p.AppID = str
		case "cluster_id":
			p.ClusterID = str
		case "delivery_mode", "priority":
			if !isNum || num < 0 || num > 255 {
				return p, badRequest("property %s must be a number from 0 to 255", k)
			}
			if k == "delivery_mode" {
				p.DeliveryMode = uint8(num)
			} else {
				p.Priority = uint8(num)
			}
		case "timestamp":
			if !isNum {
				return p, badRequest("property timestamp must be a number of seconds")
			}
			p.Timestamp = time.Unix(num, 0)
		case "headers":
			t, ok := v.(wire.Table)
			if !ok {
				return p, badRequest("property headers must be an object")
			}
			p.Headers = t
		default:
			return p, badRequest("unknown property %q", k)
		}
		if !isStr && k != "delivery_mode" && k != "priority" && k != "timestamp" && k != "headers" {
			return p, badRequest("property %s must be a string", k)
		}
	}
	return p, nil
}

// propertiesJSON shows a message's properties as RabbitMQ does.
func propertiesJSON(p wire.Properties) map[string]any {
	m := map[string]any{}
	set := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	set("content_type", p.ContentType)
	set("content_encoding", p.ContentEncoding)
	set("correlation_id", p.CorrelationID)
	set("reply_to", p.ReplyTo)
	set("expiration", p.Expiration)
	set("message_id", p.MessageID)
	set("type", p.Type)
	set("user_id", p.UserID)
	set("app_id", p.AppID)
	set("cluster_id", p.ClusterID)
	if p.DeliveryMode != 0 {
		m["delivery_mode"] = p.DeliveryMode
	}
	if p.Priority != 0 {
		m["priority"] = p.Priority
	}
	if !p.Timestamp.IsZero() {
		m["timestamp"] = p.Timestamp.Unix()
	}
	if len(p.Headers) > 0 {
		m["headers"] = table(p.Headers)
	}
	return m
}

func (a *api) exchangeBindings(source bool) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := a.vhost(r); err != nil {
			return err
		}
		name := exchangeName(r.PathValue("name"))
		if _, err := a.srv.Exchange(name); err != nil {
			return err
		}
		out := []map[string]any{}
		for _, b := range a.srv.Bindings() {
			if source && b.Source == name || !source && b.DestinationType == "exchange" && b.Destination == name {
				out = append(out, a.bindingJSON(b))
			}
		}
		return ok(w, out)
	}
}

// Queues.

func (a *api) queues(w http.ResponseWriter, r *http.Request) error {
	if err := a.vhost(r); err != nil {
		return err
	}
	prev, cur := a.rates.observe(a.srv)
	out := []map[string]any{}
	for _, q := range a.srv.Queues() {
		out = append(out, a.queueJSON(q, prev, cur))
	}
	return ok(w, out)
}

func (a *api) queueGet(w http.ResponseWriter, r *http.Request) error {
	if err := a.vhost(r); err != nil {
		return err
	}
	q, err := a.srv.Queue(r.PathValue("name"))
	if err != nil {
		return err
	}
	prev, cur := a.rates.observe(a.srv)
	m := a.queueJSON(q, prev, cur)
	var details []map[string]any
	for _, c := range a.srv.Consumers() {
		if c.Queue == q.Name {
			details = append(details, a.consumerJSON(c))
		}
	}
	if details == nil {
		details = []map[string]any{}
	}
	m["consumer_details"] = details
	return ok(w, m)
}

type queueBody struct {
	Durable    *bool          `json:"durable"`
	AutoDelete bool           `json:"auto_delete"`
	Exclusive  bool           `json:"exclusive"`
	Arguments  map[string]any `json:"arguments"`
	Node       string         `json:"node"`
}

func (a *api) queuePut(w http.ResponseWriter, r *http.Request) error {
	if err := a.vhost(r); err != nil {
		return err
	}
	var body queueBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	name := r.PathValue("name")
	_, missing := a.srv.Queue(name)
	err := a.srv.DeclareQueue(server.QueueInfo{
		Name: name, Durable: body.Durable == nil || *body.Durable, AutoDelete: body.AutoDelete,
		Exclusive: body.Exclusive, Arguments: tableFromJSON(body.Arguments),
	})
	if err != nil {
		return err
	}
	return created(w, missing == nil)
}

func (a *api) queueDelete(w http.ResponseWriter, r *http.Request) error {
	if err := a.vhost(r); err != nil {
		return err
	}
	if _, err := a.srv.DeleteQueue(r.PathValue("name"), queryBool(r, "if-unused"), queryBool(r, "if-empty")); err != nil {
		return err
	}
	return noContent(w)
}

func (a *api) queuePurge(w http.ResponseWriter, r *http.Request) error {
	if err := a.vhost(r); err != nil {
		return err
	}
	if _, err := a.srv.PurgeQueue(r.PathValue("name")); err != nil {
		return err
	}
	return noContent(w)
}

type getBody struct {
	Count    int    `json:"count"`
	AckMode  string `json:"ackmode"`
	Requeue  *bool  `json:"requeue"` // before 3.7: requeue instead of ackmode
	Encoding string `json:"encoding"`
	Truncate int    `json:"truncate"`
}

// queueMessages answers POST /api/queues/vhost/name/get.
func (a *api) queueMessages(w http.ResponseWriter, r *http.Request) error {
	if err := a.vhost(r); err != nil {
		return err
	}
	var body getBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	var mode server.GetMode
	switch body.AckMode {
	case "ack_requeue_true", "reject_requeue_true":
		mode = server.GetRequeue
	case "ack_requeue_false":
		mode = server.GetAck
	case "reject_requeue_false":
		mode = server.GetReject
	case "":
		if body.Requeue == nil {
			return badRequest("[{key_missing,ackmode}]")
		}
		mode = server.GetAck
		if *body.Requeue {
			mode = server.GetRequeue
		}
	default:
		return badRequest("unknown ackmode %q", body.AckMode)
	}
	if body.Encoding != "" && body.Encoding != "auto" && body.Encoding != "base64" {
		return badRequest("unknown encoding %q", body.Encoding)
	}
	got, settle, err := a.srv.Get(r.PathValue("name"), body.Count)
	if errors.Is(err, server.ErrNotFound) {
		return notFound("NOT_FOUND - no queue '%s' in vhost '%s'", r.PathValue("name"), a.srv.Vhost())
	} else if err != nil {
		return err
	}
	// Until the answer is encoded the messages go back on any failure;
	// then they are settled as asked and the answer is sent.
	defer settle(server.GetRequeue)
	out := []map[string]any{}
	for _, m := range got {
		payload := m.Body
		if body.Truncate > 0 && len(payload) > body.Truncate {
			payload = payload[:body.Truncate]
		}
		item := map[string]any{
			"payload_bytes": len(m.Body), "redelivered": m.Redelivered, "exchange": m.Exchange,
			"routing_key": m.RoutingKey, "message_count": m.MessageCount,
			"properties": propertiesJSON(m.Properties),
		}
		if body.Encoding == "base64" || !utf8.Valid(payload) {
			item["payload"], item["payload_encoding"] = base64.StdEncoding.EncodeToString(payload), "base64"
		} else {
			item["payload"], item["payload_encoding"] = string(payload), "string"
		}
		out = append(out, item)
	}
	data, err := encodeJSON(out)
	if err != nil {
		return err
	}
	settle(mode)
	w.Header().Set("Content-Type", "application/json")
	w.Write(data)
	return nil
}

func (a *api) queueBindings(w http.ResponseWriter, r *http.Request) error {
	if err := a.vhost(r); err != nil {
		return err
	}
	name := r.PathValue("name")
	if _, err := a.srv.Queue(name); err != nil {
		return err
	}
	out := []map[string]any{}
	for _, b := range a.srv.Bindings() {
		if b.DestinationType == "queue" && b.Destination == name {
			out = append(out, a.bindingJSON(b))
		}
	}
	return ok(w, out)
}

// Bindings.

func (a *api) bindings(w http.ResponseWriter, r *http.Request) error {
	if err := a.vhost(r); err != nil {
		return err
	}
	out := []map[string]any{}
	for _, b := range a.srv.Bindings() {
		out = append(out, a.bindingJSON(b))
	}
	return ok(w, out)
}

// between reads /api/bindings/vhost/e/source/{q|e}/dest and checks both
// ends exist.
func (a *api) between(r *http.Request) (source, dtype, dest string, err error) {
	if err := a.vhost(r); err != nil {
		return "", "", "", err
	}
	source, dest = exchangeName(r.PathValue("source")), r.PathValue("dest")
	vh := a.srv.Vhost()
	switch r.PathValue("dtype") {
	case "q":
		dtype = "queue"
		if _, err := a.srv.Queue(dest); err != nil {
			return "", "", "", notFound("no queue '%s' in vhost '%s'", dest, vh)
		}
	case "e":
		dtype = "exchange"
		dest = exchangeName(dest)
		if _, err := a.srv.Exchange(dest); err != nil {
			return "", "", "", notFound("no exchange '%s' in vhost '%s'", dest, vh)
		}
	default:
		return "", "", "", errNotFound
	}
	if _, err := a.srv.Exchange(source); err != nil {
		return "", "", "", notFound("no exchange '%s' in vhost '%s'", source, vh)
	}
	return source, dtype, dest, nil
}

func (a *api) matching(source, dtype, dest string) []server.BindingInfo {
	var out []server.BindingInfo
	for _, b := range a.srv.Bindings() {
		if b.Source == source && b.DestinationType == dtype && b.Destination == dest {
			out = append(out, b)
		}
	}
	return out
}

func (a *api) bindingsBetween(w http.ResponseWriter, r *http.Request) error {
	source, dtype, dest, err := a.between(r)
	if err != nil {
		return err
	}
	out := []map[string]any{}
	for _, b := range a.matching(source, dtype, dest) {
		out = append(out, a.bindingJSON(b))
	}
	return ok(w, out)
}

type bindingBody struct {
	RoutingKey string         `json:"routing_key"`
	Arguments  map[string]any `json:"arguments"`
}

func (a *api) bindingCreate(w http.ResponseWriter, r *http.Request) error {
	source, dtype, dest, err := a.between(r)
	if err != nil {
		return err
	}
	var body bindingBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	b := server.BindingInfo{Source: source, Destination: dest, DestinationType: dtype, RoutingKey: body.RoutingKey, Arguments: tableFromJSON(body.Arguments)}
	if err := a.srv.Bind(b); err != nil {
		return err
	}
	// RabbitMQ answers with the new binding's address.
	w.Header().Set("Location", url.PathEscape(propertiesKey(b)))
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (a *api) binding(r *http.Request) (server.BindingInfo, error) {
	source, dtype, dest, err := a.between(r)
	if err != nil {
		return server.BindingInfo{}, err
	}
	for _, b := range a.matching(source, dtype, dest) {
		if propertiesKey(b) == r.PathValue("props") {
			return b, nil
		}
	}
	return server.BindingInfo{}, errNotFound
}

func (a *api) bindingGet(w http.ResponseWriter, r *http.Request) error {
	b, err := a.binding(r)
	if err != nil {
		return err
	}
	return ok(w, a.bindingJSON(b))
}

func (a *api) bindingDelete(w http.ResponseWriter, r *http.Request) error {
	b, err := a.binding(r)
	if err != nil {
		return err
	}
	if err := a.srv.Unbind(b); err != nil {
		return err
	}
	return noContent(w)
}

// Connections, channels and consumers.

func (a *api) connections(w http.ResponseWriter, r *http.Request) error {
	if err := a.vhost(r); err != nil {
		return err
	}
	out := []map[string]any{}
	for _, c := range a.srv.Connections() {
		out = append(out, a.connectionJSON(c))
	}
	return ok(w, out)
}

func (a *api) connectionGet(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	for _, c := range a.srv.Connections() {
		if c.Name == name {
			return ok(w, a.connectionJSON(c))
		}
	}
	return errNotFound
}

func (a *api) connectionDelete(w http.ResponseWriter, r *http.Request) error {
	if err := a.srv.CloseConnection(r.PathValue("name"), r.Header.Get("X-Reason")); err != nil {
		return err
	}
	return noContent(w)
}

func (a *api) connectionChannels(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	found := false
	for _, c := range a.srv.Connections() {
		found = found || c.Name == name
	}
	if !found {
		return errNotFound
	}
	out := []map[string]any{}
	for _, c := range a.srv.Channels() {
		if c.Connection == name {
			out = append(out, a.channelJSON(c))
		}
	}
	return ok(w, out)
}

func (a *api) channels(w http.ResponseWriter, r *http.Request) error {
	if err := a.vhost(r); err != nil {
		return err
	}
	out := []map[string]any{}
	for _, c := range a.srv.Channels() {
		out = append(out, a.channelJSON(c))
	}
	return ok(w, out)
}

func (a *api) channelGet(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	for _, c := range a.srv.Channels() {
		if c.Name() == name {
			return ok(w, a.channelJSON(c))
		}
	}
	return errNotFound
}

func (a *api) consumers(w http.ResponseWriter, r *http.Request) error {
	if err := a.vhost(r); err != nil {
		return err
	}
	out := []map[string]any{}
	for _, c := range a.srv.Consumers() {
		out = append(out, a.consumerJSON(c))
	}
	return ok(w, out)
}
