package webui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/internal/mgmt"
	"github.com/warrenmq/warren/internal/webui"
	"github.com/warrenmq/warren/server/servertest"
)

func TestHandlerServesFiles(t *testing.T) {
	srv := httptest.NewServer(webui.Handler())
	defer srv.Close()

	for path, wantType := range map[string]string{
		"/":          "text/html",
		"/app.js":    "javascript",
		"/style.css": "text/css",
	} {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || len(body) == 0 {
			t.Errorf("GET %s: %s, %d bytes", path, res.Status, len(body))
		}
		if ct := res.Header.Get("Content-Type"); !strings.Contains(ct, wantType) {
			t.Errorf("GET %s: Content-Type %q, want %s", path, ct, wantType)
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
		}
	}

	res, err := http.Get(srv.URL + "/nope.html")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nope.html: %s, want 404", res.Status)
	}
	res, err = http.Post(srv.URL+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %s, want 405", res.Status)
	}
}

// TestNoExternalResources checks that the page loads nothing from another
// origin: no absolute or protocol-relative URLs in its files.
func TestNoExternalResources(t *testing.T) {
	files, err := filepath.Glob("static/*")
	if err != nil || len(files) == 0 {
		t.Fatalf("static files: %v %v", files, err)
	}
	external := regexp.MustCompile(`(?i)(https?:|wss?:|(src|href|url)\s*[=(]\s*["']?//)`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if m := external.Find(b); m != nil {
			t.Errorf("%s refers to another origin: %q", f, m)
		}
	}
}

// Queues the test declares, with the messages published to each.
const (
	qKeep    = "webui-test.keep"    // 3 ready
	qPurge   = "webui-test.purge"   // 5 ready, purged through the page
	qDelete  = "webui-test.delete"  // 2 ready, deleted through the page
	qConsume = "webui-test.consume" // 2 delivered to the consumer, not acked

	consumerName = "webui-test-consumer" // client connection_name of the consumer
)

func TestWebUI(t *testing.T) {
	needBrowser(t)
	b := servertest.Start(t)
	api := httptest.NewServer(mgmt.Handler(b.Server, mgmt.Options{UI: webui.Handler()}))
	t.Cleanup(api.Close)

	makeTraffic(t, b.URL)
	br := startBrowser(t)

	// Not logged in yet: the login form, prefilled with guest/guest.
	br.navigate(api.URL + "/#/overview")
	br.waitText(`[data-testid="login-submit"]`, "Log in")
	if got, _ := br.text(`#view-overview h2`); got != "" {
		t.Errorf("overview visible before login: %q", got)
	}

	// A wrong password is refused (401) and the form comes back.
	br.exec(`document.getElementById('login-password').value = 'wrong';`, nil)
	br.click(`[data-testid="login-submit"]`)
	br.waitText(`[data-testid="login-error"]`, "User name or password not accepted.")
	br.exec(`document.getElementById('login-password').value = 'guest';`, nil)
	br.click(`[data-testid="login-submit"]`)
	br.waitText(`[data-testid="whoami"]`, "guest")

	t.Run("overview", func(t *testing.T) {
		want := map[string]string{
			"ov-connections": "1", // the consumer; the publisher has closed
			"ov-channels":    "1",
			"ov-queues":      "4",
			"ov-consumers":   "1",
			"ov-ready":       "10", // 3 + 5 + 2
			"ov-unacked":     "2",
			"ov-messages":    "12",
		}
		waitFor(t, "overview totals", func() (bool, string) {
			got := map[string]string{}
			for id := range want {
				got[id], _ = br.text("#" + id)
			}
			return fmt.Sprint(got) == fmt.Sprint(want), fmt.Sprint(got)
		})
		for _, id := range []string{"ov-rate-publish", "ov-rate-deliver", "ov-rate-ack"} {
			if s, err := br.text("#" + id); err != nil || !isNumber(s) {
				t.Errorf("#%s = %q, %v; want a number", id, s, err)
			}
		}
	})

	t.Run("queues", func(t *testing.T) {
		br.click(`[data-testid="nav-queues"]`)
		want := map[string]map[string]string{
			qKeep:    {"queue-ready": "3", "queue-unacked": "0", "queue-messages": "3", "queue-consumers": "0", "queue-vhost": "/"},
			qPurge:   {"queue-ready": "5", "queue-unacked": "0", "queue-messages": "5", "queue-consumers": "0"},
			qDelete:  {"queue-ready": "2", "queue-unacked": "0", "queue-messages": "2", "queue-consumers": "0"},
			qConsume: {"queue-ready": "0", "queue-unacked": "2", "queue-messages": "2", "queue-consumers": "1"},
		}
		waitRows(t, br, "queues-table", want)
		for _, r := range br.tableRows("queues-table") {
			for _, k := range []string{"queue-publish-rate", "queue-deliver-rate"} {
				if !isNumber(r[k]) {
					t.Errorf("queue %s: %s = %q, want a number", r["name"], k, r[k])
				}
			}
		}
	})

	t.Run("purge", func(t *testing.T) {
		row := fmt.Sprintf(`tr[data-testid="queue-row"][data-name=%q]`, qPurge)
		button := row + ` button[data-testid="purge"]`
		br.click(button)
		br.waitText(button, "Really purge?")
		if n := queueMessages(t, api.URL, qPurge); n != 5 {
			t.Errorf("one click purged the queue: %d messages left, want 5", n)
		}
		br.click(button)
		br.waitText(row+` [data-testid="queue-ready"]`, "0")
		br.waitText(`[data-testid="status"]`, "Purged queue "+qPurge)
		waitFor(t, "the API to report the purged queue empty", func() (bool, string) {
			n := queueMessages(t, api.URL, qPurge)
			return n == 0, fmt.Sprint(n, " messages")
		})
		br.waitText(button, "Purge")
	})

	t.Run("delete", func(t *testing.T) {
		row := fmt.Sprintf(`tr[data-testid="queue-row"][data-name=%q]`, qDelete)
		button := row + ` button[data-testid="delete"]`
		br.click(button)
		br.waitText(button, "Really delete?")
		br.click(button)
		waitFor(t, "the deleted queue's row to go", func() (bool, string) {
			_, err := br.find(row)
			return isWDError(err, "no such element"), fmt.Sprint(err)
		})
		if code := apiStatus(t, api.URL+"/api/queues/%2F/"+qDelete); code != http.StatusNotFound {
			t.Errorf("GET deleted queue: %d, want 404", code)
		}
		// The others are still listed, untouched.
		waitRows(t, br, "queues-table", map[string]map[string]string{
			qKeep:  {"queue-ready": "3"},
			qPurge: {"queue-ready": "0"},
		})
	})

	t.Run("exchanges", func(t *testing.T) {
		br.click(`[data-testid="nav-exchanges"]`)
		waitRows(t, br, "exchanges-table", map[string]map[string]string{
			"amq.topic":  {"exchange-name": "amq.topic", "exchange-type": "topic", "exchange-durable": "yes", "exchange-auto-delete": "no", "exchange-internal": "no"},
			"amq.direct": {"exchange-type": "direct"},
			"amq.fanout": {"exchange-type": "fanout"},
			"":           {"exchange-name": "(AMQP default)", "exchange-type": "direct"},
		})
	})

	t.Run("connections", func(t *testing.T) {
		br.click(`[data-testid="nav-connections"]`)
		var rows []map[string]string
		waitFor(t, "the consumer's connection", func() (bool, string) {
			rows = br.tableRows("connections-table")
			return len(rows) == 1 && rows[0]["connection-client-name"] == consumerName, fmt.Sprint(rows)
		})
		r := rows[0]
		if r["connection-user"] != "guest" || r["connection-channels"] != "1" || r["connection-name"] == "" {
			t.Errorf("connection row %v: want user guest, 1 channel, a name", r)
		}
	})

	t.Run("logout", func(t *testing.T) {
		br.click(`[data-testid="logout"]`)
		br.waitText(`[data-testid="login-submit"]`, "Log in")
		var stored any
		br.exec(`return sessionStorage.getItem('warren.auth');`, &stored)
		if stored != nil {
			t.Errorf("credentials still stored after logout: %v", stored)
		}
	})

	if s, err := br.text(`[data-testid="error"]`); err != nil || s != "" {
		t.Errorf("page error: %q %v", s, err)
	}
}

// TestWebUIMissingFields serves the page next to a fake API that leaves out
// every field: the page must render zeros and blanks, not fail.
func TestWebUIMissingFields(t *testing.T) {
	needBrowser(t)
	mux := http.NewServeMux()
	answers := map[string]string{
		"/api/overview":    `{"message_stats": {}, "object_totals": null}`,
		"/api/queues":      `[{"name": "bare"}]`,
		"/api/exchanges":   `[{"name": "bare-x"}]`,
		"/api/connections": `[{"name": "bare-c", "client_properties": {}}]`,
	}
	for path, body := range answers {
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, body)
		})
	}
	mux.Handle("/", webui.Handler())
	api := httptest.NewServer(mux)
	t.Cleanup(api.Close)

	br := startBrowser(t)
	br.navigate(api.URL + "/")
	br.click(`[data-testid="login-submit"]`)
	br.waitText(`[data-testid="whoami"]`, "guest")
	waitFor(t, "the overview to render", func() (bool, string) {
		s, _ := br.text(`[data-testid="updated"]`)
		return s != "", s
	})
	for _, id := range []string{"ov-rate-publish", "ov-rate-deliver", "ov-rate-ack", "ov-connections",
		"ov-channels", "ov-queues", "ov-consumers", "ov-ready", "ov-unacked", "ov-messages"} {
		if s, err := br.text("#" + id); s != "0" {
			t.Errorf("#%s = %q, %v; want 0", id, s, err)
		}
	}
	br.click(`[data-testid="nav-queues"]`)
	waitRows(t, br, "queues-table", map[string]map[string]string{"bare": {
		"queue-vhost": "", "queue-ready": "0", "queue-unacked": "0", "queue-messages": "0",
		"queue-publish-rate": "0", "queue-deliver-rate": "0", "queue-consumers": "0",
	}})
	br.click(`[data-testid="nav-exchanges"]`)
	waitRows(t, br, "exchanges-table", map[string]map[string]string{"bare-x": {
		"exchange-type": "", "exchange-durable": "", "exchange-auto-delete": "", "exchange-internal": "",
	}})
	br.click(`[data-testid="nav-connections"]`)
	waitRows(t, br, "connections-table", map[string]map[string]string{"bare-c": {
		"connection-user": "", "connection-channels": "0", "connection-client-name": "",
	}})
	if s, err := br.text(`[data-testid="error"]`); err != nil || s != "" {
		t.Errorf("page error: %q %v", s, err)
	}
}

// makeTraffic declares the test's queues, publishes to them with confirms
// on a connection it then closes, and leaves one consumer connection open
// (named consumerName) holding two unacked deliveries.
func makeTraffic(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct {
		name string
		n    int
	}{{qKeep, 3}, {qPurge, 5}, {qDelete, 2}, {qConsume, 2}} {
		if _, err := ch.QueueDeclare(q.name, false, false, false, false, nil); err != nil {
			t.Fatal(err)
		}
		for i := range q.n {
			dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", q.name, false, false,
				amqp.Publishing{Body: fmt.Appendf(nil, "%s %d", q.name, i)})
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := dc.WaitContext(ctx); !ok || err != nil {
				t.Fatalf("publish to %s not confirmed: %v %v", q.name, ok, err)
			}
		}
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}

	consumer, err := amqp.DialConfig(url, amqp.Config{Properties: amqp.Table{"connection_name": consumerName}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { consumer.Close() })
	cch, err := consumer.Channel()
	if err != nil {
		t.Fatal(err)
	}
	deliveries, err := cch.Consume(qConsume, "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case <-deliveries:
		case <-ctx.Done():
			t.Fatal("no delivery to the consumer")
		}
	}
}

// waitRows waits until the table has a row for each name in want whose
// cells (by data-testid) show the wanted texts.
func waitRows(t *testing.T, br *browser, table string, want map[string]map[string]string) {
	t.Helper()
	waitFor(t, table+" rows", func() (bool, string) {
		rows := br.tableRows(table)
		for name, cells := range want {
			r := rowNamed(rows, name)
			if r == nil {
				return false, fmt.Sprintf("no row %q in %v", name, rows)
			}
			for k, v := range cells {
				if r[k] != v {
					return false, fmt.Sprintf("row %q: %s = %q, want %q", name, k, r[k], v)
				}
			}
		}
		return true, ""
	})
}

func isNumber(s string) bool {
	var f float64
	_, err := fmt.Sscan(s, &f)
	return err == nil
}

func apiGet(t *testing.T, url string, v any) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("guest", "guest")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusOK && v != nil {
		if err := json.NewDecoder(res.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
	}
	return res.StatusCode
}

func apiStatus(t *testing.T, url string) int {
	t.Helper()
	return apiGet(t, url, nil)
}

// queueMessages is the queue's "messages" from GET /api/queues/%2F/name.
func queueMessages(t *testing.T, base, name string) int {
	t.Helper()
	var q struct {
		Messages int `json:"messages"`
	}
	if code := apiGet(t, base+"/api/queues/%2F/"+name, &q); code != http.StatusOK {
		t.Fatalf("GET queue %s: %d", name, code)
	}
	return q.Messages
}
