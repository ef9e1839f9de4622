// Command publish-subscribe broadcasts log messages through a fanout
// exchange to every subscriber, each with its own server-named, exclusive
// queue: the third RabbitMQ tutorial, with the publisher and the
// subscribers in one program.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func main() {
	url := flag.String("url", defaultURL(), "broker URL (default from $AMQP_URL)")
	subscribers := flag.Int("subscribers", 2, "subscribers to start")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	logs := []string{"info: starting", "warning: disk at 80%", "error: disk full"}
	err := run(ctx, *url, *subscribers, logs, os.Stdout)
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

const exchange = "warren-example.logs"

// run starts subscribers, publishes logs to the fanout exchange, and
// prints what each subscriber received once every one has all of them. It
// deletes the exchange; the subscribers' queues go with the connection.
func run(ctx context.Context, url string, subscribers int, logs []string, out io.Writer) error {
	conn, err := amqp.Dial(url)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := ch.ExchangeDeclare(exchange, "fanout", false, false, false, false, nil); err != nil {
		return err
	}
	defer ch.ExchangeDelete(exchange, false, false)

	inboxes := make([]<-chan amqp.Delivery, subscribers)
	for i := range inboxes {
		// Each subscriber has a channel of its own, as it would in its
		// own process, and a queue the broker names, exclusive to this
		// connection and deleted with it.
		sch, err := conn.Channel()
		if err != nil {
			return err
		}
		q, err := sch.QueueDeclare("", false, true, true, false, nil)
		if err != nil {
			return err
		}
		// A fanout exchange ignores the routing key: every bound queue
		// gets a copy of every message.
		if err := sch.QueueBind(q.Name, "", exchange, false, nil); err != nil {
			return err
		}
		if inboxes[i], err = sch.Consume(q.Name, "", true, true, false, false, nil); err != nil {
			return err
		}
	}

	for _, l := range logs {
		if err := ch.PublishWithContext(ctx, exchange, "", false, false, amqp.Publishing{Body: []byte(l)}); err != nil {
			return err
		}
		fmt.Fprintf(out, " [x] Sent %q\n", l)
	}
	for i, inbox := range inboxes {
		for range logs {
			select {
			case d := <-inbox:
				fmt.Fprintf(out, " [subscriber %d] %q\n", i+1, d.Body)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}
