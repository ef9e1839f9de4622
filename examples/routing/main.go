// Command routing delivers log messages selectively through a direct
// exchange: each subscriber binds its queue with the severities it wants,
// and a message goes to the queues bound with exactly its routing key. The
// fourth RabbitMQ tutorial, with the publisher and the subscribers in one
// program.
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
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := run(ctx, *url, os.Stdout)
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

const exchange = "warren-example.direct-logs"

// subscribers and the severities each binds.
var subscribers = []struct {
	name       string
	severities []string
}{
	{"disk-writer", []string{"error"}},
	{"console", []string{"info", "warning", "error"}},
}

// logs to publish, with their severity as routing key.
var logs = []struct{ severity, text string }{
	{"info", "started"},
	{"warning", "disk at 80%"},
	{"error", "disk full"},
	{"debug", "nobody binds debug, so this goes nowhere"},
}

// run binds a queue per subscriber, publishes the logs and prints what
// each subscriber's queue got. It deletes the exchange; the queues go with
// the connection.
func run(ctx context.Context, url string, out io.Writer) error {
	conn, err := amqp.Dial(url)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := ch.ExchangeDeclare(exchange, "direct", false, false, false, false, nil); err != nil {
		return err
	}
	defer ch.ExchangeDelete(exchange, false, false)
	queues := make([]string, len(subscribers))
	for i, s := range subscribers {
		q, err := ch.QueueDeclare("", false, true, true, false, nil)
		if err != nil {
			return err
		}
		for _, severity := range s.severities {
			if err := ch.QueueBind(q.Name, severity, exchange, false, nil); err != nil {
				return err
			}
		}
		queues[i] = q.Name
	}

	// With confirms, a message is in every queue it was routed to once it
	// is confirmed, so after the last confirm each queue holds exactly
	// what its subscriber gets: drain can tell "not routed here" from
	// "not arrived yet".
	if err := ch.Confirm(false); err != nil {
		return err
	}
	for _, l := range logs {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, l.severity, false, false, amqp.Publishing{Body: []byte(l.text)})
		if err != nil {
			return err
		}
		if _, err := dc.WaitContext(ctx); err != nil {
			return err
		}
		fmt.Fprintf(out, " [x] Sent %s: %s\n", l.severity, l.text)
	}
	return drain(ch, queues, out)
}

// drain prints what each subscriber's queue holds, taking it with
// basic.get until the queue is empty.
func drain(ch *amqp.Channel, queues []string, out io.Writer) error {
	for i, q := range queues {
		for {
			d, ok, err := ch.Get(q, true)
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			fmt.Fprintf(out, " [%s] %s: %s\n", subscribers[i].name, d.RoutingKey, d.Body)
		}
	}
	return nil
}
