package rpc

import (
	"errors"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"
)

var (
	// ErrClosed is returned by Call after Close, and by the calls that were
	// waiting when Close was called.
	ErrClosed = errors.New("rpc: client closed")

	// ErrConnectionLost is wrapped by the error of every call that was
	// waiting, or is made, after the client's channel or connection died
	// or the broker cancelled its reply consumer; the error also wraps the
	// broker's *amqp.Error when there is one. The request may or may not
	// have been handled. Serve's error wraps it too.
	ErrConnectionLost = errors.New("rpc: connection lost")

	// ErrNoRoute is wrapped by the error of a call whose request the
	// broker returned as unroutable: no queue was bound to take it.
	ErrNoRoute = errors.New("rpc: request unroutable")

	// errRecovery is returned for a connection with amqp091-go's automatic
	// recovery: it keeps a dead channel looking alive, which would leave
	// calls waiting for replies that cannot come.
	errRecovery = errors.New("rpc: connections with Config.Recovery are not supported; dial one without it for rpc")
)

// lost is the error for a channel that has died, with the broker's reason
// if it sent one.
func lost(e *amqp.Error) error {
	if e == nil {
		return fmt.Errorf("%w: channel closed", ErrConnectionLost)
	}
	return fmt.Errorf("%w: %w", ErrConnectionLost, e)
}

// endReason says why a consumer's deliveries channel closed: the broker
// cancelled the consumer (the channel is still open), or the channel died
// (the reason comes on closed). It must be called only after the
// deliveries channel has closed: amqp091-go reports a broker's cancel on
// cancels before closing the deliveries, and a channel error on closed
// before closing them too.
func endReason(cancels <-chan string, closed <-chan *amqp.Error) (cancelled bool, e *amqp.Error) {
	select {
	case _, ok := <-cancels:
		if ok {
			return true, nil
		}
	default:
	}
	return false, <-closed
}
