package wire

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
)

func fullProps() Properties {
	return Properties{
		ContentType:     "application/json",
		ContentEncoding: "gzip",
		Headers:         Table{"x-match": "all", "n": int32(1), "nested": Table{"a": []any{"b"}}},
		DeliveryMode:    2,
		Priority:        9,
		CorrelationID:   "corr",
		ReplyTo:         "amq.rabbitmq.reply-to",
		Expiration:      "60000",
		MessageID:       "msg-1",
		Timestamp:       time.Unix(1700000000, 0).UTC(),
		Type:            "kind",
		UserID:          "guest",
		AppID:           "app",
		ClusterID:       "cluster",
		Flags:           0xFFFC,
	}
}

func TestPropertiesRoundTrip(t *testing.T) {
	p := fullProps()
	raw, err := p.AppendTo([]byte("pre"))
	if err != nil {
		t.Fatal(err)
	}
	raw = raw[3:]
	if err := ValidateProps(raw); err != nil {
		t.Fatal(err)
	}
	var q Properties
	if err := q.Decode(raw); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p, q) {
		t.Fatalf("got %#v\nwant %#v", q, p)
	}
	raw2, _ := q.AppendTo(nil)
	if !bytes.Equal(raw, raw2) {
		t.Fatal("re-encode differs")
	}
	if PropsDeliveryMode(raw) != 2 || !PropsHasHeaders(raw) {
		t.Fatal("fast accessors")
	}
	if s, ok := PropsReplyTo(raw); !ok || s != "amq.rabbitmq.reply-to" {
		t.Fatal("PropsReplyTo", s, ok)
	}
	if !PropsReplyToIs(raw, "amq.rabbitmq.reply-to") || PropsReplyToIs(raw, "amq.rabbitmq.reply-t") || PropsReplyToIs(raw, "amq.rabbitmq.reply-to.") {
		t.Fatal("PropsReplyToIs")
	}

	// Each property alone.
	for bit := uint16(0x8000); bit >= FlagClusterID; bit >>= 1 {
		one := Properties{Flags: bit}
		raw, err := one.AppendTo(nil)
		if err != nil {
			t.Fatal(err)
		}
		var got Properties
		if err := got.Decode(raw); err != nil || got.Flags != bit {
			t.Fatalf("bit %#04x: %v flags %#04x", bit, err, got.Flags)
		}
	}
}

func TestPropertiesFlagsFromValues(t *testing.T) {
	p := Properties{ContentType: "text/plain", DeliveryMode: 1, Timestamp: time.Unix(0, 0)}
	raw, _ := p.AppendTo(nil)
	var q Properties
	if err := q.Decode(raw); err != nil {
		t.Fatal(err)
	}
	if q.Flags != FlagContentType|FlagDeliveryMode|FlagTimestamp || q.ContentType != "text/plain" || q.DeliveryMode != 1 {
		t.Fatalf("%+v", q)
	}
	// Present-but-empty values survive via Flags.
	p = Properties{Flags: FlagReplyTo | FlagHeaders}
	raw, _ = p.AppendTo(nil)
	if !bytes.Equal(raw, []byte{0x22, 0x00, 0, 0, 0, 0, 0}) {
		t.Fatalf("% x", raw)
	}
	if s, ok := PropsReplyTo(raw); !ok || s != "" {
		t.Fatal("empty reply-to")
	}
	if PropsDeliveryMode(raw) != 0 || !PropsHasHeaders(raw) {
		t.Fatal("accessors")
	}
	if _, err := (&Properties{Type: string(make([]byte, 256))}).AppendTo(nil); err == nil {
		t.Fatal("long shortstr accepted")
	}
	if out, err := (&Properties{Headers: Table{"x": struct{}{}}}).AppendTo([]byte("k")); err == nil || string(out) != "k" {
		t.Fatal("bad headers accepted")
	}
}

func TestPropertiesRejects(t *testing.T) {
	p := fullProps()
	raw, _ := p.AppendTo(nil)
	for n := 0; n < len(raw); n++ {
		var q Properties
		if err := q.Decode(raw[:n]); err == nil {
			t.Fatalf("truncated to %d decoded", n)
		}
		if ValidateProps(raw[:n]) == nil {
			t.Fatalf("truncated to %d validated", n)
		}
	}
	cases := map[string][]byte{
		"unused flag bit 1":       {0x00, 0x02},
		"continuation truncated":  {0x00, 0x01},
		"continuation with a bit": {0x00, 0x01, 0x80, 0x00},
		"trailing byte":           {0x10, 0x00, 2, 0},
		"shortstr past end":       {0x80, 0x00, 5, 'a'},
		"headers 4GiB":            {0x20, 0x00, 0xFF, 0xFF, 0xFF, 0xFF},
		"headers bad type":        {0x20, 0x00, 0, 0, 0, 3, 1, 'k', 'Z'},
		"timestamp truncated":     {0x00, 0x40, 0, 0, 0, 0},
		"delivery mode missing":   {0x10, 0x00},
		"empty":                   {},
	}
	for name, raw := range cases {
		var q Properties
		if err := q.Decode(raw); err == nil {
			t.Errorf("%s: decoded", name)
		}
		if ValidateProps(raw) == nil {
			t.Errorf("%s: validated", name)
		}
		if PropsDeliveryMode(raw) != 0 && name != "trailing byte" {
			t.Errorf("%s: delivery mode", name)
		}
	}
	// Continuation words with no flags are accepted.
	ok := []byte{0x10, 0x01, 0x00, 0x01, 0x00, 0x00, 2}
	var q Properties
	if err := q.Decode(ok); err != nil || q.DeliveryMode != 2 || q.Flags != FlagDeliveryMode {
		t.Fatal(err, q)
	}
	if ValidateProps(ok) != nil || PropsDeliveryMode(ok) != 2 {
		t.Fatal("continuation")
	}
}

func TestParseContentHeader(t *testing.T) {
	p := fullProps()
	raw, _ := p.AppendTo(nil)
	frame := AppendHeaderFrame(nil, 1, ClassBasic, 12345, raw)
	payload := frame[7 : len(frame)-1]
	cls, size, rp, err := ParseContentHeader(payload)
	if err != nil || cls != 60 || size != 12345 || !bytes.Equal(rp, raw) {
		t.Fatal(cls, size, err)
	}
	if &rp[0] != &payload[12] {
		t.Fatal("rawProps should alias payload")
	}
	var e *Error
	_, _, _, err = ParseContentHeader(payload[:13])
	if !errors.As(err, &e) || e.Code != FrameError {
		t.Fatal(err)
	}
	for n := 14; n < len(payload); n++ {
		_, _, _, err = ParseContentHeader(payload[:n])
		if !errors.As(err, &e) || e.Code != SyntaxError {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	// No properties at all.
	h := AppendHeaderFrame(nil, 1, ClassBasic, 0, []byte{0, 0})
	if _, _, rp, err := ParseContentHeader(h[7 : len(h)-1]); err != nil || len(rp) != 2 {
		t.Fatal(err)
	}
}
