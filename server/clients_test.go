package server_test

// Other clients than amqp091-go, run unchanged against the broker: pika
// (Python), Celery (Python, through kombu and py-amqp), amqplib (Node.js)
// and librabbitmq (C, through its amqp-tools programs). CI installs them
// (.ci/run); elsewhere each test is skipped when its client is missing.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// python is Debian's Python, which Debian's python3-pika and python3-celery
// install into.
const python = "/usr/bin/python3"

// clientTimeout bounds a client run, so a broker that stalls fails the test
// instead of hanging it. No test asserts a time: a client that finishes,
// however slowly, passes.
const clientTimeout = 3 * time.Minute

// needClient skips the test unless probe runs (fails it under CI, which
// must have installed the client: install says how).
func needClient(t *testing.T, install string, probe ...string) {
	t.Helper()
	if err := exec.Command(probe[0], probe[1:]...).Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI must have this client (%s): %v", install, err)
		}
		t.Skipf("client not installed (%s)", install)
	}
}

// runClient runs a client program to its end and fails the test, with its
// output, unless it exits 0. It returns the output.
func runClient(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestPikaClient drives the broker with pika (testdata/pika_smoke.py).
func TestPikaClient(t *testing.T) {
	needClient(t, "apt-get install python3-pika", python, "-c", "import pika")
	b := start(t)
	product := "Warren"
	if isReference() {
		product = "RabbitMQ"
	}
	runClient(t, ".", nil, python, "testdata/pika_smoke.py", b.URL, product)
}

// TestCeleryClient runs a Celery worker against the broker and calls its
// tasks (testdata/celery): results over the rpc:// backend, a group of 50,
// a task's exception carried back to the caller, tasks acked late, and a
// broadcast ping answered by the worker.
func TestCeleryClient(t *testing.T) {
	needClient(t, "apt-get install python3-celery", python, "-c", "import celery")
	b := start(t)
	env := []string{
		"BROKER_URL=" + b.URL + "/", // vhost "/": Celery reads the path after the first slash
		"CELERY_QUEUE=" + uniq(t, "celery"),
	}
	ctx, cancel := context.WithCancel(context.Background())
	worker := exec.CommandContext(ctx, python, "-m", "celery", "-A", "tasks", "worker",
		"--pool=solo", "--loglevel=WARNING", "--without-heartbeat", "-n", uniq(t, "worker")+"@%h")
	worker.Dir = "testdata/celery"
	worker.Env = append(os.Environ(), env...)
	var log strings.Builder
	worker.Stdout, worker.Stderr = &log, &log
	if err := worker.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		_ = worker.Wait()
		if t.Failed() {
			t.Logf("worker output:\n%s", log.String())
		}
	}()
	if out := runClient(t, "testdata/celery", env, python, "client.py"); !strings.Contains(out, "celery ok") {
		t.Fatalf("client.py did not finish:\n%s", out)
	}
}

// TestAmqplibClient drives the broker with amqplib (testdata/amqplib).
func TestAmqplibClient(t *testing.T) {
	needClient(t, "npm ci --prefix server/testdata/amqplib", "node", "-e", "require('./testdata/amqplib/node_modules/amqplib')")
	b := start(t)
	if out := runClient(t, "testdata/amqplib", nil, "node", "smoke.js", b.URL); !strings.Contains(out, "amqplib ok") {
		t.Fatalf("smoke.js did not finish:\n%s", out)
	}
}

// TestLibrabbitmqClient drives the broker with the amqp-tools programs,
// built on librabbitmq (rabbitmq-c): a durable queue declared, persistent
// messages with properties and headers published, one got, two consumed
// with prefetch and acks (one left in the queue by a failing command),
// and the queue deleted with its count.
func TestLibrabbitmqClient(t *testing.T) {
	needClient(t, "apt-get install amqp-tools", "amqp-declare-queue", "--help")
	b := start(t)
	// librabbitmq reads a URL's path as the vhost, "/" as "": without one it
	// uses "/".
	u := strings.TrimSuffix(b.URL, "/")
	q := uniq(t, "librabbitmq")
	run := func(stdin string, name string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, append([]string{"-u", u}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if out := run("", "amqp-declare-queue", "-d", "-q", q); strings.TrimSpace(out) != q {
		t.Fatalf("amqp-declare-queue printed %q, want %q", out, q)
	}
	for i := range 3 {
		run(fmt.Sprintf("body %d", i), "amqp-publish", "-r", q, "-p", "-C", "text/plain", "-H", fmt.Sprintf("n: %d", i))
	}
	if out := run("", "amqp-get", "-q", q); out != "body 0" {
		t.Fatalf("amqp-get printed %q, want %q", out, "body 0")
	}
	// amqp-consume runs a command for each message, with its body on
	// stdin, and acks it only if the command exits 0: a failing one
	// leaves the message in the queue.
	run("", "amqp-consume", "-q", q, "-c", "1", "false")
	out := run("", "amqp-consume", "-q", q, "-c", "2", "-p", "1", "--", "sh", "-c", "cat; echo")
	if want := "body 1\nbody 2\n"; out != want {
		t.Fatalf("amqp-consume printed %q, want %q", out, want)
	}
	if out := run("", "amqp-delete-queue", "-q", q); strings.TrimSpace(out) != "0" {
		t.Fatalf("amqp-delete-queue printed %q, want the count 0", out)
	}
}
