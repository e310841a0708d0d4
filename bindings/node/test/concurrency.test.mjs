import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import dns from 'node:dns';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { getToken, getUserToken, cachedToken, clearCache, setOption, stats } from 'findity-auth';
import { startEmulator, stateOf, ID, SECRET } from './support.mjs';

let emu;
before(async () => { emu = await startEmulator(); });
after(() => emu.close());
beforeEach(async () => { clearCache(); setOption('timeout_ms', ''); await emu.reset(); });

test('200 concurrent awaits on one cold key make one request', async () => {
  await emu.config('latency_ms=300');
  const tokens = await Promise.all(Array.from({ length: 200 }, () => getToken(emu.url, ID, SECRET)));
  assert.equal(new Set(tokens).size, 1);
  const s = await emu.stats();
  assert.equal(s.client_credentials, 1);
  assert.equal(s.max_concurrent, 1);
});

test('200 concurrent awaits on one cold user: one grant, one code, one organization token', async () => {
  await emu.config('latency_ms=200');
  const tokens = await Promise.all(Array.from({ length: 200 }, () => getUserToken(emu.url, ID, SECRET, 'E200')));
  assert.equal(new Set(tokens).size, 1);
  const s = await emu.stats();
  assert.deepEqual([s.client_credentials, s.authorization_grant, s.authorization_code], [1, 1, 1]);
});

test('every concurrent failure carries its own status and message (read on the calling thread)', async () => {
  await emu.config('latency_ms=50');
  const results = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => (i % 2
    ? getToken(emu.url, ID, 'not-the-secret')
    : getUserToken(emu.url, ID, SECRET, `E${i}`))));
  results.forEach((r, i) => {
    if (i % 2) {
      assert.equal(r.status, 'rejected');
      assert.equal(r.reason.status, 'AUTH');
      assert.equal(r.reason.httpStatus, 401);
      assert.match(r.reason.message, /invalid_client/);
    } else {
      assert.equal(r.status, 'fulfilled', String(r.reason));
    }
  });
});

test('a cached token is an already-resolved promise, served without leaving the loop\'s thread', async () => {
  const token = await getToken(emu.url, ID, SECRET);
  await emu.config('latency_ms=3000'); // any request now would take 3 s
  const t0 = performance.now();
  for (let i = 0; i < 1000; i++) {
    const p = getToken(emu.url, ID, SECRET);
    assert.equal(await stateOf(p), `resolved:${token}`);
  }
  assert.ok(performance.now() - t0 < 1500, `${performance.now() - t0} ms for 1000 cached tokens`);
  assert.equal((await emu.stats()).token_requests, 1);
});

test('the event loop runs while a cold token is fetched, and a cached one is served meanwhile', async () => {
  const org = await getToken(emu.url, ID, SECRET);
  await emu.config('latency_ms=1500');
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  let ticks = 0;
  const timer = setInterval(() => { ticks++; }, 10);
  const cold = getUserToken(emu.url, ID, SECRET, 'slow-user');
  assert.equal(await stateOf(cold), 'pending');
  // Meanwhile the cached organization token is served at once.
  assert.equal(await stateOf(getToken(emu.url, ID, SECRET)), `resolved:${org}`);
  assert.equal(cachedToken(emu.url, ID, SECRET), org);
  const user = await cold;
  clearInterval(timer);
  h.disable();
  assert.ok(user.length > 0);
  assert.ok(ticks >= 50, `only ${ticks} ticks of 10 ms in ~3 s`);
  assert.ok(h.max / 1e6 < 200, `the loop was held ${h.max / 1e6} ms`);
});

test('blocked token calls do not hold libuv\'s pool (dns.lookup still answers)', async () => {
  setOption('timeout_ms', 4000);
  await emu.fault('endpoint=token&kind=hang&count=0');
  const hung = ['a', 'b', 'c', 'd', 'e', 'f'].map((k) => getToken(emu.url, `hung-${k}`, SECRET).catch((e) => e));
  await new Promise((r) => setTimeout(r, 300));
  const t0 = performance.now();
  for (let i = 0; i < 4; i++) await dns.promises.lookup('localhost');
  const ms = performance.now() - t0;
  assert.ok(ms < 1000, `dns.lookup took ${ms} ms while 6 token calls hung`);
  const errors = await Promise.all(hung);
  for (const e of errors) assert.equal(e.status, 'NETWORK', String(e));
  await emu.clearFaults();
});

test('more cold keys than worker threads all get their tokens', async () => {
  await emu.config('latency_ms=100');
  const tokens = await Promise.all(Array.from({ length: 30 }, (_, i) => getUserToken(emu.url, ID, SECRET, `U${i}`)));
  assert.equal(new Set(tokens).size, 30);
  assert.equal((await emu.stats()).authorization_grant, 30);
  assert.ok(stats().authorizationGrantRequests >= 30);
});
