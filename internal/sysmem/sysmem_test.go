package sysmem

import (
	"os"
	"path/filepath"
	"testing"
)

const meminfo = "MemTotal:       24591532 kB\nMemFree:        20000000 kB\n"

// withFiles points Limit at a meminfo and cgroup files of the test's own.
func withFiles(t *testing.T, mem string, cgroups ...string) {
	t.Helper()
	dir := t.TempDir()
	oldMem, oldCg := meminfoPath, cgroupPaths
	t.Cleanup(func() { meminfoPath, cgroupPaths = oldMem, oldCg })
	meminfoPath = filepath.Join(dir, "meminfo")
	if mem != "" {
		if err := os.WriteFile(meminfoPath, []byte(mem), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cgroupPaths = nil
	for i, c := range cgroups {
		p := filepath.Join(dir, "cgroup"+string(rune('0'+i)))
		if err := os.WriteFile(p, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
		cgroupPaths = append(cgroupPaths, p)
	}
	cgroupPaths = append(cgroupPaths, filepath.Join(dir, "absent"))
}

func TestLimit(t *testing.T) {
	const total = 24591532 << 10
	for _, tc := range []struct {
		name    string
		mem     string
		cgroups []string
		want    int64
		ok      bool
	}{
		{"machine only", meminfo, nil, total, true},
		{"cgroup v2 without a limit", meminfo, []string{"max\n"}, total, true},
		{"cgroup v1 without a limit", meminfo, []string{"9223372036854771712\n"}, total, true},
		{"container limit", meminfo, []string{"2147483648\n"}, 2 << 30, true},
		{"limit above the machine", meminfo, []string{"99999999999999\n"}, total, true},
		{"no meminfo", "", []string{"2147483648\n"}, 0, false},
		{"garbled meminfo", "MemTotal: lots kB\n", nil, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			withFiles(t, tc.mem, tc.cgroups...)
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
