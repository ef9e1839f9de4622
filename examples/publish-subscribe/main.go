// Command publish-subscribe broadcasts log messages through a fanout
// exchange to every subscriber, each with its own server-named, exclusive
// queue: the third RabbitMQ tutorial, with publisher and subscribers in one
// program.
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
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, *url, 2, []string{"info: starting", "warning: disk at 80%", "error: disk full"}, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func defaultURL() string {
	if u := os.Getenv("AMQP_URL"); u != "" {
		return u
	}
	return "amqp://guest:guest@localhost:5672/"
}

const exchange = "logs"

// run starts subscribers, publishes logs and prints what each subscriber
// received once every one has all of them.
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
		// A server-named queue, exclusive to this connection: gone with it.
		q, err := ch.QueueDeclare("", false, true, true, false, nil)
		if err != nil {
			return err
		}
		if err := ch.QueueBind(q.Name, "", exchange, false, nil); err != nil {
			return err
		}
		if inboxes[i], err = ch.Consume(q.Name, "", true, false, false, false, nil); err != nil {
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
