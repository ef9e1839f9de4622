// Command work-queues spreads tasks over two workers: a durable queue,
// persistent messages, manual acks and prefetch 1, so a busy worker gets no
// new task until it acks the last (fair dispatch). The second RabbitMQ
// tutorial, with producer and workers in one program.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func main() {
	url := flag.String("url", defaultURL(), "broker URL")
	tasks := flag.Int("tasks", 10, "tasks to send")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := run(ctx, *url, *tasks, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func defaultURL() string {
	if u := os.Getenv("AMQP_URL"); u != "" {
		return u
	}
	return "amqp://guest:guest@localhost:5672/"
}

const queue = "task_queue"

func run(ctx context.Context, url string, tasks int, out io.Writer) error {
	conn, err := amqp.Dial(url)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		return err
	}
	defer ch.QueueDelete(queue, false, false, false)

	// Two workers, each on its own channel with prefetch 1. A task's dots
	// are the seconds (here: 10 ms) it takes.
	var mu sync.Mutex // guards out
	done := make(chan string, tasks)
	for w := 1; w <= 2; w++ {
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
		go func() {
			for d := range msgs {
				time.Sleep(time.Duration(strings.Count(string(d.Body), ".")) * 10 * time.Millisecond)
				mu.Lock()
				fmt.Fprintf(out, " [worker %d] done %s\n", w, d.Body)
				mu.Unlock()
				d.Ack(false)
				done <- string(d.Body)
			}
		}()
	}

	for i := 1; i <= tasks; i++ {
		body := fmt.Sprintf("task %d%s", i, strings.Repeat(".", i%3+1))
		err := ch.PublishWithContext(ctx, "", queue, false, false, amqp.Publishing{
			DeliveryMode: amqp.Persistent, ContentType: "text/plain", Body: []byte(body),
		})
		if err != nil {
			return err
		}
		mu.Lock()
		fmt.Fprintf(out, " [x] Sent %s\n", body)
		mu.Unlock()
	}
	for range tasks {
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
