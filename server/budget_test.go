package server_test

import (
	"fmt"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenmq/warren/queue"
	"github.com/warrenmq/warren/server"
)

// TestQueueMemoryBudget: four queues, each backlog well inside its own
// window, page out what would take them past their shared --queue-memory,
// and deliver every message in order; without a budget the same backlogs
// stay in memory.
func TestQueueMemoryBudget(t *testing.T) {
	const queues, n = 4, 1000
	const budget = 1 << 20
	for _, tc := range []struct {
		name   string
		memory int64
	}{{"budget", budget}, {"no budget", -1}} {
		t.Run(tc.name, func(t *testing.T) {
			b := startDurable(t, func(o *server.Options) { o.QueueWindow, o.QueueMemory = 8<<20, tc.memory })
			conn := dial(t, b.URL)
			ch := mustChannel(t, conn)
			var names []string
			p := newPublisher(t, conn)
			for i := range queues {
				q := uniq(t, fmt.Sprint("budget", i))
				if _, err := ch.QueueDeclare(q, true, false, false, false, nil); err != nil {
					t.Fatal(err)
				}
				names = append(names, q)
				for j := range n {
					p.pub("", q, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: kib(j)})
				}
			}
			p.wait()

			used, limit := b.Server.QueueMemory()
			inMemory := 0
			for _, q := range names {
				qi, err := b.Server.Queue(q)
				if err != nil {
					t.Fatal(err)
				}
				if qi.Ready != n {
					t.Fatalf("%s holds %d ready, want %d", q, qi.Ready, n)
				}
				inMemory += qi.ReadyInMemory
			}
			cost := int(queue.EntryCost(&queue.Message{Body: kib(0), RoutingKey: names[0]}))
			if tc.memory < 0 {
				if limit != 0 || inMemory != queues*n {
					t.Fatalf("without a budget: limit %d, %d of %d messages in memory", limit, inMemory, queues*n)
				}
				return
			}
			// No queue has consumers, so none keeps queue.BudgetFloor
			// beyond the budget.
			most := budget
			if limit != budget || used > int64(most) || inMemory > most/cost {
				t.Fatalf("budget %d (limit %d): queues hold %d bytes, %d messages in memory; want at most %d bytes", budget, limit, used, inMemory, most)
			}
			t.Logf("%d of %d messages in memory, %d bytes", inMemory, queues*n, used)

			for _, q := range names {
				msgs, err := ch.Consume(q, "c-"+q, false, false, false, false, nil)
				if err != nil {
					t.Fatal(err)
				}
				for j := range n {
					d := recv(t, msgs)
					if string(d.Body) != string(kib(j)) {
						t.Fatalf("%s: message %d is %.6q, want %.6q", q, j, d.Body, kib(j))
					}
					if err := d.Ack(false); err != nil {
						t.Fatal(err)
					}
				}
			}
			// Empty queues keep a chunk each for their consumers, until
			// those are cancelled.
			if used, _ := b.Server.QueueMemory(); used != queues*queue.BudgetChunk {
				t.Fatalf("the budget counts %d bytes with every message delivered, want %d", used, queues*queue.BudgetChunk)
			}
			for _, q := range names {
				if err := ch.Cancel("c-"+q, false); err != nil {
					t.Fatal(err)
				}
			}
			if used, _ := b.Server.QueueMemory(); used != 0 {
				t.Fatalf("the budget counts %d bytes with no messages and no consumers", used)
			}
		})
	}
}
