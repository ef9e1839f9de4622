package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// apiError is an error answer from the management API. RabbitMQ's body is
// {"error": ..., "reason": ...}; the reason is what the user is shown.
type apiError struct {
	status int
	reason string
}

func (e *apiError) Error() string { return e.reason }

// apiURL returns the URL of the API path made of segments under the base
// URL's path. Each segment is escaped with url.PathEscape, so the vhost "/"
// travels as %2F; RawPath keeps it that way on the wire (a plain Path would
// be sent as "/api/queues///q").
func (c *cli) apiURL(query url.Values, segments ...string) (*url.URL, error) {
	base, err := url.Parse(c.url)
	if err != nil {
		return nil, usagef("bad --url %q: %v", c.url, err)
	}
	if base.Scheme != "http" && base.Scheme != "https" || base.Host == "" {
		return nil, usagef("bad --url %q: want http://host:port", c.url)
	}
	escaped := make([]string, len(segments))
	for i, s := range segments {
		escaped[i] = url.PathEscape(s)
	}
	raw := strings.TrimSuffix(base.EscapedPath(), "/") + "/api/" + strings.Join(escaped, "/")
	path, err := url.PathUnescape(raw)
	if err != nil {
		return nil, usagef("bad --url %q: %v", c.url, err)
	}
	u := *base
	u.Path, u.RawPath = path, raw
	u.RawQuery = query.Encode()
	u.Fragment, u.RawFragment = "", ""
	return &u, nil
}

// do sends one request to the API. body, if not nil, is sent as JSON (a
// []byte is sent as is). If out is not nil, a 2xx answer's JSON body is
// decoded into it, with numbers kept as json.Number.
func (c *cli) do(method string, u *url.URL, header http.Header, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, ok := body.([]byte)
		if !ok {
			var err error
			if b, err = json.Marshal(body); err != nil {
				return err
			}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u.String(), rd)
	if err != nil {
		return err
	}
	// NewRequest re-parses the string; set the URL itself so the escaped
	// path is exactly ours.
	req.URL = u
	req.SetBasicAuth(c.user, c.password)
	// No Accept header: RabbitMQ answers 406 to "Accept: application/json"
	// on DELETE /api/queues/VHOST/NAME/contents.
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: reading answer: %w", method, u.Redacted(), err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return answerError(resp, data)
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("%s %s: bad JSON in answer: %w", method, u.Redacted(), err)
	}
	return nil
}

func answerError(resp *http.Response, data []byte) error {
	var e struct {
		Error  any `json:"error"`
		Reason any `json:"reason"`
	}
	if json.Unmarshal(data, &e) == nil {
		for _, v := range []any{e.Reason, e.Error} {
			switch v := v.(type) {
			case string:
				if v != "" {
					return &apiError{resp.StatusCode, v}
				}
			case nil:
			default:
				b, _ := json.Marshal(v)
				return &apiError{resp.StatusCode, string(b)}
			}
		}
	}
	msg := resp.Status
	if text := strings.TrimSpace(string(data)); text != "" && len(text) < 500 {
		msg += ": " + text
	}
	return &apiError{resp.StatusCode, msg}
}

// get fetches JSON from the API path made of segments.
func (c *cli) get(out any, segments ...string) error {
	u, err := c.apiURL(nil, segments...)
	if err != nil {
		return err
	}
	return c.do(http.MethodGet, u, nil, nil, out)
}

// send sends body (JSON) with method to the API path made of segments and
// decodes the answer into out if it is not nil.
func (c *cli) send(method string, body, out any, segments ...string) error {
	u, err := c.apiURL(nil, segments...)
	if err != nil {
		return err
	}
	return c.do(method, u, nil, body, out)
}
