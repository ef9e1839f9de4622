package server

import (
	"fmt"
	"math"
	"time"

	"github.com/warrenmq/warren/internal/wire"
	"github.com/warrenmq/warren/queue"
)

// queueConfig is what Warren acts on among a queue's declare arguments.
type queueConfig struct {
	opts      queue.Options
	dlx, dlrk string
	hasDLX    bool
	hasDLRK   bool
	queueType string // x-queue-type: classic (default), quorum or stream
}

// queueEquivalenceArgs are the arguments RabbitMQ compares when a queue is
// redeclared; the others may differ.
var queueEquivalenceArgs = []string{
	"x-dead-letter-exchange", "x-dead-letter-routing-key", "x-expires",
	"x-max-length", "x-max-length-bytes", "x-max-priority", "x-message-ttl",
	"x-overflow", "x-queue-mode", "x-queue-type", "x-single-active-consumer",
}

// intArg reads an integer argument of any AMQP integer type.
func intArg(v any) (int64, bool) {
	switch n := v.(type) {
	case int8:
		return int64(n), true
	case uint8:
		return int64(n), true
	case int16:
		return int64(n), true
	case uint16:
		return int64(n), true
	case int32:
		return int64(n), true
	case uint32:
		return int64(n), true
	case int64:
		return n, true
	case int:
		return int64(n), true
	}
	return 0, false
}

// queueArgError is an invalid declare argument, worded as RabbitMQ words it.
type queueArgError struct {
	arg    string
	reason string // after "invalid arg '<arg>' for queue ...: "
	typ    string // if set, the other wording: "invalid type '<typ>' for arg ..."
}

// amqpError words the error for queue name in vhost.
func (e *queueArgError) amqpError(name, vhost string) *amqpError {
	if e.typ != "" {
		return errorf(wire.PreconditionFailed, "invalid type '%s' for arg '%s' in queue '%s' in vhost '%s'", e.typ, e.arg, name, vhost)
	}
	return errorf(wire.PreconditionFailed, "invalid arg '%s' for queue '%s' in vhost '%s': %s", e.arg, name, vhost, e.reason)
}

// amqpType names a field value's AMQP type as RabbitMQ does in its errors.
func amqpType(v any) string {
	switch v.(type) {
	case bool:
		return "bool"
	case int8:
		return "byte"
	case uint8:
		return "unsignedbyte"
	case int16:
		return "short"
	case uint16:
		return "unsignedshort"
	case int32:
		return "signedint"
	case uint32:
		return "unsignedint"
	case int64, int:
		return "long"
	case float32:
		return "float"
	case float64:
		return "double"
	case wire.Decimal:
		return "decimal"
	case string:
		return "longstr"
	case []byte:
		return "binary"
	case time.Time:
		return "timestamp"
	case wire.Table:
		return "table"
	case []any:
		return "array"
	case nil:
		return "void"
	}
	return fmt.Sprintf("%T", v)
}

// parseQueueArgs validates the arguments RabbitMQ validates, in its order
// and with its reasons, and reads the ones Warren acts on.
func parseQueueArgs(args wire.Table) (queueConfig, *queueArgError) {
	cfg := queueConfig{opts: queue.NoLimits()}
	integer := func(key string, zeroOK bool) (int64, bool, *queueArgError) {
		v, ok := args[key]
		if !ok {
			return 0, false, nil
		}
		n, isInt := intArg(v)
		switch {
		case !isInt:
			return 0, false, &queueArgError{arg: key, reason: fmt.Sprintf("\"expected integer, got %s\"", amqpType(v))}
		case n < 0:
			return 0, false, &queueArgError{arg: key, reason: fmt.Sprintf("{value_negative,%d}", n)}
		case n == 0 && !zeroOK:
			return 0, false, &queueArgError{arg: key, reason: "{value_zero,0}"}
		}
		return n, true, nil
	}
	str := func(key string) (string, bool, *queueArgError) {
		v, ok := args[key]
		if !ok {
			return "", false, nil
		}
		s, isString := v.(string)
		if !isString {
			return "", false, &queueArgError{arg: key, reason: fmt.Sprintf("{unacceptable_type,%s}", amqpType(v))}
		}
		return s, true, nil
	}
	if n, ok, err := integer("x-expires", false); err != nil {
		return cfg, err
	} else if ok {
		cfg.opts.Expires = millis(n)
	}
	if n, ok, err := integer("x-message-ttl", true); err != nil {
		return cfg, err
	} else if ok {
		cfg.opts.MessageTTL = millis(n)
	}
	if v, ok := args["x-dead-letter-exchange"]; ok {
		s, isString := v.(string)
		if !isString {
			return cfg, &queueArgError{arg: "x-dead-letter-exchange", typ: amqpType(v)}
		}
		cfg.dlx, cfg.hasDLX = s, true
	}
	if s, ok, err := str("x-dead-letter-routing-key"); err != nil {
		return cfg, err
	} else if ok {
		if !cfg.hasDLX {
			return cfg, &queueArgError{arg: "x-dead-letter-routing-key", reason: "routing_key_but_no_dlx_defined"}
		}
		cfg.dlrk, cfg.hasDLRK = s, true
	}
	if n, ok, err := integer("x-max-length", true); err != nil {
		return cfg, err
	} else if ok {
		cfg.opts.MaxLength = int(n)
	}
	if n, ok, err := integer("x-max-length-bytes", true); err != nil {
		return cfg, err
	} else if ok {
		cfg.opts.MaxLengthBytes = n
	}
	if n, ok, err := integer("x-max-priority", true); err != nil {
		return cfg, err
	} else if ok && n > 255 {
		return cfg, &queueArgError{arg: "x-max-priority", reason: fmt.Sprintf("{max_value_exceeded,%d}", n)}
	} else if ok {
		cfg.opts.MaxPriority = int(n)
	}
	if s, ok, err := str("x-overflow"); err != nil {
		return cfg, err
	} else if ok {
		switch s {
		case "drop-head":
		case "reject-publish":
			cfg.opts.Overflow = queue.RejectPublish
		case "reject-publish-dlx":
			cfg.opts.Overflow = queue.RejectPublishDLX
		default:
			return cfg, &queueArgError{arg: "x-overflow", reason: "invalid_overflow"}
		}
	}
	if s, ok, err := str("x-queue-mode"); err != nil {
		return cfg, err
	} else if ok && s != "default" && s != "lazy" {
		return cfg, &queueArgError{arg: "x-queue-mode", reason: fmt.Sprintf("\"unsupported queue mode '%s'\"", s)}
	}
	if v, ok := args["x-single-active-consumer"]; ok {
		b, isBool := v.(bool)
		if !isBool {
			return cfg, &queueArgError{arg: "x-single-active-consumer", reason: fmt.Sprintf("{unacceptable_type,%s}", amqpType(v))}
		}
		cfg.opts.SingleActive = b
	}
	cfg.queueType = "classic"
	if s, ok, err := str("x-queue-type"); err != nil {
		return cfg, err
	} else if ok && s != "classic" && s != "quorum" && s != "stream" {
		return cfg, &queueArgError{arg: "x-queue-type", reason: fmt.Sprintf("\"unsupported queue type '%s'\"", s)}
	} else if ok {
		cfg.queueType = s
	}
	if n, ok, err := integer("x-delivery-limit", true); err != nil {
		return cfg, err
	} else if ok {
		cfg.opts.HasDeliveryLimit, cfg.opts.DeliveryLimit = true, int(min(n, 1<<31))
	}
	return cfg, nil
}

// checkQueueType refuses what RabbitMQ 3.10 refuses of a queue's type:
// a quorum or stream queue must be durable, and neither exclusive nor
// auto-delete; a quorum queue takes no x-max-priority, a classic one no
// x-delivery-limit.
func checkQueueType(cfg queueConfig, durable, exclusive, autoDelete bool, args wire.Table, name, vhost string) *amqpError {
	if cfg.queueType == "quorum" || cfg.queueType == "stream" {
		for _, p := range []struct {
			bad  bool
			name string
		}{{!durable, "non-durable"}, {exclusive, "exclusive-owner"}, {autoDelete, "auto-delete"}} {
			if p.bad {
				return errorf(wire.PreconditionFailed, "invalid property '%s' for queue '%s' in vhost '%s'", p.name, name, vhost)
			}
		}
	}
	for _, a := range []struct{ typ, arg, module string }{
		{"quorum", "x-max-priority", "rabbit_quorum_queue"},
		{"classic", "x-delivery-limit", "rabbit_classic_queue"},
	} {
		if _, ok := args[a.arg]; ok && cfg.queueType == a.typ {
			return errorf(wire.PreconditionFailed, "invalid arg '%s' for queue '%s' in vhost '%s' of queue type %s", a.arg, name, vhost, a.module)
		}
	}
	return nil
}

// inequivalentArg is the 406 for a redeclare whose argument arg differs,
// worded as RabbitMQ words it: a value missing on one side is "none", and
// the other side then shows its type too. what is "queue" or "exchange".
func inequivalentArg(arg, what, name, vhost string, received, current wire.Table) *amqpError {
	r, rok := received[arg]
	c, cok := current[arg]
	side := func(v any, ok bool) string {
		if !ok {
			return "none"
		}
		return fmt.Sprintf("the value '%v' of type '%s'", v, amqpType(v))
	}
	if rok && cok {
		return errorf(wire.PreconditionFailed, "inequivalent arg '%s' for %s '%s' in vhost '%s': received '%v' but current is '%v'", arg, what, name, vhost, r, c)
	}
	return errorf(wire.PreconditionFailed, "inequivalent arg '%s' for %s '%s' in vhost '%s': received %s but current is %s", arg, what, name, vhost, side(r, rok), side(c, cok))
}

// exchangeEquivalenceArgs are the arguments RabbitMQ compares when an
// exchange is redeclared.
var exchangeEquivalenceArgs = []string{"alternate-exchange"}

// argsEquivalent compares the arguments keys that RabbitMQ checks on
// redeclare and returns the first that differs. Integers compare by value
// whatever their AMQP width, as a client may send the same number as any
// type.
func argsEquivalent(keys []string, current, received wire.Table) (string, bool) {
	for _, k := range keys {
		a, aok := current[k]
		b, bok := received[k]
		if aok != bok {
			return k, false
		}
		if !aok {
			continue
		}
		if an, ok := intArg(a); ok {
			if bn, ok := intArg(b); ok && an == bn {
				continue
			}
			return k, false
		}
		if !wire.TablesEqual(wire.Table{k: a}, wire.Table{k: b}) {
			return k, false
		}
	}
	return "", true
}

// millis converts a client's millisecond count to a Duration, saturating
// at the largest Duration rather than wrapping to a small or negative one.
func millis(ms int64) time.Duration {
	if ms > math.MaxInt64/int64(time.Millisecond) {
		return math.MaxInt64
	}
	return time.Duration(ms) * time.Millisecond
}
