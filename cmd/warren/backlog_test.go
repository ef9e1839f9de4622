package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// The backlog benchmark's fixed shape.
const (
	backlogQueue       = "backlog"
	backlogBody        = 1024             // bytes per message
	backlogOutstanding = 1000             // unconfirmed publishes per publisher
	backlogPrefetch    = 1000             // the consumer's basic.qos
	backlogAckEvery    = 100              // the consumer acks with multiple every this many
	backlogPhaseLimit  = 60 * time.Minute // a failure bound per phase, not an expectation
	backlogSampleEvery = 500 * time.Millisecond
)

// BenchmarkBacklogRSS runs the warren binary as a subprocess, builds a
// backlog of N persistent 1 KiB messages in one durable queue (N from
// WARREN_BACKLOG, default 1,000,000) with publishers in confirm mode, then
// drains it with one consumer, checking that every message arrives once
// and in each publisher's order. It samples the broker's VmRSS every 500 ms
// and reports the publish and drain rates, the RSS at the start, the peak
// RSS of each phase, the RSS at the end and the data dir's size at its
// peak. It does the work once whatever b.N is: run it with -benchtime 1x.
//
// WARREN_BACKLOG_PUBLISHERS sets the number of publisher connections
// (default 3). The broker inherits the environment, so WARREN_QUEUE_WINDOW
// (--queue-window) and GODEBUG reach it too.
func BenchmarkBacklogRSS(b *testing.B) {
	n := envInt(b, "WARREN_BACKLOG", 1_000_000)
	pubs := envInt(b, "WARREN_BACKLOG_PUBLISHERS", 3)
	if n < 1 || pubs < 1 || pubs > 255 {
		b.Fatalf("WARREN_BACKLOG=%d, WARREN_BACKLOG_PUBLISHERS=%d: want N >= 1 and 1..255 publishers", n, pubs)
	}
	dir := b.TempDir()
	pid, url := startBacklogBroker(b, dir)

	conn, ch, err := dialChannel(url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	if _, err := ch.QueueDeclare(backlogQueue, true, false, false, false, nil); err != nil {
		b.Fatal(err)
	}

	startRSS, err := readRSS(pid)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("N=%d publishers=%d data dir %s; broker pid %d; RSS at start %.1f MiB (anon %.1f, file %.1f); WARREN_QUEUE_WINDOW=%q GODEBUG=%q",
		n, pubs, dir, pid, mib(startRSS.rss), mib(startRSS.anon), mib(startRSS.file), os.Getenv("WARREN_QUEUE_WINDOW"), os.Getenv("GODEBUG"))

	var progress atomic.Int64 // confirmed, then consumed, messages
	smp := &rssSampler{b: b, pid: pid, dir: dir, n: int64(n), progress: &progress}
	stopSampler := smp.start()
	defer stopSampler()
	b.ResetTimer()

	// Build-up.
	smp.setPhase("build")
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), backlogPhaseLimit)
	counts := make([]int, pubs)
	errs := make(chan error, pubs)
	for p := range pubs {
		counts[p] = n / pubs
		if p < n%pubs {
			counts[p]++
		}
		go func() { errs <- publishBacklog(ctx, url, byte(p), counts[p], &progress) }()
	}
	for range pubs {
		if err := <-errs; err != nil {
			cancel()
			b.Fatalf("build-up: %v (after %v, %d of %d confirmed)", err, time.Since(began).Round(time.Second), progress.Load(), n)
		}
	}
	cancel()
	built := time.Since(began)
	if got := progress.Load(); got != int64(n) {
		b.Fatalf("build-up: %d confirmed, want %d", got, n)
	}
	if q, err := ch.QueueDeclarePassive(backlogQueue, true, false, false, false, nil); err != nil {
		b.Fatal(err)
	} else if q.Messages != n {
		b.Fatalf("after the build-up the queue holds %d messages, want %d", q.Messages, n)
	}
	smp.sampleNow() // the peak data dir size is reached here: the drain only frees pages
	buildPeak, peakData := smp.endPhase()
	b.Logf("build-up: %d messages in %v, %.0f msg/s; peak RSS %.1f MiB; data dir %.1f MiB",
		n, built.Round(time.Millisecond), float64(n)/built.Seconds(), mib(buildPeak), mib(peakData))

	// Drain.
	progress.Store(0)
	smp.setPhase("drain")
	began = time.Now()
	ctx, cancel = context.WithTimeout(context.Background(), backlogPhaseLimit)
	defer cancel()
	if err := drainBacklog(ctx, url, counts, &progress); err != nil {
		b.Fatalf("drain: %v (after %v, %d of %d consumed)", err, time.Since(began).Round(time.Second), progress.Load(), n)
	}
	drained := time.Since(began)
	// The acks are asynchronous: wait for the broker to have settled them.
	deadline := time.Now().Add(time.Minute)
	for {
		q, err := ch.QueueDeclarePassive(backlogQueue, true, false, false, false, nil)
		if err != nil {
			b.Fatal(err)
		}
		if q.Messages == 0 && q.Consumers == 0 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("after the drain the queue still holds %d ready messages, %d consumers", q.Messages, q.Consumers)
		}
		time.Sleep(100 * time.Millisecond)
	}
	smp.sampleNow()
	drainPeak, _ := smp.endPhase()
	b.StopTimer()
	end, err := readRSS(pid)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("drain: %d messages in %v, %.0f msg/s; peak RSS %.1f MiB; RSS at the end %.1f MiB (anon %.1f, file %.1f)",
		n, drained.Round(time.Millisecond), float64(n)/drained.Seconds(), mib(drainPeak), mib(end.rss), mib(end.anon), mib(end.file))

	// Idle a little, to show what the runtime gives back to the OS.
	smp.setPhase("idle")
	time.Sleep(10 * time.Second)
	smp.sampleNow()
	idle, err := readRSS(pid)
	if err != nil {
		b.Fatal(err)
	}
	smp.endPhase()
	b.Logf("idle 10s after the drain: RSS %.1f MiB (anon %.1f, file %.1f)", mib(idle.rss), mib(idle.anon), mib(idle.file))

	b.ReportMetric(float64(n)/built.Seconds(), "pub-msg/s")
	b.ReportMetric(float64(n)/drained.Seconds(), "drain-msg/s")
	b.ReportMetric(mib(startRSS.rss), "start-RSS-MiB")
	b.ReportMetric(mib(buildPeak), "build-peak-RSS-MiB")
	b.ReportMetric(mib(drainPeak), "drain-peak-RSS-MiB")
	b.ReportMetric(mib(end.rss), "end-RSS-MiB")
	b.ReportMetric(mib(idle.rss), "idle10s-RSS-MiB")
	b.ReportMetric(mib(peakData), "peak-data-MiB")
}

// startBacklogBroker runs the binary on dir, on 127.0.0.1 with heartbeats
// off, and returns its pid and AMQP URL.
func startBacklogBroker(tb testing.TB, dir string) (int, string) {
	tb.Helper()
	cmd, lines := startWarren(tb, nil, "--data-dir", dir, "--amqp-addr", "127.0.0.1:0", "--heartbeat", "0")
	return cmd.Process.Pid, "amqp://guest:guest@" + waitForAddr(tb, lines) + "/"
}

// backlogMessage is the body of publisher p's message seq: p, seq, then
// filler derived from both.
func backlogMessage(buf []byte, p byte, seq uint64) []byte {
	buf = buf[:backlogBody]
	buf[0] = p
	binary.BigEndian.PutUint64(buf[1:9], seq)
	for i := 9; i < len(buf); i++ {
		buf[i] = byte(seq) + byte(i) + p
	}
	return buf
}

// publishBacklog publishes count persistent messages, seqs 1 to count, as
// publisher p, keeping backlogOutstanding of them unconfirmed, and returns
// once every one is confirmed, adding each confirm to confirmed.
func publishBacklog(ctx context.Context, url string, p byte, count int, confirmed *atomic.Int64) error {
	conn, ch, confirms, err := dialConfirming(url, backlogOutstanding)
	if err != nil {
		return err
	}
	defer conn.Close()
	buf := make([]byte, backlogBody)
	var sent, acked uint64
	for acked < uint64(count) {
		for sent < uint64(count) && sent-acked < backlogOutstanding {
			sent++
			body := backlogMessage(buf, p, sent)
			if err := ch.PublishWithContext(ctx, "", backlogQueue, false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: body}); err != nil {
				return fmt.Errorf("publisher %d: publish %d: %w", p, sent, err)
			}
		}
		select {
		case c, ok := <-confirms:
			if !ok {
				return fmt.Errorf("publisher %d: channel closed with %d of %d confirmed", p, acked, count)
			}
			if !c.Ack {
				return fmt.Errorf("publisher %d: message %d nacked", p, c.DeliveryTag)
			}
			if c.DeliveryTag != acked+1 {
				return fmt.Errorf("publisher %d: confirm of tag %d, want %d", p, c.DeliveryTag, acked+1)
			}
			acked++
			confirmed.Add(1)
		case <-ctx.Done():
			return fmt.Errorf("publisher %d: %w with %d of %d confirmed", p, ctx.Err(), acked, count)
		}
	}
	return nil
}

// drainBacklog consumes every message the publishers sent (counts[p] from
// publisher p) with one consumer, checking that each comes once, in its
// publisher's order, with its body intact, and adding each to consumed.
func drainBacklog(ctx context.Context, url string, counts []int, consumed *atomic.Int64) error {
	conn, ch, err := dialChannel(url)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := ch.Qos(backlogPrefetch, 0, false); err != nil {
		return err
	}
	msgs, err := ch.Consume(backlogQueue, "backlog-drain", false, false, false, false, nil)
	if err != nil {
		return err
	}
	total := 0
	for _, c := range counts {
		total += c
	}
	last := make([]uint64, len(counts))
	want := make([]byte, backlogBody)
	for got := 0; got < total; {
		var d amqp.Delivery
		var ok bool
		select {
		case d, ok = <-msgs:
		case <-ctx.Done():
			return ctx.Err()
		}
		if !ok {
			return errors.New("the consumer's channel closed")
		}
		got++
		if len(d.Body) < 9 {
			return fmt.Errorf("delivery %d: %d-byte body", got, len(d.Body))
		}
		p, seq := d.Body[0], binary.BigEndian.Uint64(d.Body[1:9])
		switch {
		case int(p) >= len(counts):
			return fmt.Errorf("delivery %d: from publisher %d, but there are %d", got, p, len(counts))
		case seq != last[p]+1:
			return fmt.Errorf("delivery %d: publisher %d's message %d after its %d", got, p, seq, last[p])
		case d.Redelivered:
			return fmt.Errorf("delivery %d: publisher %d's message %d is redelivered", got, p, seq)
		case !bytes.Equal(d.Body, backlogMessage(want, p, seq)):
			return fmt.Errorf("delivery %d: publisher %d's message %d has a wrong body (%d bytes)", got, p, seq, len(d.Body))
		}
		last[p] = seq
		consumed.Add(1)
		if got%backlogAckEvery == 0 || got == total {
			if err := d.Ack(true); err != nil {
				return err
			}
		}
	}
	for p, c := range counts {
		if last[p] != uint64(c) {
			return fmt.Errorf("publisher %d: last message consumed %d, want %d", p, last[p], c)
		}
	}
	// Nothing more may come.
	select {
	case d, ok := <-msgs:
		if ok {
			return fmt.Errorf("an extra delivery after all %d: %d bytes", total, len(d.Body))
		}
	case <-time.After(500 * time.Millisecond):
	}
	return ch.Cancel("backlog-drain", false)
}

// rss is what /proc/PID/status says of a process's resident memory, in
// bytes.
type rss struct{ rss, anon, file int64 }

// readRSS reads VmRSS, RssAnon and RssFile of pid.
func readRSS(pid int) (rss, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return rss{}, err
	}
	var r rss
	for line := range strings.Lines(string(data)) {
		name, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var dst *int64
		switch name {
		case "VmRSS":
			dst = &r.rss
		case "RssAnon":
			dst = &r.anon
		case "RssFile":
			dst = &r.file
		default:
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return rss{}, fmt.Errorf("/proc/%d/status: %q: %w", pid, line, err)
		}
		*dst = kb << 10
	}
	if r.rss == 0 {
		return rss{}, fmt.Errorf("/proc/%d/status has no VmRSS", pid)
	}
	return r, nil
}

// dirSize is the disk space the files under dir take (their allocated
// blocks) and their apparent size.
func dirSize(dir string) (used, apparent int64) {
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		apparent += fi.Size()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			used += st.Blocks * 512
		} else {
			used += fi.Size()
		}
		return nil
	})
	return used, apparent
}

func mib(bytes int64) float64 { return float64(bytes) / (1 << 20) }

// envInt returns the integer in the environment variable name, or def if
// it is unset. Underscores may group digits.
func envInt(tb testing.TB, name string, def int) int {
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return def
	}
	n, err := strconv.Atoi(strings.ReplaceAll(v, "_", ""))
	if err != nil {
		tb.Fatalf("%s=%q: %v", name, v, err)
	}
	return n
}

// rssSampler samples the broker's RSS every backlogSampleEvery, keeping
// each phase's peak, and logs the samples every 10% of a phase's progress.
type rssSampler struct {
	b        *testing.B
	pid      int
	dir      string
	n        int64
	progress *atomic.Int64

	mu        sync.Mutex
	phase     string
	began     time.Time
	peak      int64 // VmRSS, this phase
	peakData  int64 // allocated bytes of the data dir, this phase
	logged    int   // tenths of progress logged this phase
	pending   []rss // samples since the last log line
	lastData  int64
	lastApp   int64
	readFails int
}

func (s *rssSampler) start() (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(backlogSampleEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				s.sampleNow()
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

// setPhase starts a phase.
func (s *rssSampler) setPhase(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.phase, s.began, s.peak, s.peakData, s.logged, s.pending = name, time.Now(), 0, 0, 0, nil
}

// sampleNow takes one sample, and logs a line if progress crossed another
// tenth of N.
func (s *rssSampler) sampleNow() {
	r, err := readRSS(s.pid)
	used, apparent := dirSize(s.dir)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.readFails++
		return
	}
	if s.phase == "" {
		return
	}
	s.peak = max(s.peak, r.rss)
	s.peakData = max(s.peakData, used)
	s.lastData, s.lastApp = used, apparent
	s.pending = append(s.pending, r)
	done := s.progress.Load()
	if tenth := int(done * 10 / s.n); tenth > s.logged && s.phase != "idle" {
		s.logged = tenth
		s.logLocked(done, r)
	}
}

// endPhase logs the samples not yet logged and returns the phase's peak RSS
// and peak data dir size.
func (s *rssSampler) endPhase() (peak, peakData int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) > 0 {
		s.logLocked(s.progress.Load(), s.pending[len(s.pending)-1])
	}
	peak, peakData = s.peak, s.peakData
	s.phase = ""
	return peak, peakData
}

// logLocked logs the pending samples, at most 24 of them evenly picked.
func (s *rssSampler) logLocked(done int64, last rss) {
	var sb strings.Builder
	step := max(1, (len(s.pending)+23)/24)
	for i := 0; i < len(s.pending); i += step {
		fmt.Fprintf(&sb, " %.0f", mib(s.pending[i].rss))
	}
	if (len(s.pending)-1)%step != 0 {
		fmt.Fprintf(&sb, " %.0f", mib(last.rss))
	}
	s.b.Logf("%s %3d%% (%d msgs, %v): RSS MiB [%s] last %.1f (anon %.1f, file %.1f), phase peak %.1f; data dir %.1f MiB (apparent %.1f); %d samples",
		s.phase, done*100/s.n, done, time.Since(s.began).Round(time.Second), strings.TrimSpace(sb.String()), mib(last.rss), mib(last.anon), mib(last.file),
		mib(s.peak), mib(s.lastData), mib(s.lastApp), len(s.pending))
	s.pending = s.pending[:0]
}
