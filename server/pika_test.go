package server_test

import (
	"os"
	"os/exec"
	"testing"
)

// TestPikaClient drives Warren with pika, the Python client, unchanged
// (testdata/pika_smoke.py). CI installs Debian's python3-pika; elsewhere the
// test is skipped when it is missing.
func TestPikaClient(t *testing.T) {
	python := "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import pika").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI must have pika (Debian package python3-pika): %v", err)
		}
		t.Skip("pika is not installed (apt-get install python3-pika)")
	}
	b := start(t)
	product := "Warren"
	if isReference() {
		product = "RabbitMQ"
	}
	out, err := exec.Command(python, "testdata/pika_smoke.py", b.URL, product).CombinedOutput()
	if err != nil {
		t.Fatalf("pika smoke test against %s: %v\n%s", b.URL, err, out)
	}
}
