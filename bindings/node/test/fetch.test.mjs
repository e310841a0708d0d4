import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import util from 'node:util';
import { FindityAuth, clearCache } from 'findity-auth';
import { startEmulator, ID, SECRET } from './support.mjs';

let emu;
before(async () => { emu = await startEmulator(); });
after(() => emu.close());
beforeEach(async () => { clearCache(); await emu.reset(); });

test('fetch sends the Bearer token of the organization or the user', async () => {
  const org = new FindityAuth({ baseUrl: emu.url, clientId: ID, clientSecret: SECRET });
  let r = await org.fetch(`${emu.url}/api/v1/expenses`);
  assert.equal(r.status, 200);
  assert.equal((await r.json()).subject, `org:${ID}`);
  const user = new FindityAuth({ baseUrl: emu.url, clientId: ID, clientSecret: SECRET, userId: 'E1234' });
  r = await user.fetch(new URL('/api/v1/me', emu.url), { headers: { accept: 'application/json' } });
  assert.equal((await r.json()).subject, 'user:E1234');
  assert.equal(await user.token(), await user.token());
});

test('after a 401 the token is renewed and the request resent once', async () => {
  const auth = new FindityAuth({ baseUrl: emu.url, clientId: ID, clientSecret: SECRET });
  const first = await auth.token();
  await emu.fault('endpoint=api&kind=status:401');
  const r = await auth.fetch(`${emu.url}/api/v1/expenses`, { method: 'POST', body: JSON.stringify({ amount: 1 }), headers: { 'content-type': 'application/json' } });
  assert.equal(r.status, 200);
  const s = await emu.stats();
  assert.equal(s.faults_served, 1);
  assert.equal(s.api_requests, 2);
  assert.equal(s.token_requests, 2, 'the rejected token was renewed');
  assert.notEqual(await auth.token(), first);
});

test('a second 401 is returned as it is', async () => {
  const auth = new FindityAuth({ baseUrl: emu.url, clientId: ID, clientSecret: SECRET });
  await emu.fault('endpoint=api&kind=status:401&count=3');
  const r = await auth.fetch(`${emu.url}/api/v1/expenses`);
  assert.equal(r.status, 401);
  assert.equal((await emu.stats()).api_requests, 2);
});

test('a Request object and a fetch of one\'s own', async () => {
  const seen = [];
  const auth = new FindityAuth({
    baseUrl: emu.url, clientId: ID, clientSecret: SECRET,
    fetch: (req) => { seen.push(req.headers.get('authorization')); return fetch(req); },
  });
  const r = await auth.fetch(new Request(`${emu.url}/api/v1/expenses`, { headers: { authorization: 'Bearer stale' } }));
  assert.equal(r.status, 200);
  assert.deepEqual(seen, [`Bearer ${await auth.token()}`]);
});

test('no token: the error, nothing sent', async () => {
  const auth = new FindityAuth({ baseUrl: emu.url, clientId: ID, clientSecret: 'wrong' });
  await assert.rejects(auth.fetch(`${emu.url}/api/v1/expenses`), { name: 'FindityError', status: 'AUTH' });
  assert.equal((await emu.stats()).api_requests, 0);
});

test('the secret is never shown', () => {
  const auth = new FindityAuth({ baseUrl: emu.url, clientId: ID, clientSecret: SECRET });
  assert.ok(!JSON.stringify(auth).includes(SECRET));
  assert.ok(!util.inspect(auth, { showHidden: true, depth: 5 }).includes(SECRET));
  assert.throws(() => new FindityAuth({ baseUrl: emu.url, clientId: ID }), TypeError);
});
