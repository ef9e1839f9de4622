// Command rpc computes Fibonacci numbers remotely: a server on queue
// "rpc_queue" and a client calling it through the rpc package, with direct
// reply-to or a reply queue of its own (-reply-to). The sixth RabbitMQ
// tutorial, with server and client in one program.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/rpc"
)

func main() {
	url := flag.String("url", defaultURL(), "broker URL")
	replyTo := flag.String("reply-to", "direct", "how replies come back: direct (amq.rabbitmq.reply-to) or queue")
	n := flag.Int("n", 30, "compute fib(0) to fib(n)")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, *url, *replyTo, *n, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func defaultURL() string {
	if u := os.Getenv("AMQP_URL"); u != "" {
		return u
	}
	return "amqp://guest:guest@localhost:5672/"
}

const queue = "rpc_queue"

func fib(n int) int {
	a, b := 0, 1
	for range n {
		a, b = b, a+b
	}
	return a
}

func run(ctx context.Context, url, replyTo string, n int, out io.Writer) error {
	var opts []rpc.ClientOption
	switch replyTo {
	case "direct":
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

	// The server: its own connection, as it would be in its own process.
	sconn, err := amqp.Dial(url)
	if err != nil {
		return err
	}
	defer sconn.Close()
	srv, err := rpc.NewServer(sconn, queue, func(_ context.Context, req amqp.Delivery) (amqp.Publishing, error) {
		n, err := strconv.Atoi(string(req.Body))
		if err != nil {
			return amqp.Publishing{}, err
		}
		return amqp.Publishing{ContentType: "text/plain", Body: []byte(strconv.Itoa(fib(n)))}, nil
	}, rpc.WithWorkers(4))
	if err != nil {
		return err
	}
	go srv.Serve()
	defer srv.Shutdown(context.Background())

	client, err := rpc.NewClient(conn, opts...)
	if err != nil {
		return err
	}
	defer client.Close()
	for i := 0; i <= n; i++ {
		reply, err := client.Call(ctx, "", queue, amqp.Publishing{ContentType: "text/plain", Body: []byte(strconv.Itoa(i))})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, " [.] fib(%d) = %s\n", i, reply.Body)
	}
	return nil
}
