package wire

import (
	"errors"
	"fmt"
	"strconv"
)

// Error is an AMQP protocol error carrying the reply code to send in
// connection.close or channel.close. Text is in RabbitMQ style, e.g.
// "NOT_FOUND - no queue 'x' in vhost '/'". ClassID and MethodID identify the
// method that caused it, when known.
type Error struct {
	Code     uint16
	Text     string
	ClassID  uint16
	MethodID uint16
}

func (e *Error) Error() string {
	if e.Text != "" {
		return e.Text
	}
	if name := ReplyCodeName(e.Code); name != "" {
		return name
	}
	return "AMQP error " + strconv.Itoa(int(e.Code))
}

// Hard reports whether the error's code is a connection-level error.
func (e *Error) Hard() bool { return IsHardError(e.Code) }

// Errorf builds an *Error whose Text is the reply code's name, " - " and the
// formatted message: Errorf(NotFound, 50, 10, "no queue '%s' in vhost '%s'", q, vh).
func Errorf(code, classID, methodID uint16, format string, args ...any) *Error {
	name := ReplyCodeName(code)
	if name == "" {
		name = strconv.Itoa(int(code))
	}
	return &Error{Code: code, ClassID: classID, MethodID: methodID, Text: name + " - " + fmt.Sprintf(format, args...)}
}

// ErrBadProtocolHeader is returned by ReadProtocolHeader when the peer's
// 8-byte protocol header is not "AMQP\x00\x00\x09\x01". The server should
// reply with ProtocolHeader and close the connection.
var ErrBadProtocolHeader = errors.New("wire: bad AMQP protocol header")

// syntaxError is the cause of malformed method arguments, properties or
// tables; it is wrapped into an *Error by the public entry points.
type syntaxError struct{ msg string }

func (e *syntaxError) Error() string { return e.msg }

func errSyntaxf(format string, args ...any) error {
	return &syntaxError{msg: fmt.Sprintf(format, args...)}
}

var (
	errShort    = &syntaxError{msg: "truncated"}
	errShortstr = &syntaxError{msg: "shortstr longer than 255 bytes"}
	errLongstr  = &syntaxError{msg: "longstr longer than 4294967295 bytes"}
	errTrailing = &syntaxError{msg: "unexpected trailing bytes"}
	errDepth    = &syntaxError{msg: "field table nesting too deep"}
)

// argError annotates an encoding error with the method and field.
func argError(method, field string, err error) error {
	return fmt.Errorf("wire: encoding %s %s: %w", method, field, err)
}
