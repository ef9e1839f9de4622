package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"unicode/utf8"
)

// command is one warrenctl command.
type command struct {
	name    string
	args    string // argument synopsis for the usage line
	summary string
	detail  string
	// minArgs and maxArgs bound the positional arguments; maxArgs -1 means
	// any number.
	minArgs, maxArgs int
	// setup defines the command's own flags on fs and returns the action,
	// which runs after fs is parsed.
	setup func(fs *flag.FlagSet) func(c *cli, args []string) error
}

// commands are in the order "warrenctl help" lists them.
var commands = []*command{
	listCommand("list_queues", "queues in the vhost",
		func(c *cli) []string { return []string{"queues", c.vhost} },
		[]string{"name", "messages", "consumers"}, nil),
	listCommand("list_exchanges", "exchanges in the vhost",
		func(c *cli) []string { return []string{"exchanges", c.vhost} },
		[]string{"name", "type"}, nil),
	listCommand("list_bindings", "bindings in the vhost",
		func(c *cli) []string { return []string{"bindings", c.vhost} },
		[]string{"source_name", "source_kind", "destination_name", "destination_kind", "routing_key", "arguments"},
		map[string]column{
			"source_name":      {path: "source"},
			"source_kind":      {constant: "exchange"},
			"destination_name": {path: "destination"},
			"destination_kind": {path: "destination_type"},
		}),
	listCommand("list_connections", "client connections (all vhosts unless --vhost is given)",
		func(c *cli) []string {
			if c.vhostSet {
				return []string{"vhosts", c.vhost, "connections"}
			}
			return []string{"connections"}
		},
		[]string{"name", "user", "channels"}, nil),
	listCommand("list_channels", "channels (all vhosts unless --vhost is given)",
		func(c *cli) []string {
			if c.vhostSet {
				return []string{"vhosts", c.vhost, "channels"}
			}
			return []string{"channels"}
		},
		[]string{"name", "consumer_count", "messages_unacknowledged"},
		map[string]column{"connection": {path: "connection_details.name"}}),
	listCommand("list_consumers", "consumers in the vhost",
		func(c *cli) []string { return []string{"consumers", c.vhost} },
		[]string{"queue", "consumer_tag", "ack_required", "prefetch_count"},
		map[string]column{
			"queue":      {path: "queue.name"},
			"queue_name": {path: "queue.name"},
			"channel":    {path: "channel_details.name"},
		}),
	{
		name: "purge_queue", args: "NAME", summary: "remove all ready messages from a queue",
		minArgs: 1, maxArgs: 1,
		setup: func(fs *flag.FlagSet) func(*cli, []string) error {
			return func(c *cli, args []string) error {
				return c.send(http.MethodDelete, nil, nil, "queues", c.vhost, args[0], "contents")
			}
		},
	},
	{
		name: "delete_queue", args: "NAME [--if-unused] [--if-empty]", summary: "delete a queue",
		minArgs: 1, maxArgs: 1,
		setup: func(fs *flag.FlagSet) func(*cli, []string) error {
			ifUnused := fs.Bool("if-unused", false, "delete only if the queue has no consumers")
			ifEmpty := fs.Bool("if-empty", false, "delete only if the queue has no messages")
			return func(c *cli, args []string) error {
				q := url.Values{}
				if *ifUnused {
					q.Set("if-unused", "true")
				}
				if *ifEmpty {
					q.Set("if-empty", "true")
				}
				u, err := c.apiURL(q, "queues", c.vhost, args[0])
				if err != nil {
					return err
				}
				return c.do(http.MethodDelete, u, nil, nil, nil)
			}
		},
	},
	{
		name: "delete_exchange", args: "NAME [--if-unused]", summary: "delete an exchange",
		minArgs: 1, maxArgs: 1,
		setup: func(fs *flag.FlagSet) func(*cli, []string) error {
			ifUnused := fs.Bool("if-unused", false, "delete only if the exchange has no bindings")
			return func(c *cli, args []string) error {
				q := url.Values{}
				if *ifUnused {
					q.Set("if-unused", "true")
				}
				u, err := c.apiURL(q, "exchanges", c.vhost, args[0])
				if err != nil {
					return err
				}
				return c.do(http.MethodDelete, u, nil, nil, nil)
			}
		},
	},
	{
		name: "close_connection", args: "NAME [REASON]", summary: "close a client connection (the client gets 320 CONNECTION_FORCED)",
		detail:  `NAME is as list_connections shows it, e.g. "127.0.0.1:50312 -> 127.0.0.1:5672".`,
		minArgs: 1, maxArgs: 2,
		setup: func(fs *flag.FlagSet) func(*cli, []string) error {
			return func(c *cli, args []string) error {
				u, err := c.apiURL(nil, "connections", args[0])
				if err != nil {
					return err
				}
				h := http.Header{}
				if len(args) > 1 {
					h.Set("X-Reason", args[1])
				}
				return c.do(http.MethodDelete, u, h, nil, nil)
			}
		},
	},
	{
		name: "export_definitions", args: "FILE|-", summary: "write the broker's definitions (JSON) to FILE or stdout",
		detail:  "All vhosts, unless --vhost is given.",
		minArgs: 1, maxArgs: 1,
		setup: func(fs *flag.FlagSet) func(*cli, []string) error {
			return func(c *cli, args []string) error {
				var defs json.RawMessage
				if err := c.get(&defs, c.definitionsPath()...); err != nil {
					return err
				}
				var out bytes.Buffer
				if err := json.Indent(&out, defs, "", "  "); err != nil {
					return fmt.Errorf("bad JSON in answer: %w", err)
				}
				out.WriteByte('\n')
				if args[0] == "-" {
					_, err := c.stdout.Write(out.Bytes())
					return err
				}
				return os.WriteFile(args[0], out.Bytes(), 0o600)
			}
		},
	},
	{
		name: "import_definitions", args: "FILE|-", summary: "load definitions (JSON) from FILE or stdin",
		detail:  "Into the broker as a whole, unless --vhost is given.",
		minArgs: 1, maxArgs: 1,
		setup: func(fs *flag.FlagSet) func(*cli, []string) error {
			return func(c *cli, args []string) error {
				var data []byte
				var err error
				if args[0] == "-" {
					data, err = io.ReadAll(c.stdin)
				} else {
					data, err = os.ReadFile(args[0])
				}
				if err != nil {
					return err
				}
				if !json.Valid(data) {
					return fmt.Errorf("%s: not valid JSON", args[0])
				}
				return c.send(http.MethodPost, data, nil, c.definitionsPath()...)
			}
		},
	},
	{
		name: "declare_exchange", args: "NAME TYPE [--durable] [--auto-delete] [--internal] [--arguments JSON]",
		summary: "declare an exchange (TYPE: direct, fanout, topic, headers, ...)",
		minArgs: 2, maxArgs: 2,
		setup: func(fs *flag.FlagSet) func(*cli, []string) error {
			durable := fs.Bool("durable", false, "survive a broker restart")
			autoDelete := fs.Bool("auto-delete", false, "delete when the last binding is removed")
			internal := fs.Bool("internal", false, "clients may not publish to it")
			arguments := fs.String("arguments", "", "optional arguments as a `JSON` object")
			return func(c *cli, args []string) error {
				a, err := jsonObject("--arguments", *arguments)
				if err != nil {
					return err
				}
				body := map[string]any{
					"type": args[1], "durable": *durable, "auto_delete": *autoDelete,
					"internal": *internal, "arguments": a,
				}
				return c.send(http.MethodPut, body, nil, "exchanges", c.vhost, args[0])
			}
		},
	},
	{
		name: "declare_queue", args: "NAME [--durable] [--auto-delete] [--arguments JSON]", summary: "declare a queue",
		minArgs: 1, maxArgs: 1,
		setup: func(fs *flag.FlagSet) func(*cli, []string) error {
			durable := fs.Bool("durable", false, "survive a broker restart")
			autoDelete := fs.Bool("auto-delete", false, "delete when the last consumer goes")
			arguments := fs.String("arguments", "", "optional arguments as a `JSON` object, e.g. {\"x-max-length\":10}")
			return func(c *cli, args []string) error {
				a, err := jsonObject("--arguments", *arguments)
				if err != nil {
					return err
				}
				body := map[string]any{"durable": *durable, "auto_delete": *autoDelete, "arguments": a}
				return c.send(http.MethodPut, body, nil, "queues", c.vhost, args[0])
			}
		},
	},
	{
		name: "declare_binding", args: "SOURCE DESTINATION [--destination-type queue|exchange] [--routing-key KEY] [--arguments JSON]",
		summary: "bind a queue or exchange to an exchange",
		minArgs: 2, maxArgs: 2,
		setup: func(fs *flag.FlagSet) func(*cli, []string) error {
			destType := fs.String("destination-type", "queue", "`queue` or exchange")
			key := fs.String("routing-key", "", "binding `key`")
			arguments := fs.String("arguments", "", "binding arguments as a `JSON` object")
			return func(c *cli, args []string) error {
				var t string
				switch *destType {
				case "queue", "q":
					t = "q"
				case "exchange", "e":
					t = "e"
				default:
					return usagef("--destination-type must be queue or exchange, not %q", *destType)
				}
				a, err := jsonObject("--arguments", *arguments)
				if err != nil {
					return err
				}
				body := map[string]any{"routing_key": *key, "arguments": a}
				return c.send(http.MethodPost, body, nil, "bindings", c.vhost, "e", args[0], t, args[1])
			}
		},
	},
	{
		name: "publish", args: "EXCHANGE ROUTING_KEY [--payload TEXT] [--properties JSON]",
		summary: "publish a message (payload from --payload or stdin); prints whether it was routed",
		detail:  `EXCHANGE "" or amq.default is the default exchange.`,
		minArgs: 2, maxArgs: 2,
		setup: func(fs *flag.FlagSet) func(*cli, []string) error {
			var payload *string
			fs.Func("payload", "message body `text` (default: read stdin)", func(s string) error {
				payload = &s
				return nil
			})
			properties := fs.String("properties", "", "message properties as a `JSON` object, e.g. {\"delivery_mode\":2,\"headers\":{}}")
			return func(c *cli, args []string) error {
				props, err := jsonObject("--properties", *properties)
				if err != nil {
					return err
				}
				var body []byte
				if payload != nil {
					body = []byte(*payload)
				} else if body, err = io.ReadAll(c.stdin); err != nil {
					return fmt.Errorf("reading payload from stdin: %w", err)
				}
				req := map[string]any{
					"properties": props, "routing_key": args[1],
					"payload": string(body), "payload_encoding": "string",
				}
				if !utf8.Valid(body) {
					req["payload"] = base64.StdEncoding.EncodeToString(body)
					req["payload_encoding"] = "base64"
				}
				exchange := args[0]
				if exchange == "" {
					exchange = "amq.default"
				}
				var res map[string]any
				if err := c.send(http.MethodPost, req, &res, "exchanges", c.vhost, exchange, "publish"); err != nil {
					return err
				}
				return c.outputOne(res, columns(nil, []string{"routed"}, nil))
			}
		},
	},
	{
		name: "get", args: "QUEUE [columns...] [--count N] [--requeue=true|false]",
		summary: "fetch messages from a queue (by default they are put back)",
		detail: `Columns default to routing_key exchange message_count redelivered payload_bytes
payload_encoding payload properties. --requeue=false removes the messages.`,
		minArgs: 1, maxArgs: -1,
		setup: func(fs *flag.FlagSet) func(*cli, []string) error {
			count := fs.Int("count", 1, "how many messages at most")
			requeue := fs.Bool("requeue", true, "put the messages back")
			encoding := fs.String("encoding", "auto", "payload `encoding`: auto (string if it is text) or base64")
			return func(c *cli, args []string) error {
				if *count < 1 {
					return usagef("--count must be at least 1")
				}
				ackmode := "ack_requeue_true"
				if !*requeue {
					ackmode = "ack_requeue_false"
				}
				req := map[string]any{"count": *count, "ackmode": ackmode, "encoding": *encoding}
				var msgs []any
				if err := c.send(http.MethodPost, req, &msgs, "queues", c.vhost, args[0], "get"); err != nil {
					return err
				}
				return c.output(msgs, columns(args[1:], []string{
					"routing_key", "exchange", "message_count", "redelivered",
					"payload_bytes", "payload_encoding", "payload", "properties",
				}, nil))
			}
		},
	},
	{
		name: "overview", args: "[columns...]", summary: "broker summary: versions, object and message totals",
		minArgs: 0, maxArgs: -1,
		setup: func(fs *flag.FlagSet) func(*cli, []string) error {
			return func(c *cli, args []string) error {
				var ov map[string]any
				if err := c.get(&ov, "overview"); err != nil {
					return err
				}
				return c.outputOne(ov, columns(args, []string{
					"product_name", "product_version", "cluster_name", "node",
					"object_totals.connections", "object_totals.channels",
					"object_totals.queues", "object_totals.consumers",
					"queue_totals.messages", "queue_totals.messages_ready",
					"queue_totals.messages_unacknowledged",
				}, nil))
			}
		},
	},
}

func findCommand(name string) *command {
	for _, cmd := range commands {
		if cmd.name == name {
			return cmd
		}
	}
	return nil
}

// listCommand makes a rabbitmqctl-style list command: GET a JSON array and
// print the chosen columns of each element.
func listCommand(name, what string, path func(*cli) []string, defaults []string, aliases map[string]column) *command {
	detail := fmt.Sprintf("Default columns: %s.\nAny field of the API's JSON objects is a column; a dotted path (a.b) reaches into\nnested objects.", strings.Join(defaults, " "))
	if len(aliases) > 0 {
		detail += " Aliases:"
		for _, n := range slices.Sorted(maps.Keys(aliases)) {
			a := aliases[n]
			if a.constant != nil {
				detail += fmt.Sprintf(" %s (always %v),", n, a.constant)
			} else {
				detail += fmt.Sprintf(" %s = %s,", n, a.path)
			}
		}
		detail = detail[:len(detail)-1] + "."
	}
	return &command{
		name: name, args: "[columns...]", summary: "list " + what, detail: detail,
		minArgs: 0, maxArgs: -1,
		setup: func(fs *flag.FlagSet) func(*cli, []string) error {
			return func(c *cli, args []string) error {
				var rows []any
				if err := c.get(&rows, path(c)...); err != nil {
					return err
				}
				return c.output(rows, columns(args, defaults, aliases))
			}
		},
	}
}

// outputOne prints a single object: a one-row table, or with --json one
// JSON object of the columns.
func (c *cli) outputOne(obj any, cols []column) error {
	if !c.json {
		return c.output([]any{obj}, cols)
	}
	var buf bytes.Buffer
	if err := writeJSONRows(&buf, []any{obj}, cols); err != nil {
		return err
	}
	// Strip the array brackets around the single object.
	b := bytes.TrimSpace(buf.Bytes())
	b = bytes.TrimSpace(b[1 : len(b)-1])
	_, err := fmt.Fprintf(c.stdout, "%s\n", b)
	return err
}

// definitionsPath is /api/definitions, or /api/definitions/VHOST when
// --vhost was given.
func (c *cli) definitionsPath() []string {
	if c.vhostSet {
		return []string{"definitions", c.vhost}
	}
	return []string{"definitions"}
}

// jsonObject parses a flag's JSON object; empty means {}.
func jsonObject(flagName, s string) (map[string]any, error) {
	obj := map[string]any{}
	if s == "" {
		return obj, nil
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return nil, usagef("%s must be a JSON object: %q", flagName, s)
	}
	if dec.More() {
		return nil, usagef("%s must be a single JSON object: %q", flagName, s)
	}
	return obj, nil
}
