package server

import (
	"fmt"
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
}

// equivalenceArgs are the arguments RabbitMQ compares when a queue is
// redeclared; the others may differ.
var equivalenceArgs = []string{
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

// parseQueueArgs validates the arguments Warren understands, as RabbitMQ
// does; the error names the argument.
func parseQueueArgs(args wire.Table) (queueConfig, error) {
	cfg := queueConfig{opts: queue.NoLimits()}
	nonNegative := func(key string) (int64, bool, error) {
		v, ok := args[key]
		if !ok {
			return 0, false, nil
		}
		n, isInt := intArg(v)
		if !isInt {
			return 0, false, fmt.Errorf("'%s': {unacceptable_type,%T}", key, v)
		}
		if n < 0 {
			return 0, false, fmt.Errorf("'%s': {value_negative,%d}", key, n)
		}
		return n, true, nil
	}
	if n, ok, err := nonNegative("x-message-ttl"); err != nil {
		return cfg, err
	} else if ok {
		cfg.opts.MessageTTL = time.Duration(n) * time.Millisecond
	}
	if n, ok, err := nonNegative("x-max-length"); err != nil {
		return cfg, err
	} else if ok {
		cfg.opts.MaxLength = int(n)
	}
	if n, ok, err := nonNegative("x-max-length-bytes"); err != nil {
		return cfg, err
	} else if ok {
		cfg.opts.MaxLengthBytes = n
	}
	if n, ok, err := nonNegative("x-expires"); err != nil {
		return cfg, err
	} else if ok && n == 0 {
		return cfg, fmt.Errorf("'x-expires': {value_zero,0}")
	}
	if v, ok := args["x-overflow"]; ok {
		switch v {
		case "drop-head":
		case "reject-publish", "reject-publish-dlx":
			cfg.opts.Overflow = queue.RejectPublish
		default:
			return cfg, fmt.Errorf("'x-overflow': {unacceptable_value,%v}", v)
		}
	}
	if v, ok := args["x-queue-type"]; ok {
		switch v {
		case "classic", "quorum", "stream":
		default:
			return cfg, fmt.Errorf("'x-queue-type': {unacceptable_value,%v}", v)
		}
	}
	if v, ok := args["x-dead-letter-exchange"]; ok {
		s, isString := v.(string)
		if !isString {
			return cfg, fmt.Errorf("'x-dead-letter-exchange': {unacceptable_type,%T}", v)
		}
		cfg.dlx, cfg.hasDLX = s, true
	}
	if v, ok := args["x-dead-letter-routing-key"]; ok {
		s, isString := v.(string)
		if !isString {
			return cfg, fmt.Errorf("'x-dead-letter-routing-key': {unacceptable_type,%T}", v)
		}
		cfg.dlrk, cfg.hasDLRK = s, true
	}
	return cfg, nil
}

// queueArgsEquivalent compares the arguments RabbitMQ checks on redeclare
// and returns the first that differs. Integers compare by value whatever
// their AMQP width, as a client may send the same number as any type.
func queueArgsEquivalent(current, received wire.Table) (string, bool) {
	for _, k := range equivalenceArgs {
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
