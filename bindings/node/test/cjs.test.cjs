// CommonJS: require('findity-auth') is the same module instance as the ESM import.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const findity = require('findity-auth');

test('require() gives the API, and the ESM import shares it', async () => {
  for (const name of ['getToken', 'getUserToken', 'cachedToken', 'invalidateToken', 'invalidate', 'clearCache',
    'tokenExpiresIn', 'setOption', 'stats', 'setLogger', 'version', 'FindityError', 'FindityAuth']) {
    assert.equal(typeof findity[name], 'function', name);
  }
  const esm = await import('findity-auth');
  assert.equal(esm.getToken, findity.getToken);
  assert.equal(esm.default, findity);
  assert.equal(findity.default, findity);
  assert.ok(new findity.FindityError('AUTH', 401, 'x') instanceof esm.FindityError);
});
