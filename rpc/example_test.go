package rpc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/rpc"
	"github.com/warrenmq/warren/server"
)

// startBroker runs an in-process Warren on 127.0.0.1 for the examples and
// returns a connection to it with a channel open; an application dials its
// broker's URL instead.
func startBroker() (conn *amqp.Connection, ch *amqp.Channel, stop func()) {
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
	if conn, err = amqp.Dial("amqp://guest:guest@" + srv.Addr().String() + "/"); err != nil {
		log.Fatal(err)
	}
	if ch, err = conn.Channel(); err != nil {
		log.Fatal(err)
	}
	return conn, ch, func() {
		conn.Close()
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
	conn, ch, stop := startBroker()
	defer stop()
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

// A call with a deadline, from a client that takes its replies on a queue
// of its own instead of by direct reply-to, and what its errors mean.
func ExampleClient_Call() {
	conn, ch, stop := startBroker()
	defer stop()
	if _, err := ch.QueueDeclare("hex", false, false, false, false, nil); err != nil {
		log.Fatal(err)
	}
	srv, err := rpc.NewServer(conn, "hex", func(_ context.Context, req amqp.Delivery) (amqp.Publishing, error) {
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
	for _, key := range []string{"hex", "no-such-queue"} {
		reply, err := client.Call(ctx, "", key, amqp.Publishing{Body: []byte("hi")})
		switch {
		case err == nil:
			fmt.Println(reply.ContentType, string(reply.Body))
		case errors.Is(err, rpc.ErrNoRoute):
			fmt.Println("no queue takes", key)
		case errors.Is(err, context.DeadlineExceeded):
			fmt.Println("no reply in time") // the server is slow or gone
		case errors.Is(err, rpc.ErrConnectionLost):
			fmt.Println("connection lost: make a new client") // and maybe retry
		default:
			log.Fatal(err)
		}
	}
	// Output:
	// text/plain 6869
	// no queue takes no-such-queue
}

// A server with eight workers, replies in confirm mode, requests it cannot
// answer dead-lettered, and a graceful shutdown.
func ExampleServer() {
	conn, ch, stop := startBroker()
	defer stop()
	// Requests the handler refuses go to "upper.rejected".
	if _, err := ch.QueueDeclare("upper.rejected", false, false, false, false, nil); err != nil {
		log.Fatal(err)
	}
	args := amqp.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "upper.rejected"}
	if _, err := ch.QueueDeclare("upper", false, false, false, false, args); err != nil {
		log.Fatal(err)
	}

	srv, err := rpc.NewServer(conn, "upper", func(_ context.Context, req amqp.Delivery) (amqp.Publishing, error) {
		if len(req.Body) == 0 {
			return amqp.Publishing{}, errors.New("empty request") // no reply; rejected
		}
		return amqp.Publishing{Body: bytes.ToUpper(req.Body)}, nil
	}, rpc.WithWorkers(8), rpc.WithConfirms())
	if err != nil {
		log.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()

	client, err := rpc.NewClient(conn)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reply, err := client.Call(ctx, "", "upper", amqp.Publishing{Body: []byte("hello")})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(reply.Body))
	// A rejected request gets no reply: its call ends with its context.
	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancelShort()
	_, err = client.Call(short, "", "upper", amqp.Publishing{})
	fmt.Println(err)

	// Shutdown waits for the handlers in flight and their acks; then
	// Serve returns nil.
	if err := srv.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("Serve:", <-served)
	dead, err := ch.Consume("upper.rejected", "", true, false, false, false, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("dead-lettered: %q\n", (<-dead).Body)
	// Output:
	// HELLO
	// context deadline exceeded
	// Serve: <nil>
	// dead-lettered: ""
}
