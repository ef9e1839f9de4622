package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// column is one output column: the name the user asked for and how to get
// its value from an API object.
type column struct {
	name string
	// path is the dotted path into the object (name, unless aliased).
	path string
	// constant, if set, is the value for every row (rabbitmqctl's
	// source_kind, which the API does not carry: it is always "exchange").
	constant any
}

// columns resolves the column names asked for (or defaults) through a
// command's aliases (rabbitmqctl names for API fields).
func columns(names, defaults []string, aliases map[string]column) []column {
	if len(names) == 0 {
		names = defaults
	}
	cols := make([]column, len(names))
	for i, n := range names {
		if a, ok := aliases[n]; ok {
			a.name = n
			cols[i] = a
		} else {
			cols[i] = column{name: n, path: n}
		}
	}
	return cols
}

// lookup returns the value at a dotted path in v, trying the longest key
// first so a key that itself contains dots is still found. Array elements
// are reached by index ("consumer_details.0.consumer_tag").
func lookup(v any, path string) (any, bool) {
	switch x := v.(type) {
	case map[string]any:
		if val, ok := x[path]; ok {
			return val, true
		}
		for i := strings.LastIndexByte(path, '.'); i > 0; i = strings.LastIndexByte(path[:i], '.') {
			if val, ok := x[path[:i]]; ok {
				if r, ok := lookup(val, path[i+1:]); ok {
					return r, true
				}
			}
		}
	case []any:
		head, tail, _ := strings.Cut(path, ".")
		n, err := strconv.Atoi(head)
		if err != nil || n < 0 || n >= len(x) {
			return nil, false
		}
		if tail == "" {
			return x[n], true
		}
		return lookup(x[n], tail)
	}
	return nil, false
}

func (col column) value(obj any) (any, bool) {
	if col.constant != nil {
		return col.constant, true
	}
	return lookup(obj, col.path)
}

var cellEscaper = strings.NewReplacer("\t", `\t`, "\n", `\n`, "\r", `\r`)

// cell formats a value for the table: strings as they are, numbers and
// booleans as JSON writes them, objects and arrays as compact JSON, and a
// missing value or null as nothing.
func cell(v any, ok bool) string {
	if !ok || v == nil {
		return ""
	}
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case json.Number:
		s = x.String()
	case bool:
		s = strconv.FormatBool(x)
	default:
		b, err := json.Marshal(x)
		if err != nil {
			s = fmt.Sprint(x)
		} else {
			s = string(b)
		}
	}
	return cellEscaper.Replace(s)
}

// output prints rows as a table (a header of column names, then aligned
// rows) or, with --json, as a JSON array of objects holding the columns in
// order; a missing value is null.
func (c *cli) output(rows []any, cols []column) error {
	if c.json {
		return writeJSONRows(c.stdout, rows, cols)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
	for i, col := range cols {
		if i > 0 {
			fmt.Fprint(tw, "\t")
		}
		fmt.Fprint(tw, cellEscaper.Replace(col.name))
	}
	fmt.Fprintln(tw)
	for _, row := range rows {
		for i, col := range cols {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, cell(col.value(row)))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func writeJSONRows(w io.Writer, rows []any, cols []column) error {
	var buf bytes.Buffer
	buf.WriteString("[")
	for i, row := range rows {
		if i > 0 {
			buf.WriteString(",")
		}
		buf.WriteString("\n  {")
		for j, col := range cols {
			if j > 0 {
				buf.WriteString(", ")
			}
			k, _ := json.Marshal(col.name)
			buf.Write(k)
			buf.WriteString(": ")
			v, _ := col.value(row)
			b, err := json.Marshal(v)
			if err != nil {
				return err
			}
			buf.Write(b)
		}
		buf.WriteString("}")
	}
	if len(rows) > 0 {
		buf.WriteString("\n")
	}
	buf.WriteString("]\n")
	_, err := w.Write(buf.Bytes())
	return err
}
