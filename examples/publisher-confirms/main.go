// Command publisher-confirms publishes persistent messages to a durable
// queue in confirm mode three ways, as RabbitMQ's seventh tutorial does:
// waiting for each confirm before the next publish, waiting for a batch at
// a time, and handling confirms asynchronously as they come. It prints how
// long each way took and how many messages the queue then holds.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func main() {
	url := flag.String("url", defaultURL(), "broker URL (default from $AMQP_URL)")
	n := flag.Int("n", 2000, "messages per strategy")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	err := run(ctx, *url, *n, os.Stdout)
	cancel()
	stop()
	if err != nil {
		log.Fatal(err)
	}
}

func defaultURL() string {
	if u := os.Getenv("AMQP_URL"); u != "" {
		return u
	}
	return "amqp://guest:guest@localhost:5672/"
}

const (
	queue     = "warren-example.confirms"
	batchSize = 100
)

// A strategy publishes n messages on ch, in confirm mode, to the queue and
// returns once the broker has confirmed them all.
type strategy func(ctx context.Context, ch *amqp.Channel, n int) error

var strategies = []struct {
	name    string
	publish strategy
}{
	{"one at a time", oneAtATime},
	{fmt.Sprintf("in batches of %d", batchSize), inBatches},
	{"asynchronously", async},
}

// run tries each strategy with n messages and prints how it went.
func run(ctx context.Context, url string, n int, out io.Writer) error {
	conn, err := amqp.Dial(url)
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, s := range strategies {
		took, held, err := measure(ctx, conn, s.publish, n)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		fmt.Fprintf(out, "%-18s %d messages confirmed in %v; the queue holds %d\n",
			s.name+":", n, took.Round(time.Millisecond), held)
	}
	return nil
}

// measure runs publish on a fresh channel and an empty durable queue, and
// returns how long it took and how many messages the queue then holds. It
// deletes the queue.
func measure(ctx context.Context, conn *amqp.Connection, publish strategy, n int) (took time.Duration, held int, err error) {
	ch, err := conn.Channel()
	if err != nil {
		return 0, 0, err
	}
	defer ch.Close()
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		return 0, 0, err
	}
	defer ch.QueueDelete(queue, false, false, false)
	if _, err := ch.QueuePurge(queue, false); err != nil { // left over from a run that was killed
		return 0, 0, err
	}
	// From here on the broker confirms every publish on ch: for a
	// persistent message routed to a durable queue, once it is on disk.
	if err := ch.Confirm(false); err != nil {
		return 0, 0, err
	}
	start := time.Now()
	if err := publish(ctx, ch, n); err != nil {
		return 0, 0, err
	}
	took = time.Since(start)
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		return 0, 0, err
	}
	return took, q.Messages, nil
}

func message(i int) amqp.Publishing {
	return amqp.Publishing{DeliveryMode: amqp.Persistent, Body: fmt.Appendf(nil, "message %d", i)}
}

// oneAtATime waits for each message's confirm before publishing the next:
// simple, and as slow as a round trip plus a disk write per message.
func oneAtATime(ctx context.Context, ch *amqp.Channel, n int) error {
	for i := range n {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false, message(i))
		if err != nil {
			return err
		}
		if ok, err := dc.WaitContext(ctx); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("message %d nacked", i)
		}
	}
	return nil
}

// inBatches publishes batchSize messages, then waits for all their
// confirms: faster, but on a nack it knows only that something in the
// batch failed, and would republish the batch.
func inBatches(ctx context.Context, ch *amqp.Channel, n int) error {
	batch := make([]*amqp.DeferredConfirmation, 0, batchSize)
	for i := range n {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false, message(i))
		if err != nil {
			return err
		}
		batch = append(batch, dc)
		if len(batch) < batchSize && i < n-1 {
			continue
		}
		for _, dc := range batch {
			if ok, err := dc.WaitContext(ctx); err != nil {
				return err
			} else if !ok {
				return fmt.Errorf("batch ending with message %d nacked", i)
			}
		}
		batch = batch[:0]
	}
	return nil
}

// async publishes without waiting, remembering each message by its
// delivery tag, while a listener takes the confirms as they come and
// forgets each confirmed message. The broker confirms a run of messages
// with one basic.ack with multiple=true; amqp091-go hands such an ack to
// NotifyPublish as one Confirmation per message, in order.
func async(ctx context.Context, ch *amqp.Channel, n int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The buffer holds every confirm, so the listener never holds up the
	// connection.
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, n))

	var mu sync.Mutex                      // guards outstanding
	outstanding := make(map[uint64]int, n) // delivery tag → message number
	listened := make(chan error, 1)
	go func() {
		var nacked []int
		for range n {
			var c amqp.Confirmation
			var ok bool
			select {
			case c, ok = <-confirms:
			case <-ctx.Done():
				listened <- ctx.Err()
				return
			}
			if !ok {
				listened <- amqp.ErrClosed
				return
			}
			mu.Lock()
			i := outstanding[c.DeliveryTag]
			delete(outstanding, c.DeliveryTag)
			mu.Unlock()
			if !c.Ack {
				nacked = append(nacked, i) // a real publisher would publish it again
			}
		}
		if len(nacked) > 0 {
			listened <- fmt.Errorf("messages %v nacked", nacked)
			return
		}
		listened <- nil
	}()

	for i := range n {
		// Record the message before publishing it: its confirm may come
		// before PublishWithContext returns.
		mu.Lock()
		outstanding[ch.GetNextPublishSeqNo()] = i
		mu.Unlock()
		if err := ch.PublishWithContext(ctx, "", queue, false, false, message(i)); err != nil {
			return err
		}
	}
	if err := <-listened; err != nil {
		return err
	}
	if len(outstanding) != 0 {
		return fmt.Errorf("%d messages never confirmed", len(outstanding))
	}
	return nil
}
