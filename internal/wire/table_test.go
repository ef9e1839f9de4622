package wire

import (
	"bytes"
	"encoding/binary"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func allTypesTable() Table {
	return Table{
		"bool":    true,
		"int8":    int8(-8),
		"uint8":   uint8(200),
		"int16":   int16(-1600),
		"uint16":  uint16(60000),
		"int32":   int32(-320000),
		"uint32":  uint32(4000000000),
		"int64":   int64(-1 << 40),
		"float32": float32(3.25),
		"float64": float64(-2.5e300),
		"decimal": Decimal{Scale: 2, Value: -12345},
		"string":  "héllo",
		"bytes":   []byte{0, 1, 2, 0xFF},
		"array":   []any{int32(1), "two", []any{true, nil}, Table{"in": "array"}},
		"time":    time.Unix(1700000000, 0).UTC(),
		"table":   Table{"nested": Table{"deeper": int64(3)}, "empty": []any{}},
		"void":    nil,
	}
}

func TestTableRoundTrip(t *testing.T) {
	in := allTypesTable()
	b, err := AppendTable([]byte{0xAA}, in)
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, 0xBB)
	out, rest, err := ReadTable(b[1:])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rest, []byte{0xBB}) {
		t.Fatalf("rest = % x", rest)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("got %#v\nwant %#v", out, in)
	}
	if !TablesEqual(in, out) {
		t.Fatal("TablesEqual false")
	}
	// Deterministic, byte-identical re-encoding.
	b2, _ := AppendTable(nil, out)
	if !bytes.Equal(b2, b[1:len(b)-1]) {
		t.Fatal("re-encoding differs")
	}
	if n, err := skipTable(b[1:], 0); err != nil || n != len(b)-2 {
		t.Fatalf("skipTable = %d, %v", n, err)
	}
}

func TestTableEncodingDetails(t *testing.T) {
	for _, tb := range []Table{nil, {}} {
		b, err := AppendTable(nil, tb)
		if err != nil || !bytes.Equal(b, []byte{0, 0, 0, 0}) {
			t.Fatalf("empty table: % x %v", b, err)
		}
	}
	b, _ := AppendTable(nil, Table{"b": int(-2), "a": uint64(5)})
	want := []byte{0, 0, 0, 22, 1, 'a', 'l', 0, 0, 0, 0, 0, 0, 0, 5, 1, 'b', 'l', 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE}
	if !bytes.Equal(b, want) {
		t.Fatalf("got % x\nwant % x", b, want)
	}
	for _, bad := range []Table{
		{"u": uint64(math.MaxUint64)},
		{"x": struct{}{}},
		{"f": func() {}},
		{"m": map[string]any{}},
		{strings.Repeat("k", 256): 1},
		{"n": Table{"deep": []any{uint(1)}}},
	} {
		out, err := AppendTable([]byte("keep"), bad)
		if err == nil || string(out) != "keep" {
			t.Errorf("%v: err %v out %q", bad, err, out)
		}
	}
	// A self-referencing table must fail, not recurse forever.
	loop := Table{}
	loop["self"] = loop
	if _, err := AppendTable(nil, loop); err == nil {
		t.Error("self-referencing table encoded")
	}
}

func TestReadTableRejects(t *testing.T) {
	good, _ := AppendTable(nil, allTypesTable())
	for n := 0; n < len(good); n++ {
		// Truncated input with the original (now too large) length.
		if _, _, err := ReadTable(good[:n]); err == nil {
			t.Fatalf("truncated to %d accepted", n)
		}
		// Consistent outer length but truncated content.
		if n >= 4 {
			c := bytes.Clone(good[:n])
			binary.BigEndian.PutUint32(c, uint32(n-4))
			_, _, err1 := ReadTable(c)
			_, err2 := skipTable(c, 0)
			if (err1 == nil) != (err2 == nil) {
				t.Fatalf("ReadTable and skipTable disagree at %d: %v / %v", n, err1, err2)
			}
		}
	}
	cases := map[string][]byte{
		"4GiB longstr claim":   {0, 0, 0, 8, 1, 'k', 'S', 0xFF, 0xFF, 0xFF, 0xFF, 0},
		"4GiB bytes claim":     {0, 0, 0, 8, 1, 'k', 'x', 0xFF, 0xFF, 0xFF, 0xFF, 0},
		"4GiB table claim":     {0xFF, 0xFF, 0xFF, 0xFF, 0},
		"4GiB array claim":     {0, 0, 0, 8, 1, 'k', 'A', 0xFF, 0xFF, 0xFF, 0xFF, 0},
		"key past end":         {0, 0, 0, 2, 5, 'k'},
		"missing value":        {0, 0, 0, 2, 1, 'k'},
		"truncated int32":      {0, 0, 0, 5, 1, 'k', 'I', 0, 0},
		"truncated decimal":    {0, 0, 0, 7, 1, 'k', 'D', 1, 0, 0, 0},
		"unknown type":         {0, 0, 0, 3, 1, 'k', 'Q'},
		"short length":         {0, 0, 0},
		"nested length past":   {0, 0, 0, 8, 1, 'k', 'F', 0, 0, 0, 9, 0},
		"string past inner":    {0, 0, 0, 9, 1, 'k', 'S', 0, 0, 0, 3, 'a', 'b', 'c', 'd'},
		"lowercase 'v' is bad": {0, 0, 0, 3, 1, 'k', 'v'},
	}
	for name, b := range cases {
		if _, _, err := ReadTable(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if _, err := skipTable(b, 0); err == nil {
			t.Errorf("%s: skipTable accepted", name)
		}
	}
}

// depthBomb builds a table nesting n tables (or n arrays) around an empty one.
func depthBomb(n int, array bool) []byte {
	var b []byte
	if array {
		b = binary.BigEndian.AppendUint32(b, uint32(7+5*n))
		b = append(b, 1, 'k', 'A')
		for j := n; j >= 1; j-- {
			b = binary.BigEndian.AppendUint32(b, uint32(5*j))
			b = append(b, 'A')
		}
		return binary.BigEndian.AppendUint32(b, 0)
	}
	for i := n; i >= 1; i-- {
		b = binary.BigEndian.AppendUint32(b, uint32(7*i))
		b = append(b, 1, 'k', 'F')
	}
	return binary.BigEndian.AppendUint32(b, 0)
}

func TestTableDepthBomb(t *testing.T) {
	for _, array := range []bool{false, true} {
		ok := depthBomb(MaxTableDepth-2, array)
		if _, _, err := ReadTable(ok); err != nil {
			t.Fatalf("array=%v depth %d rejected: %v", array, MaxTableDepth-2, err)
		}
		bomb := depthBomb(100000, array)
		if _, _, err := ReadTable(bomb); err == nil {
			t.Fatalf("array=%v depth bomb accepted", array)
		}
		if _, err := skipTable(bomb, 0); err == nil {
			t.Fatalf("array=%v depth bomb accepted by skipTable", array)
		}
	}
	// Encoding is capped too.
	tb := Table{}
	for i := 0; i < MaxTableDepth+5; i++ {
		tb = Table{"k": tb}
	}
	if _, err := AppendTable(nil, tb); err == nil {
		t.Fatal("deep table encoded")
	}
}

func TestTablesEqual(t *testing.T) {
	a := allTypesTable()
	b := allTypesTable()
	if !TablesEqual(a, b) || !TablesEqual(nil, Table{}) || !TablesEqual(Table{"x": Table{}}, Table{"x": Table(nil)}) {
		t.Fatal("equal tables reported different")
	}
	b["table"].(Table)["nested"].(Table)["deeper"] = int32(3) // same number, other type
	if TablesEqual(a, b) {
		t.Fatal("type-unaware comparison")
	}
	for _, c := range []struct{ x, y Table }{
		{Table{"a": 1}, Table{"b": 1}},
		{Table{"a": "1"}, Table{"a": []byte("1")}},
		{Table{"a": []any{1}}, Table{"a": []any{1, 2}}},
		{Table{"a": nil}, Table{"a": false}},
		{Table{"a": time.Unix(1, 0)}, Table{"a": time.Unix(2, 0)}},
		{Table{"a": Decimal{1, 2}}, Table{"a": Decimal{2, 2}}},
	} {
		if TablesEqual(c.x, c.y) {
			t.Errorf("%v == %v", c.x, c.y)
		}
	}
	if !TablesEqual(Table{"f": math.NaN(), "t": time.Unix(5, 0)}, Table{"f": math.NaN(), "t": time.Unix(5, 0).UTC()}) {
		t.Error("NaN / time")
	}
}

func TestTablesEqualIntNormalisation(t *testing.T) {
	if !TablesEqual(Table{"a": 5}, Table{"a": int64(5)}) || !TablesEqual(Table{"a": uint64(5)}, Table{"a": 5}) {
		t.Error("int / uint64 / int64 should compare as encoded")
	}
	if TablesEqual(Table{"a": 5}, Table{"a": int32(5)}) {
		t.Error("int vs int32")
	}
}

func TestAppendTableSmallAllocs(t *testing.T) {
	tb := Table{"x-max-length": int64(10), "x-queue-type": "classic", "x-message-ttl": int32(1000)}
	buf := make([]byte, 0, 512)
	if n := testing.AllocsPerRun(100, func() { buf, _ = AppendTable(buf[:0], tb) }); n != 0 {
		t.Errorf("AppendTable: %v allocs/op", n)
	}
}
