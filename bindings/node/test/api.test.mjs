import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import {
  getToken, getUserToken, cachedToken, invalidateToken, invalidate, clearCache, tokenExpiresIn,
  setOption, stats, version, FindityError,
} from 'findity-auth';
import { startEmulator, ID, SECRET } from './support.mjs';

let emu;
before(async () => { emu = await startEmulator('--unknown-users', 'ghost'); });
after(() => emu.close());
beforeEach(async () => { clearCache(); setOption('timeout_ms', ''); await emu.reset(); });

test('version is the library\'s', () => {
  assert.match(version(), /^0\.\d+\.\d+$/);
});

test('an organization token is fetched once, then cached', async () => {
  const before = stats();
  const t1 = await getToken(emu.url, ID, SECRET);
  const t2 = await getToken(emu.url, ID, SECRET);
  assert.ok(t1.length > 0);
  assert.equal(t1, t2);
  assert.equal((await emu.stats()).client_credentials, 1);
  const s = stats();
  assert.equal(s.clientCredentialsRequests - before.clientCredentialsRequests, 1);
  assert.ok(s.cacheHits > before.cacheHits);
  const left = tokenExpiresIn(emu.url, ID);
  assert.ok(left > 3500 && left <= 3600, `expires in ${left}`);
  assert.equal(tokenExpiresIn(emu.url, ID, null), left);
});

test('a user token: grant + code once, then cached', async () => {
  const u1 = await getUserToken(emu.url, ID, SECRET, 'E1');
  const u2 = await getUserToken(emu.url, ID, SECRET, 'E1');
  assert.equal(u1, u2);
  assert.notEqual(u1, await getToken(emu.url, ID, SECRET));
  const s = await emu.stats();
  assert.deepEqual([s.client_credentials, s.authorization_grant, s.authorization_code], [1, 1, 1]);
  assert.equal(cachedToken(emu.url, ID, SECRET, 'E1'), u1);
  assert.ok(tokenExpiresIn(emu.url, ID, 'E1') > 0);
});

test('cachedToken is synchronous and never requests', async () => {
  assert.equal(cachedToken(emu.url, ID, SECRET), null);
  assert.equal(cachedToken(emu.url, ID, SECRET, undefined), null);
  assert.equal(cachedToken(emu.url, ID, SECRET, 'E1'), null);
  assert.equal((await emu.stats()).token_requests, 0);
  const t = await getToken(emu.url, ID, SECRET);
  assert.equal(cachedToken(emu.url, ID, SECRET, null), t);
  assert.equal(cachedToken(emu.url, ID, 'another-secret'), null, 'another secret gets nothing');
});

test('invalidateToken drops only that token; invalidate drops any', async () => {
  const t1 = await getToken(emu.url, ID, SECRET);
  invalidateToken(emu.url, ID, t1);
  assert.equal(cachedToken(emu.url, ID, SECRET), null);
  const t2 = await getToken(emu.url, ID, SECRET);
  assert.notEqual(t1, t2);
  invalidateToken(emu.url, ID, t1, null); // stale: t2 stays
  assert.equal(cachedToken(emu.url, ID, SECRET), t2);
  invalidate(emu.url, ID);
  assert.equal(cachedToken(emu.url, ID, SECRET), null);
  assert.equal(tokenExpiresIn(emu.url, ID), 0);
  const u = await getUserToken(emu.url, ID, SECRET, 'E2');
  invalidateToken(emu.url, ID, u, 'E2');
  assert.equal(cachedToken(emu.url, ID, SECRET, 'E2'), null);
  invalidate(emu.url, ID, 'nobody');
});

test('clearCache forgets every token', async () => {
  await getToken(emu.url, ID, SECRET);
  await getUserToken(emu.url, ID, SECRET, 'E3');
  clearCache();
  assert.equal(cachedToken(emu.url, ID, SECRET), null);
  assert.equal(cachedToken(emu.url, ID, SECRET, 'E3'), null);
});

test('a wrong secret is AUTH with HTTP 401, the library\'s message, never the secret', async () => {
  const secret = 'wrong-secret-xyz-123';
  await assert.rejects(getToken(emu.url, ID, secret), (e) => {
    assert.ok(e instanceof FindityError);
    assert.ok(e instanceof Error);
    assert.equal(e.name, 'FindityError');
    assert.equal(e.status, 'AUTH');
    assert.equal(e.httpStatus, 401);
    assert.match(e.message, /invalid_client/);
    assert.ok(!e.message.includes(secret) && !e.stack.includes(secret));
    return true;
  });
  assert.ok(stats().failures[4] >= 1);
});

test('an unknown user is AUTH with HTTP 400', async () => {
  await assert.rejects(getUserToken(emu.url, ID, SECRET, 'ghost'), { name: 'FindityError', status: 'AUTH', httpStatus: 400 });
});

test('a failing server is SERVER with its HTTP status', async () => {
  setOption('timeout_ms', 1500);
  await emu.fault('endpoint=token&kind=status:500&count=0');
  await assert.rejects(getToken(emu.url, ID, SECRET), { status: 'SERVER', httpStatus: 500 });
  await emu.clearFaults();
});

test('no server is NETWORK with HTTP status 0', async () => {
  const port = await new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
  setOption('timeout_ms', '1000');
  await assert.rejects(getToken(`http://127.0.0.1:${port}`, ID, SECRET), (e) => {
    assert.equal(e.status, 'NETWORK');
    assert.equal(e.httpStatus, 0);
    assert.ok(e.message.length > 0);
    return true;
  });
});

test('bad arguments: the library\'s message; a TypeError for a value that is not a string', async () => {
  await assert.rejects(getToken('ftp://example.com', ID, SECRET), (e) => {
    assert.ok(e instanceof FindityError);
    assert.equal(e.status, 'INVALID_ARGUMENT');
    assert.equal(e.httpStatus, 0);
    assert.match(e.message, /base_url/);
    return true;
  });
  await assert.rejects(getToken(emu.url, '', SECRET), { status: 'INVALID_ARGUMENT' });
  await assert.rejects(getToken(emu.url, 'a\0b', SECRET), { status: 'INVALID_ARGUMENT' });
  await assert.rejects(getToken(emu.url, 42, SECRET), TypeError);
  await assert.rejects(getToken(undefined, ID, SECRET), TypeError);
  await assert.rejects(getUserToken(emu.url, ID, SECRET, null), TypeError);
  await assert.rejects(getUserToken(emu.url, ID, SECRET, ''), { status: 'INVALID_ARGUMENT' });
  assert.throws(() => cachedToken('ftp://x', ID, SECRET), { status: 'INVALID_ARGUMENT' });
  assert.throws(() => cachedToken(emu.url, ID, SECRET, 7), TypeError);
  assert.throws(() => invalidateToken(emu.url, ID, null), TypeError);
  assert.throws(() => setOption('no_such_option', '1'), (e) => e.status === 'INVALID_ARGUMENT' && /no_such_option/.test(e.message));
  assert.throws(() => setOption('timeout_ms', 'soon'), { status: 'INVALID_ARGUMENT' });
  assert.equal((await emu.stats()).token_requests, 0, 'nothing was sent');
});

test('getToken does not throw synchronously, it rejects', () => {
  const p = getToken(1, 2, 3);
  assert.ok(p instanceof Promise);
  return assert.rejects(p, TypeError);
});

test('non-ASCII user ids are UTF-8', async () => {
  const u = await getUserToken(emu.url, ID, SECRET, 'Åsa-Ö');
  assert.equal(cachedToken(emu.url, ID, SECRET, 'Åsa-Ö'), u);
});

test('stats has every counter, camelCase', () => {
  const s = stats();
  for (const k of ['cacheHits', 'cacheMisses', 'clientCredentialsRequests', 'refreshTokenRequests',
    'authorizationGrantRequests', 'authorizationCodeRequests', 'backgroundRefreshes', 'fallbacks', 'retries',
    'throttlePauses', 'throttleWaits', 'idleEvictions', 'storeHits', 'storeWrites', 'storeLockWaits', 'storeErrors']) {
    assert.equal(typeof s[k], 'number', k);
  }
  assert.equal(s.failures.length, 7);
});
