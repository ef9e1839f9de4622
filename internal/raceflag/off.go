//go:build !race

// Package raceflag tells whether the race detector is built in. Raw
// system calls bypass the syscall package, whose annotations tell the
// detector that a write happens before the read that sees it, so the
// packages that make them (rawsock, store) go through the syscall package
// instead under the detector; tests that measure memory relax their bound
// there.
package raceflag

// Enabled is set when the program is built with the race detector.
const Enabled = false
