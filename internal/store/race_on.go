//go:build race

package store

// raceEnabled: under the race detector the log is written through the
// syscall package, whose annotations order a file's write before its read
// in one process, as in rawsock.
const raceEnabled = true
