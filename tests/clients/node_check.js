// ioredis and node-redis (npm) against a running WaveKV RESP port.
// Usage: node node_check.js HOST PORT   (modules from tests/clients/node_modules)
// Exits 0 when every check passes; prints the first failure otherwise. Run by
// tests/client_libraries_test.cc, which starts the node.
'use strict';
const assert = require('node:assert/strict');
const Redis = require('ioredis');
const { createClient } = require('redis');

const [host, portText] = process.argv.slice(2);
const port = Number(portText);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Asks the test to kill the node with -9 and start it again on the same
// port, then waits until another process answers (INFO's process_id), so
// the caller's next command needs a new connection. `info` is a function
// that returns INFO server's text, or throws while the node is down.
async function restartNode(info) {
  const pid = (text) => /process_id:(\d+)/.exec(text)[1];
  const before = pid(await info());
  console.log('restart-node');
  const deadline = Date.now() + 20000;
  for (;;) {
    try {
      if (pid(await info()) !== before) return;
    } catch (e) {
      // down, or the library is reconnecting
    }
    assert.ok(Date.now() < deadline, 'the node restarted within 20 s');
    await sleep(20);
  }
}

async function withIoredis() {
  const r = new Redis({ host, port, lazyConnect: true, maxRetriesPerRequest: 1 });
  await r.connect();
  assert.equal(await r.ping(), 'PONG');
  const blob = Buffer.from([...Array(256).keys()]);
  await r.set(Buffer.from('io:bin\0\r\n'), blob);
  assert.deepEqual(await r.getBuffer(Buffer.from('io:bin\0\r\n')), blob);
  // multi(): MULTI/EXEC; each reply is [error, result].
  const tx = await r.multi().set('io:tx', '1').incr('io:tx').get('io:tx').exec();
  assert.deepEqual(tx, [[null, 'OK'], [null, 2], [null, '2']]);
  // pipeline(): plain pipelining.
  const p = r.pipeline();
  for (let i = 0; i < 50; i++) p.set(`io:pl:${String(i).padStart(2, '0')}`, String(i));
  p.mget('io:pl:00', 'io:pl:49');
  const out = await p.exec();
  assert.deepEqual(out[out.length - 1], [null, ['0', '49']]);
  // scanStream walks every key.
  const seen = new Set();
  await new Promise((resolve, reject) => {
    r.scanStream({ match: 'io:pl:*', count: 7 })
      .on('data', (keys) => keys.forEach((k) => seen.add(k)))
      .on('end', resolve)
      .on('error', reject);
  });
  assert.equal(seen.size, 50);
  // WATCH, then a change: exec() resolves to null.
  await r.watch('io:tx');
  await r.set('io:tx', '9');
  assert.equal(await r.multi().set('io:tx', '0').exec(), null);
  assert.equal(await r.get('io:tx'), '9');
  assert.equal(await r.incrbyfloat('io:f', '1.5'), '1.5');
  assert.equal(await r.type('io:f'), 'string');
  // Expiry: SET PX, PTTL, EXPIRE, PERSIST; an expired key is gone.
  assert.equal(await r.set('io:short', 'v', 'PX', 300), 'OK');
  const pttl = await r.pttl('io:short');
  assert.ok(pttl > 0 && pttl <= 300, `pttl ${pttl}`);
  await r.set('io:plain', 'v');
  assert.equal(await r.expire('io:plain', 10), 1);
  assert.equal(await r.persist('io:plain'), 1);
  assert.equal(await r.ttl('io:plain'), -1);
  await sleep(400);
  assert.equal(await r.get('io:short'), null);
  assert.equal(await r.ttl('io:short'), -2);
  // Pub/sub on a second connection; keyspace events after CONFIG SET.
  const sub = r.duplicate();
  const got = [];
  sub.on('message', (channel, message) => got.push([channel, message]));
  sub.on('pmessage', (pattern, channel, message) => got.push([channel, message]));
  await sub.subscribe('io:chat');
  await sub.psubscribe('__keyspace@0__:io:*');
  assert.equal(await r.publish('io:chat', 'hi'), 1);
  await r.config('SET', 'notify-keyspace-events', 'K$');
  await r.set('io:watched', '1');
  for (let i = 0; got.length < 2 && i < 250; i++) await sleep(20);
  assert.deepEqual(got, [['io:chat', 'hi'], ['__keyspace@0__:io:watched', 'set']]);
  await r.config('SET', 'notify-keyspace-events', '');
  sub.disconnect();
  // Reconnect after a kill -9 and restart: ioredis reconnects by itself
  // (its retryStrategy) and reads what was acknowledged before the kill.
  const kept = new Redis({ host, port });
  assert.equal(await kept.set('io:durable', 'kept'), 'OK');
  await restartNode(() => r.info('server'));
  assert.equal(await kept.get('io:durable'), 'kept');
  kept.disconnect();
  r.disconnect();
}

async function withNodeRedis() {
  const c = createClient({ socket: { host, port } });
  c.on('error', () => {});
  await c.connect();  // node-redis sends HELLO/CLIENT SETINFO as it connects
  assert.equal(await c.ping(), 'PONG');
  const tx = await c.multi().set('nr:tx', '1').incr('nr:tx').get('nr:tx').exec();
  assert.deepEqual(tx, ['OK', 2, '2']);
  const pl = await c.multi().set('nr:a', 'x').get('nr:a').execAsPipeline();
  assert.deepEqual(pl, ['OK', 'x']);
  const keys = [];
  for await (const k of c.scanIterator({ MATCH: 'nr:*', COUNT: 5 })) keys.push(...[].concat(k));
  assert.deepEqual(keys.sort(), ['nr:a', 'nr:tx']);
  assert.equal(await c.append('nr:a', 'yz'), 3);
  assert.equal(await c.getDel('nr:a'), 'xyz');
  // Expiry.
  assert.equal(await c.set('nr:short', 'v', { PX: 300 }), 'OK');
  const pttl = await c.pTTL('nr:short');
  assert.ok(pttl > 0 && pttl <= 300, `pttl ${pttl}`);
  await sleep(400);
  assert.equal(await c.get('nr:short'), null);
  // Pub/sub on a duplicate connection.
  const sub = c.duplicate();
  sub.on('error', () => {});
  await sub.connect();
  const got = [];
  await sub.subscribe('nr:chat', (message, channel) => got.push([channel, message]));
  assert.equal(await c.publish('nr:chat', 'yo'), 1);
  for (let i = 0; got.length < 1 && i < 250; i++) await sleep(20);
  assert.deepEqual(got, [['nr:chat', 'yo']]);
  await sub.quit();
  // Reconnect after a kill -9 and restart: node-redis reconnects by itself
  // (its reconnectStrategy) and reads what was acknowledged before the kill.
  assert.equal(await c.set('nr:durable', 'kept'), 'OK');
  const probe = createClient({ socket: { host, port, reconnectStrategy: 20 } });
  probe.on('error', () => {});
  await probe.connect();
  await restartNode(() => probe.info('server'));
  assert.equal(await c.get('nr:durable'), 'kept');
  await c.quit();
  probe.disconnect();
}

(async () => {
  await withIoredis();
  await withNodeRedis();
  console.log('ok: ioredis', require('ioredis/package.json').version,
              'node-redis', require('redis/package.json').version);
})().catch((e) => {
  console.log('FAIL', e && e.stack ? e.stack : e);
  process.exit(1);
});
