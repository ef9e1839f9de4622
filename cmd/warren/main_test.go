package main

import (
	"bufio"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

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
	cmd.Env = append(append(os.Environ(), "WARREN_TEST_RUN_MAIN=1"), env...)
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

var amqpAddrLog = regexp.MustCompile(`msg="warren starting".* amqp=(\S+)`)

// waitForAddr reads log lines until the broker reports its address.
func waitForAddr(t testing.TB, lines *bufio.Scanner) string {
	t.Helper()
	found := make(chan string, 1)
	go func() {
		for lines.Scan() {
			if m := amqpAddrLog.FindStringSubmatch(lines.Text()); m != nil {
				found <- m[1]
				break
			}
		}
		for lines.Scan() { // keep draining so the child never blocks on stderr
		}
	}()
	select {
	case addr := <-found:
		return addr
	case <-time.After(30 * time.Second):
		t.Fatal("warren did not log its address")
		return ""
	}
}

func TestSIGTERMClosesClientsWith320AndExits(t *testing.T) {
	dir := t.TempDir()
	cmd, lines := startWarren(t, []string{"WARREN_DATA_DIR=" + dir}, "--amqp-addr", "127.0.0.1:0")
	addr := waitForAddr(t, lines)
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("data dir from WARREN_DATA_DIR: %v", err)
	}

	conn, err := amqp.Dial("amqp://guest:guest@" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
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
	cmd.Env = append(os.Environ(), "WARREN_TEST_RUN_MAIN=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("--help: %v\n%s", err, out)
	}
	for _, want := range []string{"--amqp-addr", "WARREN_AMQP_ADDR", `":5672"`, "--data-dir", "WARREN_DATA_DIR", `"./warren-data"`, "--max-message-size", "--heartbeat", "--log-format", "--queue-window", "--max-tx-ops", "WARREN_MAX_TX_OPS", "--max-tx-bytes", "--check"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("--help does not mention %s:\n%s", want, out)
		}
	}
}

func TestBadFlagValueFails(t *testing.T) {
	cmd := exec.Command(os.Args[0], "--log-format", "xml", "--amqp-addr", "127.0.0.1:0", "--data-dir", t.TempDir())
	cmd.Env = append(os.Environ(), "WARREN_TEST_RUN_MAIN=1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--log-format") {
		t.Fatalf("want a failure naming --log-format, got err=%v:\n%s", err, out)
	}
}
