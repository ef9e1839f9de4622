package rpc_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/rpc"
	"github.com/warrenmq/warren/server"
)

// startBroker runs an in-process Warren on 127.0.0.1 for the examples; an
// application dials its broker's URL instead.
func startBroker() (url string, stop func()) {
	dir, err := os.MkdirTemp("", "warren-example-")
	if err != nil {
		log.Fatal(err)
	}
	opts := server.DefaultOptions()
	opts.AMQPAddr, opts.DataDir = "127.0.0.1:0", dir
	srv, err := server.New(opts)
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve()
	return "amqp://guest:guest@" + srv.Addr().String() + "/", func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		os.RemoveAll(dir)
	}
}

func fib(n int) int {
	a, b := 0, 1
	for range n {
		a, b = b, a+b
	}
	return a
}

// A server answering on queue "fib" and a client calling it, with direct
// reply-to.
func Example() {
	url, stop := startBroker()
	defer stop()
	conn, err := amqp.Dial(url)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		log.Fatal(err)
	}
	if _, err := ch.QueueDeclare("fib", false, false, false, false, nil); err != nil {
		log.Fatal(err)
	}

	srv, err := rpc.NewServer(conn, "fib", func(_ context.Context, req amqp.Delivery) (amqp.Publishing, error) {
		n, err := strconv.Atoi(string(req.Body))
		if err != nil {
			return amqp.Publishing{}, err // rejected: no reply
		}
		return amqp.Publishing{Body: []byte(strconv.Itoa(fib(n)))}, nil
	}, rpc.WithWorkers(4))
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve()
	defer srv.Shutdown(context.Background())

	client, err := rpc.NewClient(conn)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, n := range []string{"10", "30"} {
		reply, err := client.Call(ctx, "", "fib", amqp.Publishing{Body: []byte(n)})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("fib(%s) = %s\n", n, reply.Body)
	}
	// Output:
	// fib(10) = 55
	// fib(30) = 832040
}

// A call with a deadline, and a client that takes its replies on a queue of
// its own instead of direct reply-to.
func ExampleClient_Call() {
	url, stop := startBroker()
	defer stop()
	conn, err := amqp.Dial(url)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		log.Fatal(err)
	}
	if _, err := ch.QueueDeclare("upper", false, false, false, false, nil); err != nil {
		log.Fatal(err)
	}
	srv, err := rpc.NewServer(conn, "upper", func(_ context.Context, req amqp.Delivery) (amqp.Publishing, error) {
		return amqp.Publishing{ContentType: "text/plain", Body: []byte(fmt.Sprintf("%X", req.Body))}, nil
	})
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve()
	defer srv.Shutdown(context.Background())

	client, err := rpc.NewClient(conn, rpc.WithReplyQueue())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reply, err := client.Call(ctx, "", "upper", amqp.Publishing{Body: []byte("hi")})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(reply.ContentType, string(reply.Body))
	// Output: text/plain 6869
}
