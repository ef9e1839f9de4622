// Command topics routes log messages through a topic exchange by patterns:
// "*" matches one word of the routing key, "#" zero or more. The fifth
// RabbitMQ tutorial, with publisher and subscribers in one
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
	if err := run(ctx, *url, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func defaultURL() string {
	if u := os.Getenv("AMQP_URL"); u != "" {
		return u
	}
	return "amqp://guest:guest@localhost:5672/"
}

const exchange = "topic_logs"

// subscribers and the patterns each binds: <facility>.<severity>.
var subscribers = []struct {
	name string
	keys []string
}{
	{"critical", []string{"*.critical"}},
	{"kernel", []string{"kern.#"}},
	{"everything", []string{"#"}},
}

var logs = []struct{ severity, text string }{
	{"kern.critical", "a critical kernel error"},
	{"kern.info", "kernel booted"},
	{"app.critical", "the app is down"},
	{"app.web.info", "request served"},
}

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
	if err := ch.ExchangeDeclare(exchange, "topic", false, false, false, false, nil); err != nil {
		return err
	}
	defer ch.ExchangeDelete(exchange, false, false)
	queues := make([]string, len(subscribers))
	for i, s := range subscribers {
		q, err := ch.QueueDeclare("", false, true, true, false, nil)
		if err != nil {
			return err
		}
		for _, key := range s.keys {
			if err := ch.QueueBind(q.Name, key, exchange, false, nil); err != nil {
				return err
			}
		}
		queues[i] = q.Name
	}

	// With confirms, a message is in every queue it was routed to once it
	// is confirmed; then each queue holds exactly what its subscriber gets.
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

// drain prints what each subscriber's queue holds.
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
