package store

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// crashChildEnv, when set to a directory, makes TestCompactionCrash the
// child process that TestCompactionCrash kills.
const crashChildEnv = "WARREN_STORE_COMPACTION_CRASH_DIR"

// crashKeep: the child never deletes a seq that is a multiple of it, so
// every compaction has data from before it to carry over.
const crashKeep = 100

// TestCompactionCrash kills, with SIGKILL at a random moment, a process
// that fills and drains a queue in rounds, its store compacting after
// each, and checks after every kill that each message the process had
// seen synced, and had not begun to delete, is in the store (among them a
// few from every round, kept for good), and that the store checks clean.
func TestCompactionCrash(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		compactionCrashChild(dir)
		return
	}
	dir := t.TempDir()
	var compactions uint64
	// deleted carries over: the seqs an earlier cycle deleted are gone
	// for good, and a cycle killed before its own first "del" deleted
	// nothing more.
	var deleted uint64
	for cycle := range 6 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCompactionCrash$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The child prints "ok S" once seqs up to S are synced, "del D"
		// before it deletes seqs up to D, and "compactions N", how many
		// it has done, after each round.
		var synced, cycleCompactions uint64
		lines := make(chan string)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		kill := time.After(time.Duration(200+rand.IntN(1800)) * time.Millisecond)
		killed := false
		for line := range lines {
			var n uint64
			switch {
			case strings.HasPrefix(line, "ok "):
				fmt.Sscan(line[3:], &n)
				synced = n
			case strings.HasPrefix(line, "del "):
				fmt.Sscan(line[4:], &n)
				deleted = n
			case strings.HasPrefix(line, "compactions "):
				fmt.Sscan(line[12:], &n)
				cycleCompactions = n
			default:
				t.Fatalf("child: %s", line)
			}
			if killed {
				continue
			}
			select {
			case <-kill:
				// Kill once it has synced something this cycle.
				if synced > deleted {
					cmd.Process.Kill()
					killed = true
				}
			default:
			}
		}
		cmd.Wait()
		compactions += cycleCompactions
		if !killed {
			t.Fatalf("cycle %d: the child ended on its own", cycle)
		}

		s := openTest(t, dir, Options{})
		rec, err := s.Recover()
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.Queues) != 1 {
			t.Fatalf("cycle %d: queues %+v", cycle, rec.Queues)
		}
		// Every synced seq must be there but those being deleted, which
		// may be there or not (at least once); the child never deletes
		// a multiple of crashKeep.
		held := make(map[uint64]bool)
		for _, seq := range seqs(load(t, s, rec.Queues[0].ID)) {
			held[seq] = true
		}
		for seq := uint64(1); seq <= synced; seq++ {
			if (seq > deleted || seq%crashKeep == 0) && !held[seq] {
				t.Fatalf("cycle %d: synced %d, deleting up to %d; seq %d missing (store holds %d entries)", cycle, synced, deleted, seq, len(held))
			}
		}
		if err := s.Check(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if compactions == 0 {
		t.Fatal("no compaction happened in any cycle: the test did not test them")
	}
	t.Logf("%d compactions in 6 cycles", compactions)
}

// compactionCrashChild runs until killed: rounds of 500 synced 4 KiB
// messages in a queue, then the deletion of all but the last 10, which
// leaves the file mostly free and the store compacting.
func compactionCrashChild(dir string) {
	compactMinFree, compactMaxLive = 1<<20, 1<<20
	fail := func(err error) {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	s, err := Open(dir, Options{})
	if err != nil {
		fail(err)
	}
	rec, err := s.Recover()
	if err != nil {
		fail(err)
	}
	var id, next, lo uint64 = 0, 1, 1
	if len(rec.Queues) == 1 {
		id, next, lo = rec.Queues[0].ID, rec.Queues[0].Hi+1, rec.Queues[0].Lo
	} else {
		id = s.NewQueueID()
		s.PutQueue(QueueRecord{Name: "q", ID: id})
	}
	for {
		for range 500 {
			s.Put(id, next, msg("c", 4096), 0, false)
			next++
		}
		// Applied to bbolt, not only synced: deletes in the same
		// checkpoint would cancel the puts, and nothing would be freed.
		if err := s.Wait(s.Pending()); err != nil {
			fail(err)
		}
		fmt.Println("ok", next-1)
		hi := next - 11
		fmt.Println("del", hi)
		for seq := max(lo, 1); seq <= hi; seq++ {
			if seq%crashKeep != 0 {
				s.Delete(id, seq)
			}
		}
		lo = hi + 1
		if err := s.Wait(s.Pending()); err != nil {
			fail(err)
		}
		fmt.Println("compactions", s.Stats().Compactions)
	}
}
