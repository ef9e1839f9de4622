// Package sysmem reads how much memory the broker's process may use, for
// defaults that scale with it.
package sysmem

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Files read by Limit; tests point them elsewhere.
var (
	meminfoPath    = "/proc/meminfo"
	selfCgroupPath = "/proc/self/cgroup"
	cgroupRoot     = "/sys/fs/cgroup"
)

// Limit returns the smaller of the machine's memory and the memory limits
// of the process's cgroup and the cgroups above it (a container's, or a
// systemd unit's MemoryMax), in bytes, and false when the machine's memory
// cannot be read (not Linux).
func Limit() (int64, bool) {
	b, err := os.ReadFile(meminfoPath)
	if err != nil {
		return 0, false
	}
	total, ok := memTotal(b)
	if !ok {
		return 0, false
	}
	for _, p := range cgroupFiles() {
		if b, err := os.ReadFile(p); err == nil {
			if n, ok := cgroupLimit(b); ok && n < total {
				total = n
			}
		}
	}
	return total, true
}

// cgroupFiles returns the memory limit files of the process's cgroups
// (from /proc/self/cgroup: cgroup v2's unified one, and v1's memory
// controller) and of every cgroup above them, up to the root.
func cgroupFiles() []string {
	type hierarchy struct{ dir, file, path string }
	hs := []hierarchy{
		{cgroupRoot, "memory.max", "/"},
		{filepath.Join(cgroupRoot, "memory"), "memory.limit_in_bytes", "/"},
	}
	if b, err := os.ReadFile(selfCgroupPath); err == nil {
		// Lines are "id:controllers:path"; v2's is "0::path".
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.SplitN(line, ":", 3)
			if len(f) != 3 || !strings.HasPrefix(f[2], "/") {
				continue
			}
			switch {
			case f[0] == "0" && f[1] == "":
				hs[0].path = f[2]
			case slices.Contains(strings.Split(f[1], ","), "memory"):
				hs[1].path = f[2]
			}
		}
	}
	var files []string
	for _, h := range hs {
		for p := filepath.Clean(h.path); ; p = filepath.Dir(p) {
			files = append(files, filepath.Join(h.dir, p, h.file))
			if p == "/" {
				break
			}
		}
	}
	return files
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
