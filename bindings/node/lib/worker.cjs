'use strict';
// A worker thread of findity-auth's own: runs the blocking token calls (findity_get_token,
// findity_user_token) off the event loop and reads the library's thread-local last error on the
// same thread, right after the call. One call at a time per worker.
const { parentPort, workerData } = require('node:worker_threads');
const native = require('./native.cjs');

const fns = native.open(workerData.file);
const { call } = native.makeCaller(fns);

parentPort.on('message', ({ id, baseUrl, clientId, clientSecret, userId }) => {
  let result;
  try {
    result = userId === null
      ? call((b, n, o) => fns.get_token(baseUrl, clientId, clientSecret, b, n, o))
      : call((b, n, o) => fns.user_token(baseUrl, clientId, clientSecret, userId, b, n, o));
  } catch (e) {
    result = { status: 6, httpStatus: 0, message: `findity-auth worker: ${e && e.message}` };
  }
  parentPort.postMessage({ id, ...result });
});
