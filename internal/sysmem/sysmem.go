// Package sysmem reads how much memory the broker's process may use, for
// defaults that scale with it.
package sysmem

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
)

// Files read by Limit; tests point them elsewhere.
var (
	meminfoPath = "/proc/meminfo"
	cgroupPaths = []string{
		"/sys/fs/cgroup/memory.max",                   // cgroup v2
		"/sys/fs/cgroup/memory/memory.limit_in_bytes", // cgroup v1
	}
)

// Limit returns the smaller of the machine's memory and the memory limit
// of the process's cgroup (a container's), in bytes, and false when the
// machine's memory cannot be read (not Linux).
func Limit() (int64, bool) {
	b, err := os.ReadFile(meminfoPath)
	if err != nil {
		return 0, false
	}
	total, ok := memTotal(b)
	if !ok {
		return 0, false
	}
	for _, p := range cgroupPaths {
		if b, err := os.ReadFile(p); err == nil {
			if n, ok := cgroupLimit(b); ok && n < total {
				total = n
			}
		}
	}
	return total, true
}

// memTotal returns MemTotal from the text of /proc/meminfo, in bytes.
func memTotal(meminfo []byte) (int64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(meminfo))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "MemTotal:" && f[2] == "kB" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil || kb <= 0 || kb > 1<<52 {
				return 0, false
			}
			return kb << 10, true
		}
	}
	return 0, false
}

// cgroupLimit parses a cgroup memory limit file: a number of bytes, or
// "max" (v2) or a huge number (v1) for none.
func cgroupLimit(b []byte) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n <= 0 || n >= 1<<62 {
		return 0, false
	}
	return n, true
}
