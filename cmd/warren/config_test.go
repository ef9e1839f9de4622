package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warrenmq/warren/internal/store"
)

// testSettings is a FlagSet shaped like run's, with one flag of each kind.
type testSettings struct {
	fs        *flag.FlagSet
	amqpAddr  *string
	dataDir   *string
	window    *int64
	heartbeat *time.Duration
	check     *bool
	logFormat *string
}

func newTestSettings() *testSettings {
	fs := flag.NewFlagSet("warren", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	s := &testSettings{
		fs:        fs,
		amqpAddr:  fs.String("amqp-addr", ":5672", ""),
		dataDir:   fs.String("data-dir", "./warren-data", ""),
		window:    fs.Int64("queue-window", 8<<20, ""),
		heartbeat: fs.Duration("heartbeat", time.Minute, ""),
		check:     fs.Bool("check", false, ""),
		logFormat: checkedStringFlag(fs, "log-format", "text", "", oneOf("text", "json")),
	}
	fs.String(configFlag, "", "")
	return s
}

// writeConfig writes text to a file named warren.conf in a new temporary
// directory and returns its path.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "warren.conf")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigFileParsing(t *testing.T) {
	s := newTestSettings()
	text := "# Warren settings\n" +
		"\n" +
		"   # an indented comment = not a setting\n" +
		"amqp-addr = 127.0.0.1:5673\n" +
		"\tdata-dir=\"  /var/lib/warren data  \"  \n" +
		"queue-window   =   1024\r\n" +
		"heartbeat = 10s\n" +
		"check = true\n" +
		"log-format = \"json\"\n" +
		"   \n"
	if err := readConfig(s.fs, "warren.conf", strings.NewReader(text)); err != nil {
		t.Fatal(err)
	}
	if *s.amqpAddr != "127.0.0.1:5673" {
		t.Errorf("amqp-addr = %q", *s.amqpAddr)
	}
	if *s.dataDir != "  /var/lib/warren data  " {
		t.Errorf("data-dir = %q, want the quoted value with its spaces", *s.dataDir)
	}
	if *s.window != 1024 {
		t.Errorf("queue-window = %d", *s.window)
	}
	if *s.heartbeat != 10*time.Second {
		t.Errorf("heartbeat = %v", *s.heartbeat)
	}
	if !*s.check {
		t.Error("check = false")
	}
	if *s.logFormat != "json" {
		t.Errorf("log-format = %q", *s.logFormat)
	}
}

func TestConfigFileValueMayContainEqualsAndHash(t *testing.T) {
	s := newTestSettings()
	if err := readConfig(s.fs, "warren.conf", strings.NewReader("data-dir = /srv/a=b#c\n")); err != nil {
		t.Fatal(err)
	}
	if *s.dataDir != "/srv/a=b#c" {
		t.Errorf("data-dir = %q, want /srv/a=b#c", *s.dataDir)
	}
}

func TestConfigFileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, text, want string
	}{
		{"unknown key", "# c\namqp-addr = :1\namqp-adr = :2\n", `warren.conf:3: unknown setting "amqp-adr"`},
		{"missing equals", "\n\namqp-addr 127.0.0.1:5672\n", `warren.conf:3: "amqp-addr 127.0.0.1:5672" is not a key = value line`},
		{"duplicate", "data-dir = /a\n# again\ndata-dir = /b\n", `warren.conf:3: setting "data-dir" repeated (first set on line 1)`},
		{"bad number", "queue-window = 8MB\n", `warren.conf:1: invalid value "8MB" for "queue-window"`},
		{"bad duration", "check = true\nheartbeat = 10\n", `warren.conf:2: invalid value "10" for "heartbeat"`},
		{"bad bool", "check = maybe\n", `warren.conf:1: invalid value "maybe" for "check"`},
		{"bad log format", "log-format = xml\n", `warren.conf:1: invalid value "xml" for "log-format": "xml" is not text or json`},
		{"config in config", "config = other.conf\n", `warren.conf:1: setting "config" cannot be set in a config file`},
		{"no key", "= 5\n", `warren.conf:1: no key before "="`},
		{"unclosed quote", "data-dir = \"/var/lib\n", `warren.conf:1: value of "data-dir" has no closing quote`},
		{"lone quote", "data-dir = \"\n", `warren.conf:1: value of "data-dir" has no closing quote`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := readConfig(newTestSettings().fs, "warren.conf", strings.NewReader(tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want one containing %s", err, tc.want)
			}
		})
	}
}

func TestConfigPrecedence(t *testing.T) {
	path := writeConfig(t, "amqp-addr = 127.0.0.1:1\ndata-dir = /from/file\nqueue-window = 1\nheartbeat = 1s\n")
	t.Setenv("WARREN_DATA_DIR", "/from/env")
	t.Setenv("WARREN_QUEUE_WINDOW", "2")
	s := newTestSettings()
	if err := configure(s.fs, []string{"--config", path, "--queue-window", "3"}); err != nil {
		t.Fatal(err)
	}
	if *s.amqpAddr != "127.0.0.1:1" {
		t.Errorf("amqp-addr = %q, want the file's 127.0.0.1:1", *s.amqpAddr)
	}
	if *s.dataDir != "/from/env" {
		t.Errorf("data-dir = %q, want WARREN_DATA_DIR's /from/env over the file", *s.dataDir)
	}
	if *s.window != 3 {
		t.Errorf("queue-window = %d, want the command line's 3 over env and file", *s.window)
	}
	if *s.heartbeat != time.Second {
		t.Errorf("heartbeat = %v, want the file's 1s", *s.heartbeat)
	}
	if *s.logFormat != "text" {
		t.Errorf("log-format = %q, want the default text", *s.logFormat)
	}
}

func TestConfigFileFromEnvironment(t *testing.T) {
	t.Setenv("WARREN_CONFIG", writeConfig(t, "data-dir = /from/env/file\n"))
	s := newTestSettings()
	if err := configure(s.fs, nil); err != nil {
		t.Fatal(err)
	}
	if *s.dataDir != "/from/env/file" {
		t.Errorf("data-dir = %q, want /from/env/file from the file named by WARREN_CONFIG", *s.dataDir)
	}

	// --config on the command line wins over WARREN_CONFIG.
	s = newTestSettings()
	if err := configure(s.fs, []string{"--config=" + writeConfig(t, "data-dir = /from/flag/file\n")}); err != nil {
		t.Fatal(err)
	}
	if *s.dataDir != "/from/flag/file" {
		t.Errorf("data-dir = %q, want /from/flag/file from the file named by --config", *s.dataDir)
	}
}

func TestConfigErrorsAreNotHiddenByOverrides(t *testing.T) {
	// A bad value in the file is an error even if the command line sets
	// the same flag: the file is wrong either way.
	path := writeConfig(t, "queue-window = lots\n")
	err := configure(newTestSettings().fs, []string{"--config", path, "--queue-window", "5"})
	if err == nil || !strings.Contains(err.Error(), path+":1:") {
		t.Errorf("got %v, want an error naming %s:1", err, path)
	}

	t.Setenv("WARREN_LOG_FORMAT", "xml")
	err = configure(newTestSettings().fs, []string{"--log-format", "json"})
	if err == nil || !strings.Contains(err.Error(), "WARREN_LOG_FORMAT") {
		t.Errorf("got %v, want an error naming WARREN_LOG_FORMAT", err)
	}
}

func TestConfigMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.conf")
	err := configure(newTestSettings().fs, []string{"--config", path})
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Errorf("got %v, want a not-exist error naming %s", err, path)
	}
}

func TestConfigHelpRequest(t *testing.T) {
	// --help is answered before the config file is read.
	path := writeConfig(t, "no such setting = 1\n")
	if err := configure(newTestSettings().fs, []string{"--config", path, "--help"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("got %v, want flag.ErrHelp", err)
	}
}

func TestHelpIsGeneratedFromFlags(t *testing.T) {
	s := newTestSettings()
	s.fs.Int("brand-new-flag", 42, "a flag added later")
	var out bytes.Buffer
	s.fs.SetOutput(&out)
	usage(s.fs)
	for _, want := range []string{
		`--brand-new-flag (WARREN_BRAND_NEW_FLAG, file: brand-new-flag, default "42")`,
		"a flag added later",
		`--data-dir (WARREN_DATA_DIR, file: data-dir, default "./warren-data")`,
		`--config (WARREN_CONFIG, default "")`,
		"key = value",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help does not contain %s:\n%s", want, out.String())
		}
	}
}

func TestHelpDocumentsConfigFile(t *testing.T) {
	cmd := exec.Command(os.Args[0], "--help")
	cmd.Env = append(os.Environ(), testEnv...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("--help: %v\n%s", err, out)
	}
	for _, want := range []string{"--config", "WARREN_CONFIG", "key = value", "file: amqp-addr", "file: log-format", "file: check"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("--help does not mention %s:\n%s", want, out)
		}
	}
}

// TestConfigFileReachesCheck runs run with a config file that turns on
// --check for a data dir holding a store: it passes only if both settings
// got through (the default ./warren-data holds no store), and fails once
// WARREN_DATA_DIR points at a dir without one.
func TestConfigFileReachesCheck(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, "# check the store, do not serve\ncheck = true\ndata-dir = \""+dir+"\"\n")
	if err := run([]string{"--config", path}); err != nil {
		t.Fatalf("run --config with check and data-dir in the file: %v", err)
	}

	empty := t.TempDir()
	t.Setenv("WARREN_DATA_DIR", empty)
	err = run([]string{"--config", path})
	if err == nil || !strings.Contains(err.Error(), empty) {
		t.Fatalf("with WARREN_DATA_DIR=%s: got %v, want a check failure naming it", empty, err)
	}
	if err := run([]string{"--config", path, "--data-dir", dir}); err != nil {
		t.Fatalf("--data-dir on the command line: %v", err)
	}
}

// TestConfigFileStartsBroker runs the binary with WARREN_CONFIG naming a
// file that sets the address, the data dir and JSON logs, and reads its
// startup log line.
func TestConfigFileStartsBroker(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, "amqp-addr = 127.0.0.1:0\ndata-dir = "+dir+"\nlog-format = json\n")
	_, lines := startWarren(t, []string{"WARREN_CONFIG=" + path})
	for lines.Scan() {
		var rec struct {
			Msg     string `json:"msg"`
			AMQP    string `json:"amqp"`
			DataDir string `json:"data_dir"`
		}
		if err := json.Unmarshal(lines.Bytes(), &rec); err != nil {
			t.Fatalf("log line is not JSON (log-format from the file ignored?): %v\n%s", err, lines.Text())
		}
		if rec.Msg != "warren starting" {
			continue
		}
		if !strings.HasPrefix(rec.AMQP, "127.0.0.1:") || rec.DataDir != dir {
			t.Fatalf("broker started on %q with data dir %q, want 127.0.0.1:<port> and %s", rec.AMQP, rec.DataDir, dir)
		}
		go func() { // keep draining so the child never blocks on stderr
			for lines.Scan() {
			}
		}()
		return
	}
	t.Fatal("warren exited without logging its start")
}

// TestConfigFileErrorStopsBroker checks that a bad config file makes the
// binary exit 1 with the file, line and key in its message.
func TestConfigFileErrorStopsBroker(t *testing.T) {
	path := writeConfig(t, "amqp-addr = 127.0.0.1:0\ndata-dir = "+t.TempDir()+"\namqp-adr = 127.0.0.1:0\n")
	cmd := exec.Command(os.Args[0], "--config", path)
	cmd.Env = append(os.Environ(), testEnv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("got %v, want exit status 1\n%s", err, stderr.String())
	}
	want := path + `:3: unknown setting "amqp-adr"`
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr does not contain %s:\n%s", want, stderr.String())
	}
}
