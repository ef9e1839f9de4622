// Command gen generates internal/wire/methods_gen.go from the AMQP 0-9-1
// specification XML shipped with github.com/rabbitmq/amqp091-go
// (spec/amqp0-9-1.stripped.extended.xml).
//
// It is run by `go generate ./internal/wire/`. With no flags it locates the
// spec through `go list -m` and writes methods_gen.go in the current
// directory. The output is gofmt-ed and deterministic.
package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"go/format"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

const (
	specModule = "github.com/rabbitmq/amqp091-go"
	specFile   = "amqp0-9-1.stripped.extended.xml"
)

func main() {
	specPath := flag.String("spec", "", "path to the AMQP 0-9-1 XML (default: located in the "+specModule+" module)")
	out := flag.String("o", "methods_gen.go", "output file")
	flag.Parse()

	if err := run(*specPath, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(specPath, out string) error {
	if specPath == "" {
		dir, err := moduleDir(specModule)
		if err != nil {
			return err
		}
		specPath = filepath.Join(dir, "spec", specFile)
	}
	src, err := os.ReadFile(specPath)
	if err != nil {
		return err
	}
	code, err := generate(src, filepath.Base(specPath))
	if err != nil {
		return err
	}
	return os.WriteFile(out, code, 0o644)
}

func moduleDir(mod string) (string, error) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", mod)
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("locating module %s: %w", mod, err)
	}
	dir := strings.TrimSpace(string(b))
	if dir == "" {
		return "", fmt.Errorf("module %s has no directory (not downloaded?)", mod)
	}
	return dir, nil
}

// ---- XML model ----

type xmlSpec struct {
	XMLName   xml.Name      `xml:"amqp"`
	Constants []xmlConstant `xml:"constant"`
	Domains   []xmlDomain   `xml:"domain"`
	Classes   []xmlClass    `xml:"class"`
}

type xmlConstant struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
	Class string `xml:"class,attr"`
}

type xmlDomain struct {
	Name string `xml:"name,attr"`
	Type string `xml:"type,attr"`
}

type xmlClass struct {
	Name    string      `xml:"name,attr"`
	Index   string      `xml:"index,attr"`
	Methods []xmlMethod `xml:"method"`
}

type xmlChassis struct {
	Name string `xml:"name,attr"`
}

type xmlMethod struct {
	Name        string       `xml:"name,attr"`
	Index       string       `xml:"index,attr"`
	Synchronous string       `xml:"synchronous,attr"`
	Content     string       `xml:"content,attr"`
	Deprecated  string       `xml:"deprecated,attr"`
	Chassis     []xmlChassis `xml:"chassis"`
	Fields      []xmlField   `xml:"field"`
}

type xmlField struct {
	Name     string `xml:"name,attr"`
	Domain   string `xml:"domain,attr"`
	Type     string `xml:"type,attr"`
	Reserved string `xml:"reserved,attr"`
}

// ---- resolved model ----

type constant struct {
	GoName string
	Name   string
	Value  int
	Class  string
}

type class struct {
	GoName  string
	Name    string
	Index   int
	Methods []*method
}

type method struct {
	Class       *class
	GoName      string
	Name        string // "basic.publish"
	Index       int
	Synchronous bool
	Content     bool
	Server      bool
	Deprecated  bool
	Fields      []*field
}

type field struct {
	GoName   string
	Name     string
	Type     string // AMQP primitive type
	Reserved bool
}

// hotMethods are decoded into a per-Decoder reusable struct.
var hotMethods = map[string]bool{
	"basic.publish": true,
	"basic.ack":     true,
	"basic.nack":    true,
	"basic.reject":  true,
}

// fieldRenames maps XML field names whose mechanical Go name would be
// wrong or would clash with a Method interface method.
var fieldRenames = map[string]string{
	"nowait":    "NoWait",
	"class-id":  "FailingClassID",  // ClassID is a Method interface method
	"method-id": "FailingMethodID", // MethodID is a Method interface method
}

var goTypes = map[string]string{
	"octet":     "uint8",
	"short":     "uint16",
	"long":      "uint32",
	"longlong":  "uint64",
	"bit":       "bool",
	"shortstr":  "string",
	"longstr":   "string",
	"table":     "Table",
	"timestamp": "time.Time",
}

// camel turns "start-ok" into "StartOk" and "class-id" into "ClassID".
func camel(s string) string {
	var b strings.Builder
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == '-' || r == '_' || r == ' ' }) {
		if part == "id" {
			b.WriteString("ID")
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]))
		b.WriteString(part[1:])
	}
	return b.String()
}

func parseSpec(src []byte) (*xmlSpec, []string, error) {
	var spec xmlSpec
	if err := xml.Unmarshal(src, &spec); err != nil {
		return nil, nil, fmt.Errorf("parsing spec XML: %w", err)
	}
	// Collect the top-level comments (modification note and licence) that
	// precede the <amqp> element.
	var comments []string
	dec := xml.NewDecoder(bytes.NewReader(src))
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("scanning spec XML: %w", err)
		}
		if c, ok := tok.(xml.Comment); ok {
			comments = append(comments, string(c))
		}
		if _, ok := tok.(xml.StartElement); ok {
			break
		}
	}
	return &spec, comments, nil
}

func resolve(spec *xmlSpec) ([]constant, []*class, error) {
	var consts []constant
	for _, c := range spec.Constants {
		v, err := strconv.Atoi(c.Value)
		if err != nil {
			return nil, nil, fmt.Errorf("constant %s: %w", c.Name, err)
		}
		consts = append(consts, constant{GoName: camel(c.Name), Name: c.Name, Value: v, Class: c.Class})
	}

	domains := map[string]string{}
	for _, d := range spec.Domains {
		domains[d.Name] = d.Type
	}

	var classes []*class
	for _, xc := range spec.Classes {
		ci, err := strconv.Atoi(xc.Index)
		if err != nil {
			return nil, nil, fmt.Errorf("class %s index: %w", xc.Name, err)
		}
		c := &class{GoName: camel(xc.Name), Name: xc.Name, Index: ci}
		for _, xm := range xc.Methods {
			mi, err := strconv.Atoi(xm.Index)
			if err != nil {
				return nil, nil, fmt.Errorf("method %s.%s index: %w", xc.Name, xm.Name, err)
			}
			m := &method{
				Class:       c,
				GoName:      c.GoName + camel(xm.Name),
				Name:        xc.Name + "." + xm.Name,
				Index:       mi,
				Synchronous: xm.Synchronous == "1",
				Content:     xm.Content == "1",
				Deprecated:  xm.Deprecated == "1",
			}
			for _, ch := range xm.Chassis {
				if ch.Name == "server" {
					m.Server = true
				}
			}
			seen := map[string]bool{}
			for _, xf := range xm.Fields {
				typ := xf.Type
				if typ == "" {
					t, ok := domains[xf.Domain]
					if !ok {
						return nil, nil, fmt.Errorf("%s field %s: unknown domain %q", m.Name, xf.Name, xf.Domain)
					}
					typ = t
				}
				if _, ok := goTypes[typ]; !ok {
					return nil, nil, fmt.Errorf("%s field %s: unsupported type %q", m.Name, xf.Name, typ)
				}
				name := camel(xf.Name)
				if r, ok := fieldRenames[xf.Name]; ok {
					name = r
				}
				if seen[name] {
					return nil, nil, fmt.Errorf("%s: duplicate field %s", m.Name, name)
				}
				seen[name] = true
				m.Fields = append(m.Fields, &field{GoName: name, Name: xf.Name, Type: typ, Reserved: xf.Reserved == "1"})
			}
			c.Methods = append(c.Methods, m)
		}
		sort.SliceStable(c.Methods, func(i, j int) bool { return c.Methods[i].Index < c.Methods[j].Index })
		for i := 1; i < len(c.Methods); i++ {
			if c.Methods[i].Index == c.Methods[i-1].Index {
				return nil, nil, fmt.Errorf("class %s: duplicate method index %d", c.Name, c.Methods[i].Index)
			}
		}
		classes = append(classes, c)
	}
	sort.SliceStable(classes, func(i, j int) bool { return classes[i].Index < classes[j].Index })
	for i := 1; i < len(classes); i++ {
		if classes[i].Index == classes[i-1].Index {
			return nil, nil, fmt.Errorf("duplicate class index %d", classes[i].Index)
		}
	}
	return consts, classes, nil
}

// ---- code generation ----

type gen struct {
	bytes.Buffer
}

func (g *gen) p(format string, args ...any) {
	fmt.Fprintf(&g.Buffer, format, args...)
	g.WriteByte('\n')
}

// generate produces the formatted Go source for the given spec XML.
func generate(src []byte, specName string) ([]byte, error) {
	spec, comments, err := parseSpec(src)
	if err != nil {
		return nil, err
	}
	consts, classes, err := resolve(spec)
	if err != nil {
		return nil, err
	}
	if len(classes) == 0 {
		return nil, errors.New("spec has no classes")
	}

	needTime := false
	for _, c := range classes {
		for _, m := range c.Methods {
			for _, f := range m.Fields {
				if f.Type == "timestamp" {
					needTime = true
				}
			}
		}
	}

	g := &gen{}
	g.p("// Code generated by internal/wire/gen from %s; DO NOT EDIT.", specName)
	g.p("")
	for i, c := range comments {
		if i > 0 {
			g.p("//")
		}
		writeComment(g, c)
	}
	if len(comments) > 0 {
		g.p("")
	}
	g.p("package wire")
	g.p("")
	if needTime {
		g.p("import \"time\"")
		g.p("")
	}

	genConstants(g, consts)
	genClasses(g, classes)
	for _, c := range classes {
		for _, m := range c.Methods {
			genMethod(g, m)
		}
	}
	genDispatch(g, classes)

	out, err := format.Source(g.Bytes())
	if err != nil {
		return nil, fmt.Errorf("formatting generated code: %w\n%s", err, g.Bytes())
	}
	return out, nil
}

// writeComment writes an XML comment as Go line comments, dropping
// leading/trailing blank lines and common indentation.
func writeComment(g *gen, c string) {
	lines := strings.Split(strings.ReplaceAll(c, "\r\n", "\n"), "\n")
	for len(lines) > 0 && strings.TrimSpace(lines[0]) == "" {
		lines = lines[1:]
	}
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	indent := -1
	for _, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		n := len(l) - len(strings.TrimLeft(l, " \t"))
		if indent < 0 || n < indent {
			indent = n
		}
	}
	for _, l := range lines {
		l = strings.TrimRight(l, " \t")
		if len(l) >= indent && indent > 0 {
			l = l[indent:]
		}
		if l == "" {
			g.p("//")
		} else {
			g.p("// %s", l)
		}
	}
}

func errorName(name string) string {
	return strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

func genConstants(g *gen, consts []constant) {
	g.p("// Protocol constants from the specification's <constant> elements:")
	g.p("// frame types and sizes, and reply codes.")
	g.p("const (")
	for _, c := range consts {
		if c.Class != "" {
			g.p("%s = %d // %s", c.GoName, c.Value, c.Class)
		} else {
			g.p("%s = %d", c.GoName, c.Value)
		}
	}
	g.p(")")
	g.p("")

	g.p("// IsHardError reports whether code is a reply code the specification")
	g.p("// classes as a hard error (one that closes the connection).")
	g.p("func IsHardError(code uint16) bool {")
	var hard []string
	for _, c := range consts {
		if c.Class == "hard-error" {
			hard = append(hard, c.GoName)
		}
	}
	if len(hard) > 0 {
		g.p("switch code {")
		g.p("case %s:", strings.Join(hard, ", "))
		g.p("return true")
		g.p("}")
	}
	g.p("return false")
	g.p("}")
	g.p("")

	g.p("// ReplyCodeName returns the RabbitMQ-style name of a reply code")
	g.p("// (\"NOT_FOUND\" for 404), or \"\" if code is not a known reply code.")
	g.p("func ReplyCodeName(code uint16) string {")
	g.p("switch code {")
	seen := map[int]bool{}
	for _, c := range consts {
		if c.Class == "" && !strings.HasPrefix(c.Name, "reply-") {
			continue
		}
		if seen[c.Value] {
			continue
		}
		seen[c.Value] = true
		g.p("case %s:", c.GoName)
		g.p("return %q", errorName(c.Name))
	}
	g.p("}")
	g.p("return \"\"")
	g.p("}")
	g.p("")
}

func genClasses(g *gen, classes []*class) {
	g.p("// Class identifiers.")
	g.p("const (")
	for _, c := range classes {
		g.p("Class%s = %d", c.GoName, c.Index)
	}
	g.p(")")
	g.p("")
}

// fieldGroup is either a single non-bit field or a run of up to 8
// consecutive bit fields packed into one octet.
type fieldGroup struct {
	bits   []*field
	single *field
}

func groups(fields []*field) []fieldGroup {
	var out []fieldGroup
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		if f.Type != "bit" {
			out = append(out, fieldGroup{single: f})
			continue
		}
		if n := len(out); n > 0 && out[n-1].single == nil && len(out[n-1].bits) < 8 && fields[i-1].Type == "bit" {
			out[n-1].bits = append(out[n-1].bits, f)
			continue
		}
		out = append(out, fieldGroup{bits: []*field{f}})
	}
	return out
}

func canFail(t string) bool {
	return t == "shortstr" || t == "longstr" || t == "table"
}

func genMethod(g *gen, m *method) {
	recv := "m"
	g.p("// %s is the AMQP method %s (class %d, method %d).", m.GoName, m.Name, m.Class.Index, m.Index)
	if m.Deprecated {
		g.p("//")
		g.p("// The specification marks %s as deprecated.", m.Name)
	}
	if hotMethods[m.Name] {
		g.p("//")
		g.p("// Decoder.DecodeMethod returns a reused *%s: it is only valid until", m.GoName)
		g.p("// the next DecodeMethod call on the same Decoder.")
	}
	g.p("type %s struct {", m.GoName)
	for _, f := range m.Fields {
		comment := f.Name + " (" + f.Type + ")"
		if f.Reserved {
			comment += ", reserved"
		}
		g.p("%s %s // %s", f.GoName, goTypes[f.Type], comment)
	}
	g.p("}")
	g.p("")

	g.p("// ClassID returns %d (%s).", m.Class.Index, m.Class.Name)
	g.p("func (*%s) ClassID() uint16 { return %d }", m.GoName, m.Class.Index)
	g.p("")
	g.p("// MethodID returns %d.", m.Index)
	g.p("func (*%s) MethodID() uint16 { return %d }", m.GoName, m.Index)
	g.p("")
	g.p("// MethodName returns %q.", m.Name)
	g.p("func (*%s) MethodName() string { return %q }", m.GoName, m.Name)
	g.p("")
	g.p("// Synchronous reports whether %s expects a response.", m.Name)
	g.p("func (*%s) Synchronous() bool { return %t }", m.GoName, m.Synchronous)
	g.p("")
	g.p("// HasContent reports whether %s is followed by a content header and body.", m.Name)
	g.p("func (*%s) HasContent() bool { return %t }", m.GoName, m.Content)
	g.p("")
	g.p("// ServerReceives reports whether a server may receive %s.", m.Name)
	g.p("func (*%s) ServerReceives() bool { return %t }", m.GoName, m.Server)
	g.p("")

	// AppendArgs
	fallible := false
	for _, f := range m.Fields {
		if canFail(f.Type) {
			fallible = true
		}
	}
	gs := groups(m.Fields)
	g.p("// AppendArgs appends the encoded arguments of %s to b.", m.Name)
	if len(m.Fields) == 0 {
		g.p("func (*%s) AppendArgs(b []byte) ([]byte, error) {", m.GoName)
		g.p("return b, nil")
		g.p("}")
	} else {
		g.p("func (%s *%s) AppendArgs(b []byte) ([]byte, error) {", recv, m.GoName)
		if fallible {
			g.p("n := len(b)")
			g.p("var err error")
		}
		for _, grp := range gs {
			if grp.single != nil {
				f := grp.single
				switch f.Type {
				case "octet":
					g.p("b = append(b, %s.%s)", recv, f.GoName)
				case "short":
					g.p("b = appendUint16(b, %s.%s)", recv, f.GoName)
				case "long":
					g.p("b = appendUint32(b, %s.%s)", recv, f.GoName)
				case "longlong":
					g.p("b = appendUint64(b, %s.%s)", recv, f.GoName)
				case "timestamp":
					g.p("b = appendTimestamp(b, %s.%s)", recv, f.GoName)
				case "shortstr", "longstr", "table":
					fn := map[string]string{"shortstr": "appendShortstr", "longstr": "appendLongstr", "table": "AppendTable"}[f.Type]
					g.p("if b, err = %s(b, %s.%s); err != nil {", fn, recv, f.GoName)
					g.p("return b[:n], argError(%q, %q, err)", m.Name, f.Name)
					g.p("}")
				}
				continue
			}
			g.p("{")
			g.p("var bits uint8")
			for i, f := range grp.bits {
				g.p("if %s.%s {", recv, f.GoName)
				g.p("bits |= 1 << %d", i)
				g.p("}")
			}
			g.p("b = append(b, bits)")
			g.p("}")
		}
		g.p("return b, nil")
		g.p("}")
	}
	g.p("")

	// decodeArgs
	if len(m.Fields) == 0 {
		g.p("func (*%s) decodeArgs(_ *Decoder, b []byte) error {", m.GoName)
		g.p("return noArgs(b)")
		g.p("}")
		g.p("")
		return
	}
	usesDecoder := false
	for _, f := range m.Fields {
		if f.Type == "shortstr" {
			usesDecoder = true
		}
	}
	dname := "d"
	if !usesDecoder {
		dname = "_"
	}
	g.p("func (%s *%s) decodeArgs(%s *Decoder, b []byte) error {", recv, m.GoName, dname)
	g.p("c := cursor{b: b}")
	for _, grp := range gs {
		if grp.single != nil {
			f := grp.single
			switch f.Type {
			case "octet":
				g.p("%s.%s = c.octet()", recv, f.GoName)
			case "short":
				g.p("%s.%s = c.uint16()", recv, f.GoName)
			case "long":
				g.p("%s.%s = c.uint32()", recv, f.GoName)
			case "longlong":
				g.p("%s.%s = c.uint64()", recv, f.GoName)
			case "timestamp":
				g.p("%s.%s = c.timestamp()", recv, f.GoName)
			case "shortstr":
				g.p("%s.%s = c.shortstr(d)", recv, f.GoName)
			case "longstr":
				g.p("%s.%s = c.longstr()", recv, f.GoName)
			case "table":
				g.p("%s.%s = c.table()", recv, f.GoName)
			}
			continue
		}
		g.p("{")
		g.p("bits := c.octet()")
		for i, f := range grp.bits {
			g.p("%s.%s = bits&(1<<%d) != 0", recv, f.GoName, i)
		}
		g.p("}")
	}
	g.p("return c.done()")
	g.p("}")
	g.p("")
}

func genDispatch(g *gen, classes []*class) {
	var hot []*method
	for _, c := range classes {
		for _, m := range c.Methods {
			if hotMethods[m.Name] {
				hot = append(hot, m)
			}
		}
	}
	lowerFirst := func(s string) string { return strings.ToLower(s[:1]) + s[1:] }

	g.p("// hotMethods holds one reusable value of each frequently received")
	g.p("// method; a Decoder holds one so decoding them does not allocate.")
	g.p("type hotMethods struct {")
	for _, m := range hot {
		g.p("%s %s", lowerFirst(m.GoName), m.GoName)
	}
	g.p("}")
	g.p("")

	g.p("// method returns the value to decode class/method into: a reused")
	g.p("// value for hot methods, a new one otherwise, nil if unknown.")
	g.p("func (h *hotMethods) method(classID, methodID uint16) Method {")
	g.p("switch classID {")
	for _, c := range classes {
		if len(c.Methods) == 0 {
			continue
		}
		g.p("case %d: // %s", c.Index, c.Name)
		g.p("switch methodID {")
		for _, m := range c.Methods {
			g.p("case %d:", m.Index)
			if hotMethods[m.Name] {
				g.p("return &h.%s", lowerFirst(m.GoName))
			} else {
				g.p("return new(%s)", m.GoName)
			}
		}
		g.p("}")
	}
	g.p("}")
	g.p("return nil")
	g.p("}")
	g.p("")

	g.p("// newMethod returns a new zero value of the method, or nil if unknown.")
	g.p("func newMethod(classID, methodID uint16) Method {")
	g.p("switch classID {")
	for _, c := range classes {
		if len(c.Methods) == 0 {
			continue
		}
		g.p("case %d: // %s", c.Index, c.Name)
		g.p("switch methodID {")
		for _, m := range c.Methods {
			g.p("case %d:", m.Index)
			g.p("return new(%s)", m.GoName)
		}
		g.p("}")
	}
	g.p("}")
	g.p("return nil")
	g.p("}")
	g.p("")

	g.p("// methodIDs lists every (class-id, method-id) pair of the specification.")
	g.p("var methodIDs = [...][2]uint16{")
	for _, c := range classes {
		for _, m := range c.Methods {
			g.p("{%d, %d}, // %s", c.Index, m.Index, m.Name)
		}
	}
	g.p("}")
}
