// Package extest has what the examples' tests share: a broker to run them
// against, and checks that an example left nothing behind.
package extest

import (
	"errors"
	"os"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/server/servertest"
)

// BrokerURL starts an in-process Warren, or returns $WARREN_REF_URL (a
// RabbitMQ, say) when it is set, so that the same test checks both.
func BrokerURL(t *testing.T) string {
	if u := os.Getenv("WARREN_REF_URL"); u != "" {
		return u
	}
	return servertest.Start(t).URL
}

// QueueGone reports whether the queue no longer exists.
func QueueGone(t *testing.T, url, name string) bool {
	return gone(t, url, func(ch *amqp.Channel) error {
		_, err := ch.QueueDeclarePassive(name, false, false, false, false, nil)
		return err
	})
}

// ExchangeGone reports whether the exchange no longer exists.
func ExchangeGone(t *testing.T, url, name string) bool {
	return gone(t, url, func(ch *amqp.Channel) error {
		return ch.ExchangeDeclarePassive(name, "direct", false, false, false, false, nil)
	})
}

// gone runs a passive declare on a fresh channel and reports whether it
// failed with 404.
func gone(t *testing.T, url string, declare func(*amqp.Channel) error) bool {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	var aerr *amqp.Error
	return errors.As(declare(ch), &aerr) && aerr.Code == amqp.NotFound
}
