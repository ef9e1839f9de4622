package wire

import (
	"encoding/binary"
	"fmt"
)

// Method is an AMQP method: one of the generated structs of methods_gen.go.
type Method interface {
	ClassID() uint16
	MethodID() uint16
	MethodName() string // e.g. "basic.publish"
	Synchronous() bool  // synchronous="1" in the specification
	HasContent() bool   // content="1": followed by a header and body frames
	ServerReceives() bool
	// AppendArgs appends the encoded arguments only (not the class and
	// method ids). It fails if a shortstr is longer than 255 bytes or a
	// table holds an unsupported value.
	AppendArgs(b []byte) ([]byte, error)
	decodeArgs(d *Decoder, b []byte) error
}

const (
	maxInternEntries = 4096
	maxInternLen     = 64
)

// Decoder decodes method frame payloads. It keeps per-connection state (a
// reusable value of each hot method and a bounded intern table of short
// strings such as exchange names and routing keys) and is not safe for
// concurrent use.
type Decoder struct {
	hot  hotMethods
	strs map[string]string
}

// NewDecoder returns a Decoder for one connection. Its intern table starts
// empty and grows with the names the connection uses, so an idle
// connection that only did the handshake holds a few entries.
func NewDecoder() *Decoder { return &Decoder{} }

// intern returns p as a string that does not alias p. Short strings are
// remembered so repeated values (exchange names, routing keys, consumer
// tags) do not allocate. The table is cleared when it reaches
// maxInternEntries.
func (d *Decoder) intern(p []byte) string {
	if len(p) > maxInternLen {
		return string(p)
	}
	if s, ok := d.strs[string(p)]; ok {
		return s
	}
	if d.strs == nil {
		d.strs = make(map[string]string)
	}
	if len(d.strs) >= maxInternEntries {
		clear(d.strs)
	}
	s := string(p)
	d.strs[s] = s
	return s
}

// DecodeMethod decodes a method frame payload (class-id, method-id,
// arguments).
//
// For basic.publish, basic.ack, basic.nack and basic.reject the returned
// Method points into the Decoder and is overwritten by the next DecodeMethod
// call; other methods are freshly allocated. Strings never alias payload.
//
// Errors are *Error: FrameError if the payload is shorter than 4 bytes,
// CommandInvalid for an unknown class or method, SyntaxError (with ClassID
// and MethodID set) for truncated or malformed arguments or trailing bytes.
func (d *Decoder) DecodeMethod(payload []byte) (Method, error) {
	if len(payload) < 4 {
		return nil, &Error{Code: FrameError, Text: fmt.Sprintf("FRAME_ERROR - method frame payload too short (%d bytes)", len(payload))}
	}
	classID := binary.BigEndian.Uint16(payload)
	methodID := binary.BigEndian.Uint16(payload[2:])
	m := d.hot.method(classID, methodID)
	if m == nil {
		return nil, &Error{Code: CommandInvalid, ClassID: classID, MethodID: methodID,
			Text: fmt.Sprintf("COMMAND_INVALID - unknown method class %d method %d", classID, methodID)}
	}
	if err := m.decodeArgs(d, payload[4:]); err != nil {
		return nil, &Error{Code: SyntaxError, ClassID: classID, MethodID: methodID,
			Text: fmt.Sprintf("SYNTAX_ERROR - malformed %s arguments: %s", m.MethodName(), err.Error())}
	}
	return m, nil
}
