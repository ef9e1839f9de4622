// Drives a broker with amqplib, the Node.js client, unchanged: confirms,
// prefetch and acks, headers, direct reply-to RPC, an error reply, and a
// consumer cancelled by the broker. Exits non-zero with a message on the
// first surprise. Usage: node smoke.js URL
'use strict';
const assert = require('assert');
const amqp = require('amqplib');

(async () => {
  const conn = await amqp.connect(process.argv[2]);
  const ch = await conn.createConfirmChannel();
  const q = (await ch.assertQueue('', { exclusive: true })).queue;
  assert.match(q, /^amq\.gen-/);

  for (let i = 0; i < 100; i++) {
    ch.sendToQueue(q, Buffer.from('m' + i), { persistent: true, headers: { n: i, s: 'x' + i } });
  }
  await ch.waitForConfirms();
  assert.strictEqual((await ch.checkQueue(q)).messageCount, 100);

  // Prefetch 3, acks one at a time: every message in order, once.
  await ch.prefetch(3);
  const got = [];
  await new Promise((resolve) => {
    ch.consume(q, (m) => {
      got.push(m);
      ch.ack(m);
      if (got.length === 100) resolve();
    });
  });
  got.forEach((m, i) => {
    assert.strictEqual(m.content.toString(), 'm' + i);
    assert.strictEqual(m.properties.headers.n, i);
    assert.strictEqual(m.properties.headers.s, 'x' + i);
    assert.strictEqual(m.properties.deliveryMode, 2);
    assert.strictEqual(m.fields.redelivered, false);
  });

  // Direct reply-to: the server answers on amq.rabbitmq.reply-to.
  const server = await conn.createChannel();
  const rpcq = (await server.assertQueue('', { exclusive: true })).queue;
  await server.consume(rpcq, (m) => {
    server.sendToQueue(m.properties.replyTo, Buffer.from('re:' + m.content), { correlationId: m.properties.correlationId });
    server.ack(m);
  });
  const client = await conn.createChannel();
  const reply = new Promise((resolve) => client.consume('amq.rabbitmq.reply-to', resolve, { noAck: true }));
  client.sendToQueue(rpcq, Buffer.from('ping'), { replyTo: 'amq.rabbitmq.reply-to', correlationId: 'c-1' });
  const r = await reply;
  assert.strictEqual(r.content.toString(), 're:ping');
  assert.strictEqual(r.properties.correlationId, 'c-1');

  // A passive declare of a missing queue closes its channel with 404.
  const ech = await conn.createChannel();
  ech.on('error', () => {});
  await assert.rejects(ech.checkQueue('amqplib-no-such-queue'), (e) => e.code === 404);

  // Deleting a queue under a consumer cancels it: amqplib hands null.
  const dq = (await ch.assertQueue('', { exclusive: true })).queue;
  const cancelled = new Promise((resolve) => ch.consume(dq, (m) => { if (m === null) resolve(); }));
  await client.deleteQueue(dq);
  await cancelled;

  await conn.close();
  console.log('amqplib ok');
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
