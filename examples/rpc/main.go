// Command rpc computes Fibonacci numbers remotely: a server on a request
// queue and a client calling it through the rpc package, with replies by
// direct reply-to or on a reply queue of the client's own (-reply-to). The
// sixth RabbitMQ tutorial, with the server and the client in one program.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/rpc"
)

func main() {
	url := flag.String("url", defaultURL(), "broker URL (default from $AMQP_URL)")
	replyTo := flag.String("reply-to", "direct", "how replies come back: direct (amq.rabbitmq.reply-to) or queue (an exclusive reply queue)")
	n := flag.Int("n", 30, "compute fib(0) to fib(n)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := run(ctx, *url, *replyTo, *n, os.Stdout)
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
	queue  = "warren-example.rpc-queue"
	maxFib = 92 // fib(93) overflows an int64
)

func fib(n int) int {
	a, b := 0, 1
	for range n {
		a, b = b, a+b
	}
	return a
}

// fibHandler answers a request whose body is n with fib(n).
func fibHandler(_ context.Context, req amqp.Delivery) (amqp.Publishing, error) {
	n, err := strconv.Atoi(string(req.Body))
	if err != nil || n < 0 || n > maxFib {
		return amqp.Publishing{}, fmt.Errorf("bad request %q", req.Body)
	}
	return amqp.Publishing{ContentType: "text/plain", Body: []byte(strconv.Itoa(fib(n)))}, nil
}

// run declares the request queue, serves fib on it, and calls it for 0 to
// n, with replies coming back the replyTo way ("direct" or "queue"). It
// stops the server and deletes the queue.
func run(ctx context.Context, url, replyTo string, n int, out io.Writer) error {
	if n < 0 || n > maxFib {
		return fmt.Errorf("-n %d: want 0 to %d", n, maxFib)
	}
	var opts []rpc.ClientOption
	switch replyTo {
	case "direct":
		// The default: replies come on amq.rabbitmq.reply-to, straight
		// to the client's consumer, with no queue to declare.
	case "queue":
		opts = append(opts, rpc.WithReplyQueue())
	default:
		return fmt.Errorf("-reply-to %q: want direct or queue", replyTo)
	}
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

	// The server, on a connection of its own, as it would be in its own
	// process.
	sconn, err := amqp.Dial(url)
	if err != nil {
		return err
	}
	defer sconn.Close()
	srv, err := rpc.NewServer(sconn, queue, fibHandler, rpc.WithWorkers(4))
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	defer srv.Shutdown(context.Background()) // on an early return; a second Shutdown does nothing

	client, err := rpc.NewClient(conn, opts...)
	if err != nil {
		return err
	}
	defer client.Close()
	for i := 0; i <= n; i++ {
		fmt.Fprintf(out, " [x] Requesting fib(%d)\n", i)
		reply, err := client.Call(ctx, "", queue, amqp.Publishing{ContentType: "text/plain", Body: []byte(strconv.Itoa(i))})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, " [.] Got %s\n", reply.Body)
	}
	if err := srv.Shutdown(ctx); err != nil {
		return err
	}
	return <-served
}
