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
  await c.quit();
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
