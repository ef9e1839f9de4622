package wire

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Property flag bits of the basic class content header, in wire order.
const (
	FlagContentType     = 0x8000
	FlagContentEncoding = 0x4000
	FlagHeaders         = 0x2000
	FlagDeliveryMode    = 0x1000
	FlagPriority        = 0x0800
	FlagCorrelationID   = 0x0400
	FlagReplyTo         = 0x0200
	FlagExpiration      = 0x0100
	FlagMessageID       = 0x0080
	FlagTimestamp       = 0x0040
	FlagType            = 0x0020
	FlagUserID          = 0x0010
	FlagAppID           = 0x0008
	FlagClusterID       = 0x0004

	flagContinuation = 0x0001
	flagsKnown       = 0xFFFC
)

// Properties are the decoded basic-class content properties.
type Properties struct {
	ContentType, ContentEncoding string
	Headers                      Table
	DeliveryMode, Priority       uint8
	CorrelationID, ReplyTo       string
	Expiration, MessageID        string
	Timestamp                    time.Time
	Type, UserID, AppID          string
	ClusterID                    string
	// Flags has the Flag* bit of every property that was present.
	Flags uint16
}

// readPropFlags reads the property flags word(s) at the start of raw. The
// basic class has 14 properties, so a continuation word may only carry the
// continuation bit; bit 1 of the first word is unused and must be 0.
func readPropFlags(raw []byte) (flags uint16, n int, err error) {
	if len(raw) < 2 {
		return 0, 0, errSyntaxf("truncated property flags")
	}
	w := binary.BigEndian.Uint16(raw)
	if w&^(flagsKnown|flagContinuation) != 0 {
		return 0, 0, errSyntaxf("unknown property flags 0x%04x", w&^(flagsKnown|flagContinuation))
	}
	flags, n = w&flagsKnown, 2
	for w&flagContinuation != 0 {
		if len(raw)-n < 2 {
			return 0, 0, errSyntaxf("truncated property flags continuation")
		}
		w = binary.BigEndian.Uint16(raw[n:])
		n += 2
		if w&^flagContinuation != 0 {
			return 0, 0, errSyntaxf("unknown property flags 0x%04x in continuation word", w&^flagContinuation)
		}
	}
	return flags, n, nil
}

// ValidateProps checks that raw (property flags and list, as
// ParseContentHeader returns them and a queue.Message keeps them) is well
// formed, without allocating. The store checks records it reads back from
// disk with it.
func ValidateProps(raw []byte) error {
	flags, off, err := readPropFlags(raw)
	if err != nil {
		return err
	}
	for bit := uint16(0x8000); bit >= FlagClusterID; bit >>= 1 {
		if flags&bit == 0 {
			continue
		}
		left := len(raw) - off
		switch bit {
		case FlagHeaders:
			n, err := skipTable(raw[off:], 0)
			if err != nil {
				return fmt.Errorf("headers: %w", err)
			}
			off += n
		case FlagDeliveryMode, FlagPriority:
			if left < 1 {
				return errShort
			}
			off++
		case FlagTimestamp:
			if left < 8 {
				return errShort
			}
			off += 8
		default:
			if left < 1 || int(raw[off]) > left-1 {
				return errShort
			}
			off += 1 + int(raw[off])
		}
	}
	if off != len(raw) {
		return errTrailing
	}
	return nil
}

// ParseContentHeader parses a content header frame payload: class-id,
// weight, body size, property flags and property list. rawProps (the flags
// and the list) aliases payload. The properties are validated against the
// basic class layout: each present property must decode within bounds
// (tables fully checked), flag bits without a property are an error and no
// bytes may follow the list. The weight is not checked.
func ParseContentHeader(payload []byte) (classID uint16, bodySize uint64, rawProps []byte, err error) {
	if len(payload) < 14 {
		return 0, 0, nil, &Error{Code: FrameError, Text: fmt.Sprintf("FRAME_ERROR - content header payload too short (%d bytes)", len(payload))}
	}
	classID = binary.BigEndian.Uint16(payload)
	bodySize = binary.BigEndian.Uint64(payload[4:])
	rawProps = payload[12:]
	if err := ValidateProps(rawProps); err != nil {
		return 0, 0, nil, &Error{Code: SyntaxError, ClassID: classID,
			Text: "SYNTAX_ERROR - malformed content header properties: " + err.Error()}
	}
	return classID, bodySize, rawProps, nil
}

// Decode decodes rawProps (property flags and list, as returned by
// ParseContentHeader) into p, replacing all of p. Strings do not alias
// rawProps.
func (p *Properties) Decode(rawProps []byte) error {
	flags, off, err := readPropFlags(rawProps)
	if err != nil {
		*p = Properties{}
		return &Error{Code: SyntaxError, ClassID: ClassBasic, Text: "SYNTAX_ERROR - malformed content header properties: " + err.Error()}
	}
	*p = Properties{Flags: flags}
	c := cursor{b: rawProps, off: off}
	if flags&FlagContentType != 0 {
		p.ContentType = c.shortstr(nil)
	}
	if flags&FlagContentEncoding != 0 {
		p.ContentEncoding = c.shortstr(nil)
	}
	if flags&FlagHeaders != 0 {
		p.Headers = c.table()
	}
	if flags&FlagDeliveryMode != 0 {
		p.DeliveryMode = c.octet()
	}
	if flags&FlagPriority != 0 {
		p.Priority = c.octet()
	}
	if flags&FlagCorrelationID != 0 {
		p.CorrelationID = c.shortstr(nil)
	}
	if flags&FlagReplyTo != 0 {
		p.ReplyTo = c.shortstr(nil)
	}
	if flags&FlagExpiration != 0 {
		p.Expiration = c.shortstr(nil)
	}
	if flags&FlagMessageID != 0 {
		p.MessageID = c.shortstr(nil)
	}
	if flags&FlagTimestamp != 0 {
		p.Timestamp = c.timestamp()
	}
	if flags&FlagType != 0 {
		p.Type = c.shortstr(nil)
	}
	if flags&FlagUserID != 0 {
		p.UserID = c.shortstr(nil)
	}
	if flags&FlagAppID != 0 {
		p.AppID = c.shortstr(nil)
	}
	if flags&FlagClusterID != 0 {
		p.ClusterID = c.shortstr(nil)
	}
	if err := c.done(); err != nil {
		*p = Properties{}
		return &Error{Code: SyntaxError, ClassID: ClassBasic, Text: "SYNTAX_ERROR - malformed content header properties: " + err.Error()}
	}
	return nil
}

// AppendTo appends the property flags and list to b. A property is written
// if its bit is set in p.Flags or its value is not the zero value (a
// non-empty Headers table, a non-zero Timestamp). It fails, leaving b
// unchanged, if a string is longer than 255 bytes or Headers cannot be
// encoded.
//
// Decode(AppendTo(p)) reproduces p (with Flags updated as described) and
// AppendTo(Decode(raw)) reproduces raw byte for byte when raw is in the
// canonical form AppendTo produces: headers keys in sorted order without
// duplicates, boolean field values 0 or 1, and no continuation flag words.
func (p *Properties) AppendTo(b []byte) ([]byte, error) {
	flags := p.Flags & flagsKnown
	set := func(bit uint16, present bool) {
		if present {
			flags |= bit
		}
	}
	set(FlagContentType, p.ContentType != "")
	set(FlagContentEncoding, p.ContentEncoding != "")
	set(FlagHeaders, len(p.Headers) > 0)
	set(FlagDeliveryMode, p.DeliveryMode != 0)
	set(FlagPriority, p.Priority != 0)
	set(FlagCorrelationID, p.CorrelationID != "")
	set(FlagReplyTo, p.ReplyTo != "")
	set(FlagExpiration, p.Expiration != "")
	set(FlagMessageID, p.MessageID != "")
	set(FlagTimestamp, !p.Timestamp.IsZero())
	set(FlagType, p.Type != "")
	set(FlagUserID, p.UserID != "")
	set(FlagAppID, p.AppID != "")
	set(FlagClusterID, p.ClusterID != "")

	start := len(b)
	b = appendUint16(b, flags)
	var err error
	str := func(bit uint16, name, s string) {
		if err == nil && flags&bit != 0 {
			if b, err = appendShortstr(b, s); err != nil {
				err = fmt.Errorf("wire: property %s: %w", name, err)
			}
		}
	}
	str(FlagContentType, "content-type", p.ContentType)
	str(FlagContentEncoding, "content-encoding", p.ContentEncoding)
	if err == nil && flags&FlagHeaders != 0 {
		if b, err = AppendTable(b, p.Headers); err != nil {
			err = fmt.Errorf("wire: property headers: %w", err)
		}
	}
	if flags&FlagDeliveryMode != 0 {
		b = append(b, p.DeliveryMode)
	}
	if flags&FlagPriority != 0 {
		b = append(b, p.Priority)
	}
	str(FlagCorrelationID, "correlation-id", p.CorrelationID)
	str(FlagReplyTo, "reply-to", p.ReplyTo)
	str(FlagExpiration, "expiration", p.Expiration)
	str(FlagMessageID, "message-id", p.MessageID)
	if flags&FlagTimestamp != 0 {
		b = appendTimestamp(b, p.Timestamp)
	}
	str(FlagType, "type", p.Type)
	str(FlagUserID, "user-id", p.UserID)
	str(FlagAppID, "app-id", p.AppID)
	str(FlagClusterID, "cluster-id", p.ClusterID)
	if err != nil {
		return b[:start], err
	}
	return b, nil
}

// propOffset returns the offset in rawProps of property bit, or -1 if it is
// absent or rawProps is malformed before it. Tables are skipped by their
// length only.
func propOffset(raw []byte, target uint16) int {
	flags, off, err := readPropFlags(raw)
	if err != nil || flags&target == 0 {
		return -1
	}
	for bit := uint16(0x8000); bit > target; bit >>= 1 {
		if flags&bit == 0 {
			continue
		}
		left := len(raw) - off
		switch bit {
		case FlagHeaders:
			if left < 4 {
				return -1
			}
			n := binary.BigEndian.Uint32(raw[off:])
			if uint64(n) > uint64(left-4) {
				return -1
			}
			off += 4 + int(n)
		case FlagDeliveryMode, FlagPriority:
			off++
		case FlagTimestamp:
			off += 8
		default:
			if left < 1 {
				return -1
			}
			off += 1 + int(raw[off])
		}
		if off > len(raw) {
			return -1
		}
	}
	return off
}

// PropsDeliveryMode returns the delivery-mode property of rawProps without
// allocating: 0 if it is absent or rawProps is malformed.
func PropsDeliveryMode(rawProps []byte) uint8 {
	off := propOffset(rawProps, FlagDeliveryMode)
	if off < 0 || off >= len(rawProps) {
		return 0
	}
	return rawProps[off]
}

// PropsPriority returns the priority property of rawProps without
// allocating: 0 if it is absent or rawProps is malformed.
func PropsPriority(rawProps []byte) uint8 {
	off := propOffset(rawProps, FlagPriority)
	if off < 0 || off >= len(rawProps) {
		return 0
	}
	return rawProps[off]
}

// PropsReplyTo returns the reply-to property of rawProps; it allocates only
// when the property is present and non-empty. ok is false if it is absent
// or rawProps is malformed.
func PropsReplyTo(rawProps []byte) (string, bool) {
	off := propOffset(rawProps, FlagReplyTo)
	if off < 0 || off >= len(rawProps) {
		return "", false
	}
	n := int(rawProps[off])
	if n > len(rawProps)-off-1 {
		return "", false
	}
	return string(rawProps[off+1 : off+1+n]), true
}

// PropsReplyToIs reports whether rawProps has the reply-to property s,
// without allocating.
func PropsReplyToIs(rawProps []byte, s string) bool {
	off := propOffset(rawProps, FlagReplyTo)
	if off < 0 || off >= len(rawProps) {
		return false
	}
	n := int(rawProps[off])
	return n == len(s) && n <= len(rawProps)-off-1 && string(rawProps[off+1:off+1+n]) == s
}

// PropsHasHeaders reports whether the headers property is present.
func PropsHasHeaders(rawProps []byte) bool {
	flags, _, err := readPropFlags(rawProps)
	return err == nil && flags&FlagHeaders != 0
}
