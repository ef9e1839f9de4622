// Command publisher-confirms publishes persistent messages to a durable
// queue in confirm mode three ways, as RabbitMQ's seventh tutorial does:
// waiting for each confirm, waiting per batch, and handling confirms
// asynchronously as they come (several at a time with multiple=true). It
// prints how long each took.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func main() {
	url := flag.String("url", defaultURL(), "broker URL")
	n := flag.Int("n", 2000, "messages per strategy")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if err := run(ctx, *url, *n, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func defaultURL() string {
	if u := os.Getenv("AMQP_URL"); u != "" {
		return u
	}
	return "amqp://guest:guest@localhost:5672/"
}

const batchSize = 100

var strategies = []struct {
	name    string
	publish func(ctx context.Context, ch *amqp.Channel, queue string, n int) error
}{
	{"one at a time", oneAtATime},
	{"in batches of 100", inBatches},
	{"asynchronously", async},
}

func run(ctx context.Context, url string, n int, out io.Writer) error {
	conn, err := amqp.Dial(url)
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, s := range strategies {
		ch, err := conn.Channel()
		if err != nil {
			return err
		}
		q, err := ch.QueueDeclare("", true, false, false, false, nil)
		if err != nil {
			return err
		}
		if err := ch.Confirm(false); err != nil {
			return err
		}
		start := time.Now()
		if err := s.publish(ctx, ch, q.Name, n); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		took := time.Since(start)
		// Every confirmed message is in the queue.
		st, err := ch.QueueDeclarePassive(q.Name, true, false, false, false, nil)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%-18s %d messages confirmed in %v; the queue holds %d\n", s.name+":", n, took.Round(time.Millisecond), st.Messages)
		if _, err := ch.QueueDelete(q.Name, false, false, false); err != nil {
			return err
		}
		ch.Close()
	}
	return nil
}

func message(i int) amqp.Publishing {
	return amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(fmt.Sprint("message ", i))}
}

// oneAtATime waits for each message's confirm before the next.
func oneAtATime(ctx context.Context, ch *amqp.Channel, queue string, n int) error {
	for i := range n {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false, message(i))
		if err != nil {
			return err
		}
		if ok, err := dc.WaitContext(ctx); err != nil || !ok {
			return fmt.Errorf("message %d not confirmed (%v)", i, err)
		}
	}
	return nil
}

// inBatches publishes batchSize messages, then waits for all their
// confirms.
func inBatches(ctx context.Context, ch *amqp.Channel, queue string, n int) error {
	batch := make([]*amqp.DeferredConfirmation, 0, batchSize)
	for i := range n {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false, message(i))
		if err != nil {
			return err
		}
		batch = append(batch, dc)
		if len(batch) == batchSize || i == n-1 {
			for _, dc := range batch {
				if ok, err := dc.WaitContext(ctx); err != nil || !ok {
					return fmt.Errorf("message %d not confirmed (%v)", dc.DeliveryTag, err)
				}
			}
			batch = batch[:0]
		}
	}
	return nil
}

// async publishes without waiting while a listener takes the confirms as
// they come: a basic.ack with multiple=true confirms every tag up to its
// own, and amqp091-go hands them out one by one, in order.
func async(ctx context.Context, ch *amqp.Channel, queue string, n int) error {
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, n))
	done := make(chan error, 1)
	go func() {
		for range n {
			select {
			case c := <-confirms:
				if !c.Ack {
					done <- fmt.Errorf("message %d nacked", c.DeliveryTag)
					return
				}
			case <-ctx.Done():
				done <- ctx.Err()
				return
			}
		}
		done <- nil
	}()
	for i := range n {
		if err := ch.PublishWithContext(ctx, "", queue, false, false, message(i)); err != nil {
			return err
		}
	}
	return <-done
}
