// Command transactions shows AMQP transactions: publishes held until
// tx.commit, discarded by tx.rollback, and acknowledgements that take effect
// only at commit, on a durable queue of persistent messages.
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

const queue = "tx_queue"

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
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		return err
	}
	defer ch.QueueDelete(queue, false, false, false)
	count := func(when string) error {
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%-34s %d ready\n", when+":", q.Messages)
		return nil
	}
	publish := func(bodies ...string) error {
		for _, b := range bodies {
			if err := ch.PublishWithContext(ctx, "", queue, false, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(b)}); err != nil {
				return err
			}
		}
		return nil
	}

	if err := ch.Tx(); err != nil {
		return err
	}
	if err := publish("a", "b", "c"); err != nil {
		return err
	}
	if err := count("3 published, not committed"); err != nil {
		return err
	}
	// commit-ok comes once all three are on disk, as one unit.
	if err := ch.TxCommit(); err != nil {
		return err
	}
	if err := count("committed"); err != nil {
		return err
	}
	if err := publish("x", "y"); err != nil {
		return err
	}
	if err := ch.TxRollback(); err != nil {
		return err
	}
	if err := count("2 more published, rolled back"); err != nil {
		return err
	}

	// Consumer side: an ack in a transaction takes effect at commit.
	d, ok, err := ch.Get(queue, false)
	if err != nil || !ok {
		return fmt.Errorf("get: ok=%v err=%v", ok, err)
	}
	if err := d.Ack(false); err != nil {
		return err
	}
	if err := ch.TxRollback(); err != nil {
		return err
	}
	fmt.Fprintf(out, "got %q, acked it, rolled back: it is still unacked\n", d.Body)
	if err := d.Ack(false); err != nil { // the same delivery again
		return err
	}
	if err := ch.TxCommit(); err != nil {
		return err
	}
	fmt.Fprintf(out, "acked %q again and committed\n", d.Body)
	if err := count("after the committed ack"); err != nil {
		return err
	}
	for {
		d, ok, err := ch.Get(queue, true)
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		fmt.Fprintf(out, "left in the queue: %q\n", d.Body)
	}
}
