package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// testEnv runs the test binary as the warren binary, with its HTTP
// listeners on free loopback ports unless a test says otherwise, so tests in
// parallel (and a RabbitMQ on this machine) do not clash.
var testEnv = []string{"WARREN_TEST_RUN_MAIN=1", "WARREN_HTTP_ADDR=127.0.0.1:0", "WARREN_METRICS_ADDR=127.0.0.1:0"}

// TestMain lets the test binary act as the warren binary, so the tests below
// can run it as a real subprocess.
func TestMain(m *testing.M) {
	if os.Getenv("WARREN_TEST_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func startWarren(t testing.TB, env []string, args ...string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), testEnv...), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, bufio.NewScanner(stderr)
}

var startLog = regexp.MustCompile(`msg="warren starting"`)
var logField = regexp.MustCompile(`(\w+)=(\S*)`)

// waitForStart reads log lines until the broker reports its addresses, and
// returns the fields of that line (amqp, http, metrics, pprof, ...).
func waitForStart(t testing.TB, lines *bufio.Scanner) map[string]string {
	t.Helper()
	found := make(chan map[string]string, 1)
	go func() {
		for lines.Scan() {
			if startLog.MatchString(lines.Text()) {
				fields := map[string]string{}
				for _, m := range logField.FindAllStringSubmatch(lines.Text(), -1) {
					fields[m[1]] = m[2]
				}
				found <- fields
				break
			}
		}
		for lines.Scan() { // keep draining so the child never blocks on stderr
		}
	}()
	select {
	case fields := <-found:
		return fields
	case <-time.After(30 * time.Second):
		t.Fatal("warren did not log its address")
		return nil
	}
}

// dialGuest connects to the broker at addr as guest.
func dialGuest(t testing.TB, addr string) *amqp.Connection {
	t.Helper()
	conn, err := amqp.Dial("amqp://guest:guest@" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// waitForAddr reads log lines until the broker reports its AMQP address.
func waitForAddr(t testing.TB, lines *bufio.Scanner) string {
	t.Helper()
	return waitForStart(t, lines)["amqp"]
}

// TestHTTPListeners runs the binary with every HTTP listener on and checks
// each answers: the management API and the web UI, Prometheus metrics,
// pprof.
func TestHTTPListeners(t *testing.T) {
	_, lines := startWarren(t, []string{"WARREN_PPROF_ADDR=127.0.0.1:0"}, "--amqp-addr", "127.0.0.1:0", "--data-dir", t.TempDir())
	addrs := waitForStart(t, lines)
	conn := dialGuest(t, addrs["amqp"])
	defer conn.Close()
	get := func(addr, path string, auth bool) string {
		t.Helper()
		req, err := http.NewRequest("GET", "http://"+addr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if auth {
			req.SetBasicAuth("guest", "guest")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s%s: %v", addr, path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s%s: %d %s", addr, path, resp.StatusCode, body)
		}
		return string(body)
	}
	if body := get(addrs["http"], "/api/overview", true); !strings.Contains(body, `"product_name":"Warren"`) || !strings.Contains(body, `"connections":1`) {
		t.Errorf("/api/overview = %s", body)
	}
	if body := get(addrs["http"], "/", false); !strings.Contains(strings.ToLower(body), "<html") {
		t.Errorf("/ does not serve the web UI: %.200s", body)
	}
	if body := get(addrs["metrics"], "/metrics", false); !strings.Contains(body, "\nrabbitmq_connections 1\n") {
		t.Errorf("/metrics lacks rabbitmq_connections 1:\n%.2000s", body)
	}
	if body := get(addrs["pprof"], "/debug/pprof/", false); !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/ = %.200s", body)
	}
}

func TestSIGTERMClosesClientsWith320AndExits(t *testing.T) {
	dir := t.TempDir()
	cmd, lines := startWarren(t, []string{"WARREN_DATA_DIR=" + dir}, "--amqp-addr", "127.0.0.1:0")
	addr := waitForAddr(t, lines)
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("data dir from WARREN_DATA_DIR: %v", err)
	}

	conn := dialGuest(t, addr)
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-closed:
		if e == nil || e.Code != amqp.ConnectionForced {
			t.Fatalf("connection closed with %v, want 320 CONNECTION_FORCED", e)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no connection.close after SIGTERM")
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("warren exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("warren did not exit after SIGTERM")
	}
}

func TestHelpDocumentsEverySetting(t *testing.T) {
	cmd := exec.Command(os.Args[0], "--help")
	cmd.Env = append(os.Environ(), testEnv...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("--help: %v\n%s", err, out)
	}
	for _, want := range []string{"--amqp-addr", "WARREN_AMQP_ADDR", `":5672"`, "--data-dir", "WARREN_DATA_DIR", `"./warren-data"`, "--max-message-size", "--heartbeat", "--log-format", "--queue-window", "--max-tx-ops", "WARREN_MAX_TX_OPS", "--max-tx-bytes", "--check", "--http-addr", `":15672"`, "--metrics-addr", `":15692"`, "--pprof-addr", "WARREN_PPROF_ADDR", "--gc-min-heap", "--adaptive-procs", "--config", "--users", "--loopback-users", "--frame-max", "--channel-max", "--handshake-timeout", "--close-timeout", "--queue-memory", "--disk-free-limit", "WARREN_DISK_FREE_LIMIT", `"50000000"`, "--vm-memory-high-watermark", "WARREN_VM_MEMORY_HIGH_WATERMARK", `default "0.4"`, "--vm-memory-high-watermark-absolute"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("--help does not mention %s:\n%s", want, out)
		}
	}
}

// TestBadFlagValueFails: a flag value the broker cannot use stops it at
// start, with a message naming the flag.
func TestBadFlagValueFails(t *testing.T) {
	for _, c := range []struct{ flag, value, want string }{
		{"--log-format", "xml", "--log-format"},
		{"--disk-free-limit", "-1", "--disk-free-limit must not be negative"},
		{"--vm-memory-high-watermark", "1.5", "--vm-memory-high-watermark must be from 0 to 1"},
		{"--vm-memory-high-watermark", "-0.1", "--vm-memory-high-watermark must be from 0 to 1"},
		{"--vm-memory-high-watermark", "NaN", "--vm-memory-high-watermark must be from 0 to 1"},
		{"--vm-memory-high-watermark-absolute", "-1", "--vm-memory-high-watermark-absolute must not be negative"},
	} {
		cmd := exec.Command(os.Args[0], c.flag, c.value, "--amqp-addr", "127.0.0.1:0", "--data-dir", t.TempDir())
		cmd.Env = append(os.Environ(), testEnv...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("%s %s: want a failure naming %s, got err=%v:\n%s", c.flag, c.value, c.flag, err, out)
		}
	}
}

// TestDiskFreeLimitFlag: a limit above the disk's free space raises the
// free disk space alarm at start, and a publisher is blocked.
func TestDiskFreeLimitFlag(t *testing.T) {
	_, lines := startWarren(t, []string{"WARREN_DISK_FREE_LIMIT=9000000000000000000"}, "--amqp-addr", "127.0.0.1:0", "--data-dir", t.TempDir())
	addrs := waitForStart(t, lines)
	conn := dialGuest(t, addrs["amqp"])
	// Not closed: a blocked connection reads nothing, connection.close
	// included, until the alarm clears (RabbitMQ's too). The broker is
	// killed at cleanup.
	blocked := conn.NotifyBlocked(make(chan amqp.Blocking, 1))
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Publish("", "nowhere", false, false, amqp.Publishing{Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-blocked:
		if !b.Active || b.Reason != "low on disk" {
			t.Fatalf("got %+v, want connection.blocked, low on disk", b)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no connection.blocked")
	}
}

// TestUsersFlag sets the broker's users: they log in over AMQP and to the
// management API, and the default guest is gone.
func TestUsersFlag(t *testing.T) {
	_, lines := startWarren(t, []string{"WARREN_USERS=alice:s3cret, bob:pw", "WARREN_LOOPBACK_USERS="}, "--amqp-addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--channel-max", "7", "--frame-max", "8192")
	addrs := waitForStart(t, lines)
	conn, err := amqp.Dial("amqp://alice:s3cret@" + addrs["amqp"] + "/")
	if err != nil {
		t.Fatalf("alice: %v", err)
	}
	defer conn.Close()
	if conn.Config.ChannelMax != 7 || conn.Config.FrameSize != 8192 {
		t.Errorf("tuned channel_max %d frame_max %d, want 7 and 8192", conn.Config.ChannelMax, conn.Config.FrameSize)
	}
	if c, err := amqp.Dial("amqp://guest:guest@" + addrs["amqp"] + "/"); err == nil {
		c.Close()
		t.Error("guest logged in, but --users did not name it")
	}
	for _, c := range []struct {
		user, pass string
		want       int
	}{{"bob", "pw", 200}, {"guest", "guest", 401}, {"alice", "wrong", 401}} {
		req, _ := http.NewRequest("GET", "http://"+addrs["http"]+"/api/whoami", nil)
		req.SetBasicAuth(c.user, c.pass)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("management API as %s/%s: %d, want %d", c.user, c.pass, resp.StatusCode, c.want)
		}
	}
}

func TestBadUsersFlag(t *testing.T) {
	cmd := exec.Command(os.Args[0], "--users", "alice", "--amqp-addr", "127.0.0.1:0", "--data-dir", t.TempDir())
	cmd.Env = append(os.Environ(), testEnv...)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--users") {
		t.Fatalf("want a failure naming --users, got err=%v:\n%s", err, out)
	}
}
