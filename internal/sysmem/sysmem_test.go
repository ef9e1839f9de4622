package sysmem

import (
	"os"
	"path/filepath"
	"testing"
)

const meminfo = "MemTotal:       24591532 kB\nMemFree:        20000000 kB\n"

// withFiles points Limit at files of the test's own: meminfo (none if
// empty), /proc/self/cgroup's text, and files under the cgroup root by
// their paths relative to it.
func withFiles(t *testing.T, mem, self string, cgroups map[string]string) {
	t.Helper()
	dir := t.TempDir()
	oldMem, oldSelf, oldRoot := meminfoPath, selfCgroupPath, cgroupRoot
	t.Cleanup(func() { meminfoPath, selfCgroupPath, cgroupRoot = oldMem, oldSelf, oldRoot })
	meminfoPath = filepath.Join(dir, "meminfo")
	selfCgroupPath = filepath.Join(dir, "self-cgroup")
	cgroupRoot = filepath.Join(dir, "cgroup")
	write := func(path, text string) {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if mem != "" {
		write(meminfoPath, mem)
	}
	if self != "" {
		write(selfCgroupPath, self)
	}
	for rel, text := range cgroups {
		write(filepath.Join(cgroupRoot, rel), text)
	}
}

func TestLimit(t *testing.T) {
	const total = 24591532 << 10
	const unit = "0::/system.slice/warren.service\n"
	for _, tc := range []struct {
		name    string
		mem     string
		self    string
		cgroups map[string]string
		want    int64
		ok      bool
	}{
		{"machine only", meminfo, "", nil, total, true},
		{"cgroup v2 without a limit", meminfo, "0::/\n", map[string]string{"memory.max": "max\n"}, total, true},
		{"cgroup v1 without a limit", meminfo, "", map[string]string{"memory/memory.limit_in_bytes": "9223372036854771712\n"}, total, true},
		{"container limit at the root", meminfo, "0::/\n", map[string]string{"memory.max": "2147483648\n"}, 2 << 30, true},
		{"limit above the machine", meminfo, "", map[string]string{"memory.max": "99999999999999\n"}, total, true},
		{"systemd unit's MemoryMax", meminfo, unit, map[string]string{
			"memory.max":                             "max\n",
			"system.slice/memory.max":                "max\n",
			"system.slice/warren.service/memory.max": "1073741824\n",
			"system.slice/other.service/memory.max":  "1048576\n",
		}, 1 << 30, true},
		{"a parent's limit", meminfo, unit, map[string]string{
			"system.slice/memory.max":                "3221225472\n",
			"system.slice/warren.service/memory.max": "max\n",
		}, 3 << 30, true},
		{"cgroup v1 memory controller", meminfo, "12:cpu,cpuacct:/docker/abc\n7:memory:/docker/abc\n0::/\n", map[string]string{
			"memory/docker/abc/memory.limit_in_bytes": "536870912\n",
		}, 512 << 20, true},
		{"no meminfo", "", "", map[string]string{"memory.max": "2147483648\n"}, 0, false},
		{"garbled meminfo", "MemTotal: lots kB\n", "", nil, 0, false},
		{"garbled cgroup files", meminfo, "garbage\n0::relative\n::\n", map[string]string{"memory.max": "-5\n"}, total, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			withFiles(t, tc.mem, tc.self, tc.cgroups)
			got, ok := Limit()
			if got != tc.want || ok != tc.ok {
				t.Fatalf("Limit() = %d, %v; want %d, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestLimitHere reads this machine's figures, which must be plausible.
func TestLimitHere(t *testing.T) {
	n, ok := Limit()
	if _, err := os.Stat("/proc/meminfo"); err != nil {
		if ok {
			t.Fatalf("Limit() = %d without /proc/meminfo", n)
		}
		t.Skip("no /proc/meminfo")
	}
	if !ok || n < 64<<20 {
		t.Fatalf("Limit() = %d, %v", n, ok)
	}
}
