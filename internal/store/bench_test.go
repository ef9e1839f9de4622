package store

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/warrenmq/warren/queue"
)

// buildStore fills a store in dir through the public API with n persistent
// 1 KiB messages spread over queues durable queues, plus a few transient
// ones and an orphan queue for Recover to drop.
func buildStore(tb testing.TB, dir string, n, queues int) {
	tb.Helper()
	s, err := Open(dir, Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	body := make([]byte, 1024)
	ids := make([]uint64, queues)
	for i := range ids {
		ids[i] = s.NewQueueID()
		s.PutQueue(QueueRecord{Name: "q" + string(rune('a'+i)), ID: ids[i]})
	}
	for i := range n {
		q := i % queues
		m := &queue.Message{Exchange: "amq.direct", RoutingKey: "k", Body: body, Persistent: true}
		s.Put(ids[q], uint64(i/queues+1), m, 0, false)
		if i%10000 == 9999 {
			if err := s.Wait(s.Pending()); err != nil {
				tb.Fatal(err)
			}
		}
	}
	orphan := s.NewQueueID()
	for seq := uint64(1); seq <= 1000; seq++ {
		s.Put(ids[0], uint64(n)+seq, &queue.Message{Body: body}, 0, true)
		s.Put(orphan, seq, &queue.Message{Body: body}, 0, true)
	}
	if err := s.Wait(s.Pending()); err != nil {
		tb.Fatal(err)
	}
}

// openRecover opens the store in dir, recovers it and checks the counts.
func openRecover(tb testing.TB, dir string, n int) {
	s, err := Open(dir, Options{})
	if err != nil {
		tb.Fatal(err)
	}
	rec, err := s.Recover()
	if err != nil {
		tb.Fatal(err)
	}
	total := 0
	for _, q := range rec.Queues {
		total += q.Count
	}
	if total != n {
		tb.Fatalf("recovered %d messages, want %d", total, n)
	}
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
}

const bigN = 1_000_000

// BenchmarkOpenRecover1M times Open+Recover+Close of a store holding a
// million 1 KiB messages (about 1.2 GB of disk). Building it takes a while.
func BenchmarkOpenRecover1M(b *testing.B) {
	dir := b.TempDir()
	buildStore(b, dir, bigN, 4)
	openRecover(b, dir, bigN) // the first one drops the transient entries
	for b.Loop() {
		openRecover(b, dir, bigN)
	}
}

// TestOpenRecover1M logs how long Open+Recover take on a store of a million
// 1 KiB messages. Set WARREN_BIG=1 to run it.
func TestOpenRecover1M(t *testing.T) {
	if os.Getenv("WARREN_BIG") == "" {
		t.Skip("set WARREN_BIG=1 to build a 1M-message store")
	}
	dir := t.TempDir()
	start := time.Now()
	buildStore(t, dir, bigN, 4)
	t.Logf("built %d messages in %v", bigN, time.Since(start))
	for i := range 3 {
		start = time.Now()
		openRecover(t, dir, bigN)
		t.Logf("open+recover #%d: %v", i+1, time.Since(start))
	}
	start = time.Now()
	if err := CheckDir(dir); err != nil {
		t.Fatal(err)
	}
	t.Logf("CheckDir: %v", time.Since(start))

	// As after kill -9: the file as the last commit left it, without the
	// free page list that only a clean Close writes, so Open walks the
	// pages to rebuild it.
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Put(s.NewQueueID(), 1, &queue.Message{Body: []byte("x")}, 0, true)
	mustWait(t, s, s.Pending())
	crashed := t.TempDir()
	copyFile(t, filepath.Join(dir, FileName), filepath.Join(crashed, FileName))
	s.Close()
	start = time.Now()
	openRecover(t, crashed, bigN)
	t.Logf("open+recover after a crash: %v", time.Since(start))
}

func copyFile(t testing.TB, from, to string) {
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkPut times logging and committing 1 KiB messages, waiting for
// every 100th.
func BenchmarkPut(b *testing.B) {
	s := openTest(b, "", Options{})
	id := s.NewQueueID()
	m := &queue.Message{Body: make([]byte, 1024)}
	b.SetBytes(1024)
	var seq uint64
	for b.Loop() {
		seq++
		s.Put(id, seq, m, 0, false)
		if seq%100 == 0 {
			mustWait(b, s, s.Pending())
		}
	}
	mustWait(b, s, s.Pending())
	st := s.Stats()
	b.ReportMetric(float64(st.Ops)/float64(max(st.Commits, 1)), "ops/commit")
}
