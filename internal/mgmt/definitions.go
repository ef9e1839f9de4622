package mgmt

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/warrenmq/warren/server"
)

// Definitions is RabbitMQ's definitions file: the topology (and users)
// exported by GET /api/definitions and imported by POST. The fields Warren
// only exports (users, vhosts, permissions) are any, so that a per-vhost
// export leaves them out and an empty list is still written.
type Definitions struct {
	RabbitVersion    string           `json:"rabbit_version,omitempty"`
	RabbitMQVersion  string           `json:"rabbitmq_version,omitempty"`
	ProductName      string           `json:"product_name,omitempty"`
	ProductVersion   string           `json:"product_version,omitempty"`
	Users            any              `json:"users,omitempty"`
	Vhosts           any              `json:"vhosts,omitempty"`
	Permissions      any              `json:"permissions,omitempty"`
	TopicPermissions any              `json:"topic_permissions,omitempty"`
	Parameters       []map[string]any `json:"parameters"`
	GlobalParameters any              `json:"global_parameters,omitempty"`
	Policies         []map[string]any `json:"policies"`
	Queues           []DefQueue       `json:"queues"`
	Exchanges        []DefExchange    `json:"exchanges"`
	Bindings         []DefBinding     `json:"bindings"`
}

// DefQueue is a queue in a definitions file.
type DefQueue struct {
	Name       string         `json:"name"`
	Vhost      string         `json:"vhost,omitempty"`
	Durable    bool           `json:"durable"`
	AutoDelete bool           `json:"auto_delete"`
	Arguments  map[string]any `json:"arguments"`
}

// DefExchange is an exchange in a definitions file.
type DefExchange struct {
	Name       string         `json:"name"`
	Vhost      string         `json:"vhost,omitempty"`
	Type       string         `json:"type"`
	Durable    bool           `json:"durable"`
	AutoDelete bool           `json:"auto_delete"`
	Internal   bool           `json:"internal"`
	Arguments  map[string]any `json:"arguments"`
}

// DefBinding is a binding in a definitions file.
type DefBinding struct {
	Source          string         `json:"source"`
	Vhost           string         `json:"vhost,omitempty"`
	Destination     string         `json:"destination"`
	DestinationType string         `json:"destination_type"`
	RoutingKey      string         `json:"routing_key"`
	Arguments       map[string]any `json:"arguments"`
}

// passwordHash is RabbitMQ's rabbit_password_hashing_sha256: base64 of a
// 4-byte salt followed by SHA-256(salt + password), so an exported user
// can log in to RabbitMQ with the same password.
func passwordHash(password string) string {
	salt := make([]byte, 4)
	rand.Read(salt)
	sum := sha256.Sum256(append(append([]byte{}, salt...), password...))
	return base64.StdEncoding.EncodeToString(append(salt, sum[:]...))
}

// export builds the definitions of the topology a client declared: not
// the predeclared exchanges, exclusive queues or the default exchange's
// bindings, as RabbitMQ.
func (a *api) export(withUsers bool) Definitions {
	vh := a.srv.Vhost()
	d := Definitions{
		Parameters: []map[string]any{}, Policies: []map[string]any{},
		Queues: []DefQueue{}, Exchanges: []DefExchange{}, Bindings: []DefBinding{},
	}
	if withUsers {
		d.RabbitVersion, d.RabbitMQVersion = rabbitVersion, rabbitVersion
		d.ProductName, d.ProductVersion = "Warren", server.Version
		var users []map[string]any
		for _, u := range a.srv.Users() {
			users = append(users, map[string]any{
				"name": u, "password_hash": passwordHash(a.srv.Password(u)),
				"hashing_algorithm": "rabbit_password_hashing_sha256",
				"tags":              []string{"administrator"}, "limits": map[string]any{},
			})
		}
		d.Users = users
		d.Vhosts = []map[string]any{{"name": vh}}
		d.Permissions = a.permissionsList()
		d.TopicPermissions = []map[string]any{}
		d.GlobalParameters = []map[string]any{}
	} else {
		d.RabbitVersion = rabbitVersion
	}
	for _, q := range a.srv.Queues() {
		if q.Exclusive {
			continue
		}
		d.Queues = append(d.Queues, DefQueue{Name: q.Name, Vhost: vh, Durable: q.Durable, AutoDelete: q.AutoDelete, Arguments: table(q.Arguments)})
	}
	for _, x := range a.srv.Exchanges() {
		if x.Name == "" || strings.HasPrefix(x.Name, "amq.") {
			continue
		}
		d.Exchanges = append(d.Exchanges, DefExchange{Name: x.Name, Vhost: vh, Type: x.Type, Durable: x.Durable, AutoDelete: x.AutoDelete, Internal: x.Internal, Arguments: table(x.Arguments)})
	}
	exclusive := map[string]bool{}
	for _, q := range a.srv.Queues() {
		exclusive[q.Name] = q.Exclusive
	}
	for _, b := range a.srv.Bindings() {
		if b.Source == "" || b.DestinationType == "queue" && exclusive[b.Destination] {
			continue
		}
		d.Bindings = append(d.Bindings, DefBinding{Source: b.Source, Vhost: vh, Destination: b.Destination, DestinationType: b.DestinationType, RoutingKey: b.RoutingKey, Arguments: table(b.Arguments)})
	}
	return d
}

func (a *api) definitionsGet(w http.ResponseWriter, r *http.Request) error {
	if err := a.vhost(r); err != nil {
		return err
	}
	d := a.export(r.PathValue("vhost") == "")
	if r.URL.Query().Get("download") != "" {
		w.Header().Set("Content-Disposition", `attachment; filename="`+strings.ReplaceAll(r.URL.Query().Get("download"), `"`, "")+`"`)
	}
	return ok(w, d)
}

// definitionsPost imports a definitions file: exchanges, then queues,
// then bindings, each declared as a client would (so an inequivalent
// redeclaration fails). Users, permissions, policies and parameters are
// accepted and ignored: Warren's users come from its configuration.
func (a *api) definitionsPost(w http.ResponseWriter, r *http.Request) error {
	if err := a.vhost(r); err != nil {
		return err
	}
	var d Definitions
	if err := decodeBody(r, &d); err != nil {
		return err
	}
	vh := a.srv.Vhost()
	if v := r.PathValue("vhost"); v != "" {
		vh = v
	}
	check := func(v string) error {
		if v != "" && v != a.srv.Vhost() || v == "" && vh != a.srv.Vhost() {
			return badRequest("vhost %q: Warren serves the one virtual host %q", v, a.srv.Vhost())
		}
		return nil
	}
	// Every vhost first: nothing is applied from a file naming another.
	for _, x := range d.Exchanges {
		if err := check(x.Vhost); err != nil {
			return err
		}
	}
	for _, q := range d.Queues {
		if err := check(q.Vhost); err != nil {
			return err
		}
	}
	for _, b := range d.Bindings {
		if err := check(b.Vhost); err != nil {
			return err
		}
	}
	// Then each object in turn; if one is refused, what this import
	// created is removed again, so a bad file leaves the broker as it was
	// (but for objects it found and left alone).
	var undo []func()
	rollback := func(err error) error {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
		return err
	}
	for _, x := range d.Exchanges {
		_, missing := a.srv.Exchange(x.Name)
		if err := a.srv.DeclareExchange(server.ExchangeInfo{Name: x.Name, Type: x.Type, Durable: x.Durable, AutoDelete: x.AutoDelete, Internal: x.Internal, Arguments: tableFromJSON(x.Arguments)}); err != nil {
			return rollback(badRequest("exchange %q: %v", x.Name, err))
		}
		if missing != nil { // this import made it
			undo = append(undo, func() { a.srv.DeleteExchange(x.Name, false) })
		}
	}
	for _, q := range d.Queues {
		_, missing := a.srv.Queue(q.Name)
		if err := a.srv.DeclareQueue(server.QueueInfo{Name: q.Name, Durable: q.Durable, AutoDelete: q.AutoDelete, Arguments: tableFromJSON(q.Arguments)}); err != nil {
			return rollback(badRequest("queue %q: %v", q.Name, err))
		}
		if missing != nil { // this import made it
			undo = append(undo, func() { a.srv.DeleteQueue(q.Name, false, false) })
		}
	}
	have := map[string]bool{}
	for _, b := range a.srv.Bindings() {
		have[bindingKey(b)] = true
	}
	for _, b := range d.Bindings {
		bi := server.BindingInfo{Source: b.Source, Destination: b.Destination, DestinationType: b.DestinationType, RoutingKey: b.RoutingKey, Arguments: tableFromJSON(b.Arguments)}
		if err := a.srv.Bind(bi); err != nil {
			return rollback(badRequest("binding %s -> %s %q: %v", b.Source, b.Destination, b.RoutingKey, err))
		}
		if !have[bindingKey(bi)] {
			undo = append(undo, func() { a.srv.Unbind(bi) })
		}
	}
	return noContent(w)
}

// bindingKey identifies a binding among others.
func bindingKey(b server.BindingInfo) string {
	return b.Source + "\x00" + b.DestinationType + "\x00" + b.Destination + "\x00" + propertiesKey(b)
}
