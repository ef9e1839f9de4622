"""Drives a broker with pika, the Python client, unchanged: what a pika user
does first. Exits non-zero with a message on the first surprise."""
import sys

import pika

url, product = sys.argv[1], sys.argv[2]
params = pika.URLParameters(url)
conn = pika.BlockingConnection(params)
ch = conn.channel()

props = conn._impl.server_properties
assert props["product"] in (product, product.encode()), props
assert props["capabilities"]["publisher_confirms"] is True, props

q = ch.queue_declare(queue="", exclusive=True).method.queue
assert q.startswith("amq.gen-"), q

ch.confirm_delivery()
headers = {"str": "v", "int": 7, "nested": {"a": 1}, "list": [1, "two"]}
ch.basic_publish(
    exchange="",
    routing_key=q,
    body=b"hello from pika",
    properties=pika.BasicProperties(
        content_type="text/plain",
        delivery_mode=2,
        correlation_id="c-1",
        reply_to="replies",
        headers=headers,
        priority=3,
        message_id="m-1",
        app_id="smoke",
    ),
)

# a mandatory message with no route is returned: pika raises UnroutableError
try:
    ch.basic_publish(exchange="amq.direct", routing_key="nowhere", body=b"x", mandatory=True)
    sys.exit("mandatory unroutable publish was not returned")
except pika.exceptions.UnroutableError:
    pass

method, p, body = ch.basic_get(q, auto_ack=False)
assert method is not None, "basic.get found nothing"
assert body == b"hello from pika", body
assert p.content_type == "text/plain" and p.delivery_mode == 2, p
assert p.correlation_id == "c-1" and p.reply_to == "replies", p
assert p.priority == 3 and p.message_id == "m-1" and p.app_id == "smoke", p
assert p.headers["str"] == b"v" or p.headers["str"] == "v", p.headers
assert p.headers["int"] == 7 and p.headers["nested"]["a"] == 1, p.headers
ch.basic_ack(method.delivery_tag)

# a consumer with prefetch gets what is published and acks it
ch.basic_qos(prefetch_count=10)
for i in range(20):
    ch.basic_publish(exchange="", routing_key=q, body=str(i).encode())
got = []
for method, p, body in ch.consume(q, inactivity_timeout=10):
    if method is None:
        sys.exit("consumer timed out after %d messages" % len(got))
    got.append(int(body))
    ch.basic_ack(method.delivery_tag)
    if len(got) == 20:
        break
ch.cancel()
assert got == list(range(20)), got

# a channel error is reported as pika reports RabbitMQ's
try:
    ch.queue_declare(queue="does-not-exist", passive=True)
    sys.exit("passive declare of a missing queue succeeded")
except pika.exceptions.ChannelClosedByBroker as e:
    assert e.reply_code == 404, e

conn.close()
print("pika smoke test passed")
