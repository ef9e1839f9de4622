// Command work-queues spreads tasks over two workers: a durable queue,
// persistent messages, manual acks and prefetch 1, so a busy worker gets no
// new task until it has acked its last one (fair dispatch). The second
// RabbitMQ tutorial, with the producer and both workers in one program.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func main() {
	url := flag.String("url", defaultURL(), "broker URL (default from $AMQP_URL)")
	tasks := flag.Int("tasks", 10, "tasks to send")
	dot := flag.Duration("dot", 100*time.Millisecond, "work a task takes per dot in its body")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	err := run(ctx, *url, *tasks, *dot, os.Stdout)
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
	queue   = "warren-example.task-queue"
	workers = 2
)

// run sends tasks to a durable queue and has two workers do them, then
// prints how many each did. A task takes dot for each "." in its body. It
// returns once every task is acked, and deletes the queue.
func run(ctx context.Context, url string, tasks int, dot time.Duration, out io.Writer) error {
	if tasks < 1 {
		return fmt.Errorf("-tasks %d: want at least 1", tasks)
	}
	conn, err := amqp.Dial(url)
	if err != nil {
		return err
	}
	var running sync.WaitGroup
	defer running.Wait() // the workers end when conn.Close closes their deliveries
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	// Durable: the queue survives a broker restart, and so do the
	// persistent messages in it.
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		return err
	}
	defer ch.QueueDelete(queue, false, false, false)
	if _, err := ch.QueuePurge(queue, false); err != nil { // left over from a run that was killed
		return err
	}

	var mu sync.Mutex // guards out, doneBy and done
	doneBy := make([]int, workers+1)
	done := 0
	allDone := make(chan struct{})
	for w := 1; w <= workers; w++ {
		// Each worker has a channel of its own, as it would in its own
		// process, with at most one unacked task at a time.
		wch, err := conn.Channel()
		if err != nil {
			return err
		}
		if err := wch.Qos(1, 0, false); err != nil {
			return err
		}
		msgs, err := wch.Consume(queue, fmt.Sprint("worker-", w), false, false, false, false, nil)
		if err != nil {
			return err
		}
		running.Add(1)
		go func() {
			defer running.Done()
			for d := range msgs {
				select {
				case <-time.After(time.Duration(strings.Count(string(d.Body), ".")) * dot):
				case <-ctx.Done():
					return // unacked: the task goes back to the queue
				}
				// Ack only once the work is done: a worker that dies
				// before then leaves the task to another.
				if err := d.Ack(false); err != nil {
					return
				}
				mu.Lock()
				fmt.Fprintf(out, " [worker %d] done %s\n", w, d.Body)
				doneBy[w]++
				done++
				if done == tasks {
					close(allDone)
				}
				mu.Unlock()
			}
		}()
	}

	for i := 1; i <= tasks; i++ {
		body := fmt.Sprintf("task %d%s", i, strings.Repeat(".", i%3+1))
		err := ch.PublishWithContext(ctx, "", queue, false, false, amqp.Publishing{
			DeliveryMode: amqp.Persistent,
			ContentType:  "text/plain",
			Body:         []byte(body),
		})
		if err != nil {
			return err
		}
		mu.Lock()
		fmt.Fprintf(out, " [x] Sent %s\n", body)
		mu.Unlock()
	}
	select {
	case <-allDone:
	case <-ctx.Done():
		return ctx.Err()
	}
	mu.Lock()
	defer mu.Unlock()
	for w := 1; w <= workers; w++ {
		fmt.Fprintf(out, " worker %d did %d tasks\n", w, doneBy[w])
	}
	return nil
}
