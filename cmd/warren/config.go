package main

// Settings. Every flag in run's FlagSet is a setting, and each can be given
// in three places besides its default: on the command line, in a WARREN_*
// environment variable (see envName), and as a line of the config file named
// by --config or WARREN_CONFIG. The first of these that sets it wins:
// command line, then environment, then file, then default. A flag added to
// the FlagSet is therefore settable in all three and listed by --help with
// nothing more to do.
//
// The config file is written like rabbitmq.conf, one "key = value" a line:
//
//	# Lines starting with # are comments; blank lines are ignored.
//	amqp-addr = 127.0.0.1:5672
//	data-dir = "/var/lib/warren"
//	log-format = json
//
// A key is a flag's name. Space around the key and the value is dropped, and
// a value may be put in double quotes (to keep space at its ends, say). A
// line without "=", an unknown or repeated key, or a value the flag rejects
// is an error naming the file and line; so is the key config, since a file
// cannot name another.

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
)

// configFlag is the name of the flag naming the config file.
const configFlag = "config"

// configure sets fs's flags from args, the environment and the config file,
// in that order of precedence. fs must have a string flag named configFlag.
// If args ask for help, it calls fs.Usage and returns flag.ErrHelp.
func configure(fs *flag.FlagSet, args []string) error {
	// The command line is parsed twice: first to report a bad flag or
	// --help before anything else is read and to find --config, then again
	// after the file and the environment are applied, so that its values
	// are the ones left standing. Parsing the same args again cannot fail.
	if err := fs.Parse(args); err != nil {
		return err
	}
	path, onCommandLine := "", false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == configFlag {
			path, onCommandLine = f.Value.String(), true
		}
	})
	if !onCommandLine {
		path = os.Getenv(envName(configFlag))
	}
	if path != "" {
		if err := loadConfig(fs, path); err != nil {
			return err
		}
	}
	if err := applyEnv(fs); err != nil {
		return err
	}
	return fs.Parse(args)
}

// applyEnv sets each flag of fs whose WARREN_* variable is set.
func applyEnv(fs *flag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if v, ok := os.LookupEnv(envName(f.Name)); ok && err == nil {
			if serr := fs.Set(f.Name, v); serr != nil { // fs.Set: isSet sees it
				err = fmt.Errorf("%s=%q: %w", envName(f.Name), v, serr)
			}
		}
	})
	return err
}

// loadConfig sets fs's flags from the config file at path.
func loadConfig(fs *flag.FlagSet, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("--%s: %w", configFlag, err)
	}
	defer f.Close()
	return readConfig(fs, path, f)
}

// readConfig sets fs's flags from the config file text in r. name is the
// file's name, used in errors.
func readConfig(fs *flag.FlagSet, name string, r io.Reader) error {
	firstLine := make(map[string]int) // key -> line that set it
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return fmt.Errorf("%s:%d: %q is not a key = value line", name, n, line)
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		f := fs.Lookup(key)
		switch {
		case key == "":
			return fmt.Errorf("%s:%d: no key before \"=\"", name, n)
		case key == configFlag:
			return fmt.Errorf("%s:%d: setting %q cannot be set in a config file", name, n, key)
		case f == nil:
			return fmt.Errorf("%s:%d: unknown setting %q", name, n, key)
		}
		if first, ok := firstLine[key]; ok {
			return fmt.Errorf("%s:%d: setting %q repeated (first set on line %d)", name, n, key, first)
		}
		firstLine[key] = n
		if strings.HasPrefix(value, `"`) {
			if len(value) < 2 || !strings.HasSuffix(value, `"`) {
				return fmt.Errorf("%s:%d: value of %q has no closing quote", name, n, key)
			}
			value = value[1 : len(value)-1]
		}
		if err := fs.Set(key, value); err != nil { // fs.Set: isSet sees it
			return fmt.Errorf("%s:%d: invalid value %q for %q: %w", name, n, value, key, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// usage prints the help for fs: each flag with its variable, config key and
// default, so a flag added to fs is listed without more ado.
func usage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprintf(w, `Usage: warren [flags]

Runs the Warren AMQP 0-9-1 broker. Each setting may be given as a flag, as
the environment variable shown, or as a "key = value" line in the config file
named by --%s, one setting a line as in rabbitmq.conf:

    # a comment
    amqp-addr = 127.0.0.1:5672
    data-dir = "/var/lib/warren"

A flag on the command line wins over the environment, which wins over the file.

`, configFlag)
	fs.VisitAll(func(f *flag.Flag) {
		key := ", file: " + f.Name
		if f.Name == configFlag {
			key = ""
		}
		fmt.Fprintf(w, "  --%s (%s%s, default %q)\n    \t%s\n", f.Name, envName(f.Name), key, f.DefValue, f.Usage)
	})
}

// checkedString is a string flag.Value that refuses values check rejects,
// so that a bad value is reported where it was given (with its file and
// line if it came from the config file).
type checkedString struct {
	value *string
	check func(string) error
}

func (s checkedString) String() string {
	if s.value == nil {
		return ""
	}
	return *s.value
}

func (s checkedString) Set(v string) error {
	if err := s.check(v); err != nil {
		return err
	}
	*s.value = v
	return nil
}

// checkedStringFlag defines a string flag on fs whose values must pass check.
func checkedStringFlag(fs *flag.FlagSet, name, value, usage string, check func(string) error) *string {
	p := &value
	fs.Var(checkedString{p, check}, name, usage)
	return p
}

// oneOf returns a check accepting only the given values.
func oneOf(values ...string) func(string) error {
	return func(v string) error {
		if slices.Contains(values, v) {
			return nil
		}
		return fmt.Errorf("%q is not %s or %s", v, strings.Join(values[:len(values)-1], ", "), values[len(values)-1])
	}
}

// isLogLevel checks that v names a slog level.
func isLogLevel(v string) error {
	var l slog.Level
	return l.UnmarshalText([]byte(v))
}
