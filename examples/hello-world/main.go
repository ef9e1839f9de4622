// Command hello-world sends one message to a queue and receives it: the
// first RabbitMQ tutorial, with sender and receiver in one program.
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

const queue = "warren-example.hello"

// run declares a queue, consumes it, sends it one message and prints the
// message once it arrives. It deletes the queue on the way out.
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
	if _, err := ch.QueueDeclare(queue, false, false, false, false, nil); err != nil {
		return err
	}
	defer ch.QueueDelete(queue, false, false, false)

	msgs, err := ch.Consume(queue, "", true, false, false, false, nil)
	if err != nil {
		return err
	}
	body := "Hello World!"
	// The default exchange ("") routes by queue name.
	err = ch.PublishWithContext(ctx, "", queue, false, false, amqp.Publishing{
		ContentType: "text/plain",
		Body:        []byte(body),
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, " [x] Sent %s\n", body)
	select {
	case d := <-msgs:
		fmt.Fprintf(out, " [x] Received %s\n", d.Body)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
