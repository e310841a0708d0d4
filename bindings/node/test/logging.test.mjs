import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { setLogger, getToken, getUserToken, invalidateToken, clearCache } from 'findity-auth';
import { startEmulator, ID, SECRET } from './support.mjs';

test('log lines reach the logger on the loop\'s thread, without secrets or tokens', async () => {
  const emu = await startEmulator();
  after(() => emu.close());
  const lines = [];
  setLogger((level, message) => lines.push([level, message]), 'debug');
  const token = await getToken(emu.url, ID, SECRET); // logged on a worker thread
  const user = await getUserToken(emu.url, ID, SECRET, 'E9');
  invalidateToken(emu.url, ID, token); // logged on this thread
  await new Promise((r) => setTimeout(r, 100));
  setLogger(null);
  const n = lines.length;
  assert.ok(n >= 2, JSON.stringify(lines));
  const all = lines.map(([l, m]) => `${l} ${m}`).join('\n');
  assert.match(all, /client_credentials/);
  assert.match(all, /invalidated/);
  for (const secret of [SECRET, token, user]) assert.ok(!all.includes(secret));
  for (const [level] of lines) assert.ok(['error', 'warn', 'info', 'debug'].includes(level));
  clearCache();
  await getToken(emu.url, ID, SECRET);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(lines.length, n, 'nothing after setLogger(null)');
});

test('a throwing logger does not break the call', async () => {
  const emu = await startEmulator();
  after(() => emu.close());
  setLogger(() => { throw new Error('logger failed'); });
  try {
    assert.ok((await getToken(emu.url, ID, SECRET)).length > 0);
  } finally {
    setLogger(null);
  }
  assert.throws(() => setLogger('not a function'), TypeError);
});
