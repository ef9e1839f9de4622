//go:build race

package raceflag

// Enabled is set when the program is built with the race detector.
const Enabled = true
