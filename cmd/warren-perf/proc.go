package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/procfs"
)

// The broker's CPU and memory come from /proc (Linux), for a broker on
// this host: its process is found from the port it listens on.

// brokerPID finds the process listening on the URI's port on this host,
// or 0.
func brokerPID(uri string) int {
	u, err := url.Parse(uri)
	if err != nil {
		return 0
	}
	host, portStr := u.Hostname(), u.Port()
	if portStr == "" {
		portStr = "5672"
	}
	if ip := net.ParseIP(host); !(host == "localhost" || ip != nil && ip.IsLoopback()) {
		return 0
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return 0
	}
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		listeningInodes(f, port, inodes)
	}
	if len(inodes) == 0 {
		return 0
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range procs {
		link, err := os.Readlink(fd)
		if err != nil || !strings.HasPrefix(link, "socket:[") {
			continue
		}
		if inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] {
			pid, _ := strconv.Atoi(strings.Split(fd, "/")[2])
			return pid
		}
	}
	return 0
}

// listeningInodes adds the socket inodes listening on port from a
// /proc/net/tcp table.
func listeningInodes(file string, port int, into map[string]bool) {
	f, err := os.Open(file)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	want := fmt.Sprintf(":%04X", port)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// sl local_address rem_address st ... inode (field 9)
		if len(fields) > 9 && strings.HasSuffix(fields[1], want) && fields[3] == "0A" {
			into[fields[9]] = true
		}
	}
}

// stat reads a process's /proc stat (pid 0: this process).
func stat(pid int) (procfs.ProcStat, bool) {
	var p procfs.Proc
	var err error
	if pid == 0 {
		p, err = procfs.Self()
	} else {
		p, err = procfs.NewProc(pid)
	}
	if err != nil {
		return procfs.ProcStat{}, false
	}
	st, err := p.Stat()
	return st, err == nil
}

// processCPU is the user+system CPU time of a process (0: this one) in
// seconds, or 0 if unknown.
func processCPU(pid int) float64 {
	st, ok := stat(pid)
	if !ok {
		return 0
	}
	return st.CPUTime()
}

// processRSS is a process's resident set size in bytes, or 0.
func processRSS(pid int) int64 {
	st, ok := stat(pid)
	if pid == 0 || !ok {
		return 0
	}
	return int64(st.ResidentMemory())
}

// Settling between runs: a broker may still be busy after a run (writing
// a backlog to disk, collecting garbage), and on a shared machine that
// would be measured against the next run, of the other broker.
const (
	settleSample = 250 * time.Millisecond
	settleIdle   = 0.1 // of a core: below this a broker counts as idle
)

// waitIdle waits until every process of pids (0s are skipped) uses less
// than settleIdle of a core over settleSample, at most settleMax.
func waitIdle(ctx context.Context, pids []int, settleMax time.Duration) {
	start := time.Now()
	last := make([]float64, len(pids))
	for i, pid := range pids {
		if pid != 0 {
			last[i] = processCPU(pid)
		}
	}
	for time.Since(start) < settleMax {
		select {
		case <-ctx.Done():
			return
		case <-time.After(settleSample):
		}
		idle := true
		for i, pid := range pids {
			if pid == 0 {
				continue
			}
			cpu := processCPU(pid)
			if (cpu-last[i])/settleSample.Seconds() >= settleIdle {
				idle = false
			}
			last[i] = cpu
		}
		if idle {
			return
		}
	}
}
