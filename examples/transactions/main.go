// Command transactions shows AMQP transactions on a durable queue of
// persistent messages: publishes held back until tx.commit, discarded by
// tx.rollback, and acknowledgements that count only once committed.
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

const queue = "warren-example.tx-queue"

// run publishes in transactions, committing some and rolling back others,
// then consumes in transactions, and prints what the queue holds at each
// step. It deletes the queue.
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
	if _, err := ch.QueuePurge(queue, false); err != nil { // left over from a run that was killed
		return err
	}
	// count prints how many messages are ready in the queue. A passive
	// declare on ch comes after ch's publishes, so it sees their effect.
	count := func(when string) error {
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%-38s %d ready\n", when+":", q.Messages)
		return nil
	}
	publish := func(bodies ...string) error {
		for _, b := range bodies {
			err := ch.PublishWithContext(ctx, "", queue, false, false, amqp.Publishing{
				DeliveryMode: amqp.Persistent,
				Body:         []byte(b),
			})
			if err != nil {
				return err
			}
		}
		return nil
	}

	// Publisher side. After tx.select, every publish on ch belongs to the
	// channel's current transaction; a commit or rollback ends it and
	// starts the next.
	if err := ch.Tx(); err != nil {
		return err
	}
	if err := publish("a", "b", "c"); err != nil {
		return err
	}
	if err := count("published a, b, c"); err != nil {
		return err
	}
	// commit-ok comes once all three are in the queue (and, persistent
	// in a durable queue, on disk), as one unit.
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
	if err := count("published x, y and rolled back"); err != nil {
		return err
	}

	// Consumer side: an ack in a transaction counts only at commit.
	// First an ack that is rolled back: the message stays unacked, so it
	// goes back to the queue when its channel closes.
	if err := consume(ctx, conn, 1, false, out); err != nil {
		return err
	}
	if err := count("acked in a rollback, channel closed"); err != nil {
		return err
	}
	// Then acks that are committed: their messages are gone for good.
	if err := consume(ctx, conn, 3, true, out); err != nil {
		return err
	}
	return count("acked in a commit, channel closed")
}

// consume takes n messages on a channel of its own in a transaction, acks
// them, then commits or rolls back and closes the channel.
func consume(ctx context.Context, conn *amqp.Connection, n int, commit bool, out io.Writer) error {
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	if err := ch.Tx(); err != nil {
		return err
	}
	if err := ch.Qos(n, 0, false); err != nil {
		return err
	}
	msgs, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		return err
	}
	for range n {
		select {
		case d := <-msgs:
			fmt.Fprintf(out, " [x] Received %s (redelivered: %v)\n", d.Body, d.Redelivered)
			if err := d.Ack(false); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if commit {
		err = ch.TxCommit()
	} else {
		err = ch.TxRollback()
	}
	if err != nil {
		return err
	}
	return ch.Close()
}
