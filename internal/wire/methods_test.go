package wire

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fillMethod sets every field of m to a non-zero value derived from seed.
// Bits alternate with seed so that each bit position is exercised both ways.
func fillMethod(t testing.TB, m Method, seed int) {
	t.Helper()
	v := reflect.ValueOf(m).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		name := v.Type().Field(i).Name
		n := seed + i + 1
		switch f.Interface().(type) {
		case uint8:
			f.SetUint(uint64(0xA0 + n))
		case uint16:
			f.SetUint(uint64(0xBE00 + n))
		case uint32:
			f.SetUint(uint64(0xDEAD0000 + n))
		case uint64:
			f.SetUint(0xFEEDFACE00000000 + uint64(n))
		case bool:
			f.SetBool((seed+i)%2 == 0 || seed == 7)
		case string:
			f.SetString(strings.Repeat(name, 1+n%3) + "-é")
		case Table:
			f.Set(reflect.ValueOf(Table{
				"name":   name,
				"n":      int32(n),
				"nested": Table{"deep": []any{int64(-1), "x", Table{"z": true}}},
			}))
		case time.Time:
			f.Set(reflect.ValueOf(time.Unix(1700000000+int64(n), 0).UTC()))
		default:
			t.Fatalf("%s.%s: unhandled type %s", m.MethodName(), name, f.Type())
		}
	}
}

func TestGeneratedMethodSet(t *testing.T) {
	if len(methodIDs) != 64 {
		t.Fatalf("got %d methods, want 64", len(methodIDs))
	}
	names := map[string]bool{}
	for _, id := range methodIDs {
		m := newMethod(id[0], id[1])
		if m == nil {
			t.Fatalf("newMethod(%d, %d) = nil", id[0], id[1])
		}
		if m.ClassID() != id[0] || m.MethodID() != id[1] {
			t.Errorf("%s: ids %d.%d, want %d.%d", m.MethodName(), m.ClassID(), m.MethodID(), id[0], id[1])
		}
		if names[m.MethodName()] {
			t.Errorf("duplicate %s", m.MethodName())
		}
		names[m.MethodName()] = true
	}

	checks := []struct {
		m                     Method
		name                  string
		sync, content, server bool
	}{
		{&ConnectionStart{}, "connection.start", true, false, false},
		{&ConnectionStartOk{}, "connection.start-ok", true, false, true},
		{&ConnectionClose{}, "connection.close", true, false, true},
		{&ChannelOpenOk{}, "channel.open-ok", true, false, false},
		{&ChannelFlowOk{}, "channel.flow-ok", false, false, true},
		{&BasicPublish{}, "basic.publish", false, true, true},
		{&BasicDeliver{}, "basic.deliver", false, true, false},
		{&BasicGetOk{}, "basic.get-ok", true, true, false},
		{&BasicGetEmpty{}, "basic.get-empty", true, false, false},
		{&BasicAck{}, "basic.ack", false, false, true},
		{&BasicNack{}, "basic.nack", false, false, true},
		{&BasicRecoverAsync{}, "basic.recover-async", false, false, true},
		{&ConfirmSelect{}, "confirm.select", true, false, true},
		{&ExchangeBindOk{}, "exchange.bind-ok", true, false, false},
		{&TxCommitOk{}, "tx.commit-ok", true, false, false},
		{&QueueUnbindOk{}, "queue.unbind-ok", true, false, false},
	}
	for _, c := range checks {
		if c.m.MethodName() != c.name || c.m.Synchronous() != c.sync || c.m.HasContent() != c.content || c.m.ServerReceives() != c.server {
			t.Errorf("%T: got %q sync=%v content=%v server=%v, want %q %v %v %v", c.m,
				c.m.MethodName(), c.m.Synchronous(), c.m.HasContent(), c.m.ServerReceives(),
				c.name, c.sync, c.content, c.server)
		}
	}

	// Field names and types the server relies on.
	_ = ConnectionTune{ChannelMax: 1, FrameMax: 2, Heartbeat: 3}
	_ = ConnectionClose{ReplyCode: 1, ReplyText: "", FailingClassID: 2, FailingMethodID: 3}
	_ = ConnectionOpen{VirtualHost: "/", Reserved1: "", Reserved2: true}
	_ = ExchangeDeclare{Reserved1: 1, Exchange: "", Type: "", Passive: true, Durable: true, AutoDelete: true, Internal: true, NoWait: true, Arguments: nil}
	_ = ExchangeBind{Destination: "", Source: "", RoutingKey: "", NoWait: true}
	_ = QueueDeclare{Queue: "", Exclusive: true}
	_ = QueueDeleteOk{MessageCount: 1}
	_ = QueueDeclareOk{MessageCount: 1, ConsumerCount: 2}
	_ = QueueDelete{IfUnused: true, IfEmpty: true}
	_ = BasicQos{PrefetchSize: 1, PrefetchCount: 2, Global: true}
	_ = BasicConsume{ConsumerTag: "", NoLocal: true, NoAck: true}
	_ = BasicNack{DeliveryTag: 1, Multiple: true, Requeue: true}
	_ = BasicPublish{Mandatory: true, Immediate: true}
	_ = ChannelFlow{Active: true}
	_ = ConfirmSelect{NoWait: true}
	_ = ConnectionStart{ServerProperties: Table{}, VersionMajor: 0, VersionMinor: 9}
	_ = ConnectionStartOk{ClientProperties: Table{}}
}

func TestConstants(t *testing.T) {
	got := []int{ReplySuccess, ContentTooLarge, NoRoute, NoConsumers, ConnectionForced, InvalidPath, AccessRefused,
		NotFound, ResourceLocked, PreconditionFailed, FrameError, SyntaxError, CommandInvalid, ChannelError,
		UnexpectedFrame, ResourceError, NotAllowed, NotImplemented, InternalError,
		FrameMethod, FrameHeader, FrameBody, FrameHeartbeat, FrameMinSize, FrameEnd,
		ClassConnection, ClassChannel, ClassExchange, ClassQueue, ClassBasic, ClassConfirm, ClassTx}
	want := []int{200, 311, 312, 313, 320, 402, 403, 404, 405, 406, 501, 502, 503, 504, 505, 506, 530, 540, 541,
		1, 2, 3, 8, 4096, 206, 10, 20, 40, 50, 60, 85, 90}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("constants = %v, want %v", got, want)
	}
	hard := map[uint16]bool{320: true, 402: true, 501: true, 502: true, 503: true, 504: true, 505: true, 506: true, 530: true, 540: true, 541: true}
	for c := uint16(0); c < 1000; c++ {
		if IsHardError(c) != hard[c] {
			t.Errorf("IsHardError(%d) = %v", c, IsHardError(c))
		}
	}
	if ReplyCodeName(NotFound) != "NOT_FOUND" || ReplyCodeName(ReplySuccess) != "REPLY_SUCCESS" || ReplyCodeName(FrameMinSize) != "" {
		t.Error("ReplyCodeName")
	}
	e := Errorf(NotFound, 50, 10, "no queue '%s' in vhost '%s'", "x", "/")
	if e.Error() != "NOT_FOUND - no queue 'x' in vhost '/'" || e.Hard() || e.ClassID != 50 {
		t.Errorf("Errorf: %+v", e)
	}
}

func TestMethodRoundTrip(t *testing.T) {
	d := NewDecoder()
	for _, id := range methodIDs {
		for seed := 0; seed < 8; seed++ {
			m := newMethod(id[0], id[1])
			fillMethod(t, m, seed)
			ch := uint16(seed*1000 + 1)
			frame, err := AppendMethodFrame([]byte("prefix"), ch, m)
			if err != nil {
				t.Fatalf("%s: %v", m.MethodName(), err)
			}
			if string(frame[:6]) != "prefix" {
				t.Fatal("prefix clobbered")
			}
			r := NewReader(bytes.NewReader(frame[6:]), 1<<20)
			f, err := r.ReadFrame()
			if err != nil {
				t.Fatalf("%s: ReadFrame: %v", m.MethodName(), err)
			}
			if f.Type != FrameMethod || f.Channel != ch {
				t.Fatalf("%s: frame %d ch %d", m.MethodName(), f.Type, f.Channel)
			}
			got, err := d.DecodeMethod(f.Payload)
			if err != nil {
				t.Fatalf("%s: DecodeMethod: %v", m.MethodName(), err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("%s: round trip\n got %#v\nwant %#v", m.MethodName(), got, m)
			}
			re, err := AppendMethodFrame(nil, ch, got)
			if err != nil || !bytes.Equal(re, frame[6:]) {
				t.Fatalf("%s: re-encode differs (%v)", m.MethodName(), err)
			}
			// Truncations are syntax errors, never panics.
			for n := 4; n < len(f.Payload); n++ {
				_, err := d.DecodeMethod(f.Payload[:n])
				var we *Error
				if !errors.As(err, &we) || we.Code != SyntaxError || we.ClassID != id[0] || we.MethodID != id[1] {
					t.Fatalf("%s truncated to %d: err %v", m.MethodName(), n, err)
				}
			}
			// Trailing garbage is rejected.
			if _, err := d.DecodeMethod(append(bytes.Clone(f.Payload), 0)); err == nil {
				t.Fatalf("%s: trailing byte accepted", m.MethodName())
			}
		}
	}
}

func TestMethodKnownBytes(t *testing.T) {
	m := &BasicPublish{Exchange: "ex", RoutingKey: "rk", Mandatory: true, Immediate: false}
	b, err := AppendMethodFrame(nil, 3, m)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{1, 0, 3, 0, 0, 0, 13, 0, 60, 0, 40, 0, 0, 2, 'e', 'x', 2, 'r', 'k', 1, 0xCE}
	if !bytes.Equal(b, want) {
		t.Fatalf("got % x\nwant % x", b, want)
	}
	// queue.declare bits: passive durable exclusive auto-delete no-wait → one octet.
	q := &QueueDeclare{Queue: "q", Durable: true, AutoDelete: true}
	args, _ := q.AppendArgs(nil)
	wantArgs := []byte{0, 0, 1, 'q', 0b01010, 0, 0, 0, 0}
	if !bytes.Equal(args, wantArgs) {
		t.Fatalf("queue.declare args % x, want % x", args, wantArgs)
	}
	nack := &BasicNack{DeliveryTag: 7, Multiple: false, Requeue: true}
	args, _ = nack.AppendArgs(nil)
	if !bytes.Equal(args, []byte{0, 0, 0, 0, 0, 0, 0, 7, 0b10}) {
		t.Fatalf("basic.nack args % x", args)
	}
}

func TestDecodeMethodErrors(t *testing.T) {
	d := NewDecoder()
	var e *Error
	_, err := d.DecodeMethod([]byte{0, 60, 0})
	if !errors.As(err, &e) || e.Code != FrameError {
		t.Errorf("short payload: %v", err)
	}
	_, err = d.DecodeMethod([]byte{0, 60, 0, 99})
	if !errors.As(err, &e) || e.Code != CommandInvalid || e.Text != "COMMAND_INVALID - unknown method class 60 method 99" {
		t.Errorf("unknown method: %v", err)
	}
	_, err = d.DecodeMethod([]byte{0, 61, 0, 10})
	if !errors.As(err, &e) || e.Code != CommandInvalid {
		t.Errorf("unknown class: %v", err)
	}
	// basic.publish whose exchange shortstr claims more bytes than present.
	_, err = d.DecodeMethod([]byte{0, 60, 0, 40, 0, 0, 200, 'a'})
	if !errors.As(err, &e) || e.Code != SyntaxError || e.ClassID != 60 || e.MethodID != 40 || !strings.HasPrefix(e.Text, "SYNTAX_ERROR - ") {
		t.Errorf("truncated shortstr: %v", err)
	}
	// queue.declare with a 4 GiB arguments table claim.
	_, err = d.DecodeMethod([]byte{0, 50, 0, 10, 0, 0, 1, 'q', 0, 0xFF, 0xFF, 0xFF, 0xFF})
	if !errors.As(err, &e) || e.Code != SyntaxError {
		t.Errorf("huge table: %v", err)
	}
	// connection.start-ok with a 4 GiB longstr claim.
	_, err = d.DecodeMethod([]byte{0, 10, 0, 11, 0, 0, 0, 0, 5, 'P', 'L', 'A', 'I', 'N', 0xFF, 0xFF, 0xFF, 0xFF, 0})
	if !errors.As(err, &e) || e.Code != SyntaxError {
		t.Errorf("huge longstr: %v", err)
	}
}

func TestAppendArgsErrors(t *testing.T) {
	long := strings.Repeat("x", 256)
	b := []byte("keep")
	out, err := AppendMethodFrame(b, 1, &BasicPublish{Exchange: "ok", RoutingKey: long})
	if err == nil || string(out) != "keep" {
		t.Fatalf("shortstr 256: %v %q", err, out)
	}
	out, err = AppendMethodFrame(b, 1, &QueueDeclare{Queue: "q", Arguments: Table{"x": struct{}{}}})
	if err == nil || string(out) != "keep" {
		t.Fatalf("bad table: %v %q", err, out)
	}
	if _, err := AppendMethodFrame(nil, 1, &BasicPublish{RoutingKey: long[:255]}); err != nil {
		t.Fatalf("shortstr 255: %v", err)
	}
}

func TestHotMethodReuseAndNoAlias(t *testing.T) {
	d := NewDecoder()
	p1, _ := AppendMethodFrame(nil, 1, &BasicPublish{Exchange: "e1", RoutingKey: "k1"})
	p2, _ := AppendMethodFrame(nil, 1, &BasicPublish{Exchange: "e2", RoutingKey: "k2"})
	m1, err := d.DecodeMethod(p1[7 : len(p1)-1])
	if err != nil {
		t.Fatal(err)
	}
	ex := m1.(*BasicPublish).Exchange
	m2, _ := d.DecodeMethod(p2[7 : len(p2)-1])
	if m1 != m2 {
		t.Error("hot method not reused")
	}
	if ex != "e1" || m2.(*BasicPublish).Exchange != "e2" {
		t.Error("wrong values")
	}
	// Strings must not alias the payload.
	payload := bytes.Clone(p1[7 : len(p1)-1])
	m, _ := d.DecodeMethod(payload)
	for i := range payload {
		payload[i] = 'Z'
	}
	if m.(*BasicPublish).Exchange != "e1" || m.(*BasicPublish).RoutingKey != "k1" {
		t.Error("decoded strings alias the payload")
	}
	// Non-hot methods are fresh each time.
	c, _ := AppendMethodFrame(nil, 1, &BasicConsume{Queue: "q"})
	a, _ := d.DecodeMethod(c[7 : len(c)-1])
	b, _ := d.DecodeMethod(c[7 : len(c)-1])
	if a == b {
		t.Error("non-hot method reused")
	}
}

func TestInternBounded(t *testing.T) {
	d := NewDecoder()
	for i := 0; i < 3*maxInternEntries; i++ {
		d.intern([]byte(strings.Repeat("k", i%50) + string(rune('a'+i%26)) + time.Duration(i).String()))
		if len(d.strs) > maxInternEntries {
			t.Fatalf("intern table has %d entries", len(d.strs))
		}
	}
	long := bytes.Repeat([]byte("y"), maxInternLen+1)
	n := len(d.strs)
	if d.intern(long) != string(long) || len(d.strs) != n {
		t.Error("long strings must not be interned")
	}
}
