package server

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/warrenmq/warren/internal/wire"
)

// amqpError is an exception to send to the client: a soft code closes the
// channel, a hard code the connection (wire.IsHardError).
type amqpError struct {
	code     uint16
	text     string // with the RabbitMQ-style "NAME - " prefix
	classID  uint16
	methodID uint16
}

func (e *amqpError) Error() string { return e.text }

var codeNames = map[uint16]string{
	wire.ContentTooLarge:    "CONTENT_TOO_LARGE",
	wire.NoRoute:            "NO_ROUTE",
	wire.NoConsumers:        "NO_CONSUMERS",
	wire.ConnectionForced:   "CONNECTION_FORCED",
	wire.InvalidPath:        "INVALID_PATH",
	wire.AccessRefused:      "ACCESS_REFUSED",
	wire.NotFound:           "NOT_FOUND",
	wire.ResourceLocked:     "RESOURCE_LOCKED",
	wire.PreconditionFailed: "PRECONDITION_FAILED",
	wire.FrameError:         "FRAME_ERROR",
	wire.SyntaxError:        "SYNTAX_ERROR",
	wire.CommandInvalid:     "COMMAND_INVALID",
	wire.ChannelError:       "CHANNEL_ERROR",
	wire.UnexpectedFrame:    "UNEXPECTED_FRAME",
	wire.ResourceError:      "RESOURCE_ERROR",
	wire.NotAllowed:         "NOT_ALLOWED",
	wire.NotImplemented:     "NOT_IMPLEMENTED",
	wire.InternalError:      "INTERNAL_ERROR",
}

// errorf builds an exception whose text starts with the code's name, as
// RabbitMQ's do ("NOT_FOUND - no queue 'q' in vhost '/'").
func errorf(code uint16, format string, args ...any) *amqpError {
	return &amqpError{code: code, text: replyText(codeNames[code] + " - " + fmt.Sprintf(format, args...))}
}

// asAMQPError turns any error from handling a frame into an exception,
// stamped with the method that caused it.
func asAMQPError(err error, m wire.Method) *amqpError {
	var ae *amqpError
	if !errors.As(err, &ae) {
		var we *wire.Error
		if errors.As(err, &we) {
			ae = &amqpError{code: we.Code, text: replyText(we.Text), classID: we.ClassID, methodID: we.MethodID}
		} else {
			ae = errorf(wire.InternalError, "%v", err)
		}
	}
	if ae.classID == 0 && ae.methodID == 0 && m != nil {
		ae.classID, ae.methodID = m.ClassID(), m.MethodID()
	}
	return ae
}

// replyText cuts a reply text to the 255 bytes a shortstr holds (at a UTF-8
// boundary), as RabbitMQ does: a longer one could not be encoded, and the
// client would never get its close.
func replyText(s string) string {
	if len(s) <= 255 {
		return s
	}
	cut := 255
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
