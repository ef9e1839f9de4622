package server

import (
	"time"

	"github.com/warrenmq/warren/internal/wire"
	"github.com/warrenmq/warren/queue"
)

// deadLetter republishes messages that died in r to its dead-letter
// exchange, with the x-death header RabbitMQ adds. It runs without any lock
// held (queue.SetDeadHook).
func (vh *vhost) deadLetter(r *queueRec, dead []queue.Dead) {
	vh.stats.countDead(dead, r.hasDLX)
	if !r.hasDLX {
		return
	}
	var s routeScratch
	for _, d := range dead {
		old := d.Entry.Msg
		var p wire.Properties
		if p.Decode(old.Props) != nil {
			continue
		}
		key := old.RoutingKey
		if r.hasDLRK {
			key = r.deadLetterRoutingKey
		}
		addDeath(&p, r.name, d.Reason, old)
		props, err := p.AppendTo(nil)
		if err != nil {
			continue
		}
		m := &queue.Message{Exchange: r.deadLetterExchange, RoutingKey: key, Props: props, Body: old.Body, Persistent: old.Persistent}
		routed, err := vh.route(m, &s, nil)
		if err != nil {
			continue // RabbitMQ drops the message when the DLX is missing
		}
		deaths, _ := p.Headers["x-death"].([]any)
		for _, target := range routed {
			if d.Reason != queue.Rejected && deadLetterCycle(target.name, deaths) {
				continue // a cycle without rejection: RabbitMQ drops it
			}
			target.q.Publish(m)
		}
	}
}

// deadLetterCycle reports whether dead-lettering to queue name would close
// a cycle with no rejection in it, by the x-death history (most recent
// first, this death included), as RabbitMQ's rabbit_dead_letter:is_cycle.
func deadLetterCycle(name string, deaths []any) bool {
	for _, d := range deaths {
		t, ok := d.(wire.Table)
		if !ok || t["reason"] == string(queue.Rejected) {
			return false
		}
		if t["queue"] == name {
			return true
		}
	}
	return false
}

// addDeath records one death in the x-death header, as RabbitMQ does: one
// table per (queue, reason), most recent first, with a count.
func addDeath(p *wire.Properties, queueName string, reason queue.DeadReason, m *queue.Message) {
	if p.Headers == nil {
		p.Headers = wire.Table{}
	}
	deaths, _ := p.Headers["x-death"].([]any)
	for i, d := range deaths {
		t, ok := d.(wire.Table)
		if ok && t["queue"] == queueName && t["reason"] == string(reason) {
			count, _ := t["count"].(int64)
			t["count"] = count + 1
			t["time"] = time.Now().UTC().Truncate(time.Second)
			deaths = append(append([]any{t}, deaths[:i]...), deaths[i+1:]...)
			p.Headers["x-death"] = deaths
			return
		}
	}
	death := wire.Table{
		"count":        int64(1),
		"reason":       string(reason),
		"queue":        queueName,
		"time":         time.Now().UTC().Truncate(time.Second),
		"exchange":     m.Exchange,
		"routing-keys": []any{m.RoutingKey},
	}
	if p.Expiration != "" {
		death["original-expiration"] = p.Expiration
		p.Expiration = ""
		p.Flags &^= wire.FlagExpiration
	}
	p.Headers["x-death"] = append([]any{death}, deaths...)
	if _, ok := p.Headers["x-first-death-queue"]; !ok {
		p.Headers["x-first-death-queue"] = queueName
		p.Headers["x-first-death-reason"] = string(reason)
		p.Headers["x-first-death-exchange"] = m.Exchange
	}
	p.Flags |= wire.FlagHeaders
}
