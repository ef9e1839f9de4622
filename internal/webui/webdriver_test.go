package webui_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A minimal W3C WebDriver client (https://www.w3.org/TR/webdriver2/) for
// chromedriver: just what the web UI test needs, over net/http and
// encoding/json.

const (
	chromedriverPath = "/usr/bin/chromedriver"
	chromiumPath     = "/usr/bin/chromium"

	// elementKey is the JSON key of a web element reference (§12.1).
	elementKey = "element-6066-11e4-a52e-4f735466cecf"

	// waitTimeout bounds every wait for the page; it is a deadline, not an
	// expected duration.
	waitTimeout = 20 * time.Second
)

// needBrowser skips the test when chromedriver or Chromium is missing,
// except under CI, where a missing browser is a failure.
func needBrowser(t *testing.T) {
	t.Helper()
	for _, p := range []string{chromedriverPath, chromiumPath} {
		if _, err := os.Stat(p); err != nil {
			msg := fmt.Sprintf("web UI test needs Debian's chromium and chromium-driver; .ci/run installs them (%v)", err)
			if os.Getenv("CI") != "" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}

// wdError is an error answer from the WebDriver server.
type wdError struct {
	Code    string `json:"error"`
	Message string `json:"message"`
}

func (e *wdError) Error() string { return "webdriver: " + e.Code + ": " + firstLine(e.Message) }

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

func isWDError(err error, code string) bool {
	var we *wdError
	return errors.As(err, &we) && we.Code == code
}

// browser is one chromedriver process with one Chromium session.
type browser struct {
	t       *testing.T
	base    string // http://127.0.0.1:port/session/id
	client  *http.Client
	logPath string
}

// startBrowser starts chromedriver on a free loopback port and opens a
// headless Chromium session with a fresh profile. Both end with the test.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	needBrowser(t)

	port := freePort(t)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "chromedriver.log")
	cmd := exec.Command(chromedriverPath, "--port="+strconv.Itoa(port), "--log-path="+logPath)
	out, err := os.Create(filepath.Join(dir, "chromedriver.out"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromedriver: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})

	b := &browser{t: t, client: &http.Client{Timeout: time.Minute}, logPath: logPath}
	root := fmt.Sprintf("http://127.0.0.1:%d", port)

	// Wait for chromedriver to answer /status.
	deadline := time.Now().Add(waitTimeout)
	for {
		var status struct {
			Ready bool `json:"ready"`
		}
		err := b.do(http.MethodGet, root+"/status", nil, &status)
		if err == nil && status.Ready {
			break
		}
		select {
		case <-exited:
			t.Fatalf("chromedriver exited before it was ready; output:\n%s", readTail(filepath.Join(dir, "chromedriver.out")))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("chromedriver not ready after %v: %v", waitTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	caps := map[string]any{
		"capabilities": map[string]any{
			"alwaysMatch": map[string]any{
				"browserName": "chrome",
				"goog:chromeOptions": map[string]any{
					"binary": chromiumPath,
					"args": []string{
						"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
						"--no-first-run", "--disable-background-networking", "--disable-component-update",
						"--disable-sync", "--disable-dev-shm-usage", "--no-proxy-server",
						"--user-data-dir=" + filepath.Join(dir, "profile"),
					},
				},
			},
		},
	}
	var sess struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.do(http.MethodPost, root+"/session", caps, &sess); err != nil {
		t.Fatalf("new WebDriver session: %v\nchromedriver log:\n%s", err, readTail(logPath))
	}
	b.base = root + "/session/" + sess.SessionID
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("chromedriver log (tail):\n%s", readTail(logPath))
		}
		if err := b.do(http.MethodDelete, b.base, nil, nil); err != nil {
			t.Errorf("delete WebDriver session: %v", err)
		}
	})
	return b
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func readTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

// do sends one WebDriver command and decodes the answer's "value" into
// result (if not nil).
func (b *browser) do(method, url string, body, result any) error {
	var r io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := b.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	var answer struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.NewDecoder(res.Body).Decode(&answer); err != nil {
		return fmt.Errorf("webdriver %s %s: %s: %w", method, url, res.Status, err)
	}
	if res.StatusCode != http.StatusOK {
		we := &wdError{}
		if err := json.Unmarshal(answer.Value, we); err != nil || we.Code == "" {
			return fmt.Errorf("webdriver %s %s: %s: %s", method, url, res.Status, answer.Value)
		}
		return we
	}
	if result == nil {
		return nil
	}
	return json.Unmarshal(answer.Value, result)
}

func (b *browser) cmd(method, path string, body, result any) error {
	return b.do(method, b.base+path, body, result)
}

// navigate loads url.
func (b *browser) navigate(url string) {
	b.t.Helper()
	if err := b.cmd(http.MethodPost, "/url", map[string]string{"url": url}, nil); err != nil {
		b.t.Fatalf("navigate to %s: %v", url, err)
	}
}

// find returns the first element matching the CSS selector.
func (b *browser) find(css string) (string, error) {
	var ref map[string]string
	err := b.cmd(http.MethodPost, "/element", map[string]string{"using": "css selector", "value": css}, &ref)
	if err != nil {
		return "", err
	}
	id, ok := ref[elementKey]
	if !ok {
		return "", fmt.Errorf("webdriver: find %s: no element reference in %v", css, ref)
	}
	return id, nil
}

// text returns the rendered text of the element matching css ("" when hidden).
func (b *browser) text(css string) (string, error) {
	id, err := b.find(css)
	if err != nil {
		return "", err
	}
	var s string
	err = b.cmd(http.MethodGet, "/element/"+id+"/text", nil, &s)
	return s, err
}

// click clicks the element matching css, finding it again if the page
// replaced it in between (a refresh rebuilds the tables).
func (b *browser) click(css string) {
	b.t.Helper()
	var err error
	for range 5 {
		var id string
		if id, err = b.find(css); err != nil {
			break
		}
		err = b.cmd(http.MethodPost, "/element/"+id+"/click", map[string]any{}, nil)
		if !isWDError(err, "stale element reference") {
			break
		}
	}
	if err != nil {
		b.t.Fatalf("click %s: %v", css, err)
	}
}

// exec runs a synchronous script in the page and decodes its result.
func (b *browser) exec(script string, result any, args ...any) {
	b.t.Helper()
	if args == nil {
		args = []any{}
	}
	if err := b.cmd(http.MethodPost, "/execute/sync", map[string]any{"script": script, "args": args}, result); err != nil {
		b.t.Fatalf("execute script: %v", err)
	}
}

// waitFor polls check until it reports true, failing the test at
// waitTimeout with the last state check described.
func waitFor(t *testing.T, what string, check func() (ok bool, state string)) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		ok, state := check()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s; last seen: %s", what, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitText waits until the element matching css shows want.
func (b *browser) waitText(css, want string) {
	b.t.Helper()
	waitFor(b.t, fmt.Sprintf("%s to show %q", css, want), func() (bool, string) {
		got, err := b.text(css)
		if err != nil {
			return false, err.Error()
		}
		return got == want, fmt.Sprintf("%q", got)
	})
}

// tableRows returns the rows of the table with this data-testid: for each
// row its data-name (under "name") and the text of each cell by the cell's
// data-testid.
func (b *browser) tableRows(testid string) []map[string]string {
	b.t.Helper()
	var rows []map[string]string
	b.exec(`
		const rows = [];
		for (const tr of document.querySelectorAll('[data-testid="' + arguments[0] + '"] tbody tr')) {
			if (tr.dataset.name === undefined) continue; // the "No ..." row
			const r = {name: tr.dataset.name};
			for (const td of tr.cells) if (td.dataset.testid) r[td.dataset.testid] = td.textContent;
			rows.push(r);
		}
		return rows;`, &rows, testid)
	return rows
}

// rowNamed returns the row with this data-name, or nil.
func rowNamed(rows []map[string]string, name string) map[string]string {
	for _, r := range rows {
		if r["name"] == name {
			return r
		}
	}
	return nil
}
