// Command warrenctl manages a Warren (or RabbitMQ) broker through its
// management HTTP API, in the manner of rabbitmqctl and rabbitmqadmin.
//
//	warrenctl [global flags] COMMAND [args] [flags]
//
// Global flags (they may also follow the command):
//
//	--url       management API base URL (env WARREN_HTTP_URL, default http://localhost:15672)
//	--user      user name (env WARREN_USER, default guest)
//	--password  password (env WARREN_PASSWORD, default guest)
//	--vhost     virtual host (default /)
//	--json      print JSON instead of a table
//	--timeout   HTTP timeout (default 30s)
//
// List commands take column names, as rabbitmqctl does:
//
//	warrenctl list_queues name messages consumers
//
// Any field of the API's JSON objects is a column; a dotted path such as
// queue.name reaches into nested objects. Run "warrenctl help" for the
// commands.
//
// API errors are printed as "warrenctl: <reason>" with exit status 1; usage
// errors exit with status 2.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// cli holds the global options and the streams of one run.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	url      string
	user     string
	password string
	vhost    string
	json     bool
	timeout  time.Duration

	// vhostSet reports whether --vhost was given. Commands that act on the
	// whole broker by default (list_connections, list_channels,
	// export_definitions, import_definitions) narrow to one vhost only then.
	vhostSet bool

	client *http.Client
}

// usageError is a mistake on the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// addGlobalFlags defines the global flags on fs, each defaulting to the
// value it has in c now (so flags parsed before the command carry over).
func (c *cli) addGlobalFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.url, "url", c.url, "management API base `URL` (env WARREN_HTTP_URL)")
	fs.StringVar(&c.user, "user", c.user, "user `name` (env WARREN_USER)")
	fs.StringVar(&c.password, "password", c.password, "`password` (env WARREN_PASSWORD)")
	fs.StringVar(&c.vhost, "vhost", c.vhost, "virtual `host`")
	fs.BoolVar(&c.json, "json", c.json, "print JSON instead of a table")
	fs.DurationVar(&c.timeout, "timeout", c.timeout, "HTTP request `timeout`")
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// run is the whole program: it parses args, runs one command and returns
// the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{
		stdin:    stdin,
		stdout:   stdout,
		stderr:   stderr,
		url:      envOr("WARREN_HTTP_URL", "http://localhost:15672"),
		user:     envOr("WARREN_USER", "guest"),
		password: envOr("WARREN_PASSWORD", "guest"),
		vhost:    "/",
		timeout:  30 * time.Second,
	}

	global := flag.NewFlagSet("warrenctl", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	c.addGlobalFlags(global)
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "warrenctl: %v\n", err)
		printHelp(stderr)
		return 2
	}
	global.Visit(func(f *flag.Flag) { c.vhostSet = c.vhostSet || f.Name == "vhost" })
	if global.NArg() == 0 {
		fmt.Fprintln(stderr, "warrenctl: no command given")
		printHelp(stderr)
		return 2
	}
	name, rest := global.Arg(0), global.Args()[1:]
	if name == "help" {
		return help(rest, stdout, stderr)
	}
	cmd := findCommand(name)
	if cmd == nil {
		fmt.Fprintf(stderr, "warrenctl: unknown command %q\n", name)
		printHelp(stderr)
		return 2
	}

	fs := flag.NewFlagSet("warrenctl "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.addGlobalFlags(fs)
	var action func(c *cli, args []string) error
	if cmd.setup != nil {
		action = cmd.setup(fs)
	}
	pos, err := parseInterleaved(fs, rest)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printCommandHelp(stdout, cmd, fs)
			return 0
		}
		fmt.Fprintf(stderr, "warrenctl: %v\n", err)
		printCommandHelp(stderr, cmd, fs)
		return 2
	}
	fs.Visit(func(f *flag.Flag) { c.vhostSet = c.vhostSet || f.Name == "vhost" })
	if len(pos) < cmd.minArgs || (cmd.maxArgs >= 0 && len(pos) > cmd.maxArgs) {
		fmt.Fprintf(stderr, "warrenctl: %s: wrong number of arguments\n", cmd.name)
		printCommandHelp(stderr, cmd, fs)
		return 2
	}
	c.client = &http.Client{Timeout: c.timeout}

	if err := action(c, pos); err != nil {
		fmt.Fprintf(stderr, "warrenctl: %v\n", err)
		var ue *usageError
		if errors.As(err, &ue) {
			printCommandHelp(stderr, cmd, fs)
			return 2
		}
		return 1
	}
	return 0
}

// parseInterleaved parses fs from args, allowing flags after positional
// arguments ("delete_queue q --if-empty"), and returns the positional ones.
// Everything after "--" is positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		consumed := args[:len(args)-len(rest)]
		if len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func help(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printHelp(stdout)
		return 0
	}
	cmd := findCommand(args[0])
	if cmd == nil {
		fmt.Fprintf(stderr, "warrenctl: unknown command %q\n", args[0])
		printHelp(stderr)
		return 2
	}
	fs := flag.NewFlagSet("warrenctl "+cmd.name, flag.ContinueOnError)
	if cmd.setup != nil {
		cmd.setup(fs)
	}
	printCommandHelp(stdout, cmd, fs)
	return 0
}

func printHelp(w io.Writer) {
	fmt.Fprint(w, `Usage: warrenctl [global flags] COMMAND [args] [flags]

warrenctl manages a broker through its RabbitMQ-compatible management HTTP API.

Commands:
`)
	for _, cmd := range commands {
		fmt.Fprintf(w, "  %-20s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprint(w, `
Global flags (before or after the command):
  --url URL         management API base URL (env WARREN_HTTP_URL, default http://localhost:15672)
  --user NAME       user name (env WARREN_USER, default guest)
  --password PASS   password (env WARREN_PASSWORD, default guest)
  --vhost VHOST     virtual host (default /)
  --json            print JSON instead of a table
  --timeout DUR     HTTP request timeout (default 30s)

Run "warrenctl help COMMAND" for a command's arguments and flags.
`)
}

func printCommandHelp(w io.Writer, cmd *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: warrenctl %s %s\n\n%s\n", cmd.name, cmd.args, cmd.summary)
	if cmd.detail != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(cmd.detail))
	}
	var own []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		switch f.Name {
		case "url", "user", "password", "vhost", "json", "timeout":
		default:
			own = append(own, f)
		}
	})
	if len(own) > 0 {
		fmt.Fprintln(w, "\nFlags:")
		for _, f := range own {
			arg, usage := flag.UnquoteUsage(f)
			if arg != "" {
				arg = " " + arg
			}
			fmt.Fprintf(w, "  --%s%s\n    \t%s", f.Name, arg, usage)
			if f.DefValue != "" && f.DefValue != "false" {
				fmt.Fprintf(w, " (default %s)", f.DefValue)
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintln(w, "\nGlobal flags: --url --user --password --vhost --json --timeout (see \"warrenctl help\").")
}
