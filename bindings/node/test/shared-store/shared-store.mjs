// One process of the three-language shared-store test (scripts/test-node.sh):
//   node shared-store.mjs BASE_URL CLIENT_ID SECRET STORE_DIR START_MS
import { createHash } from 'node:crypto';
import { setOption, getToken, stats } from 'findity-auth';

const [baseUrl, clientId, secret, dir, start] = process.argv.slice(2);
setOption('shared_cache', `file:${dir}`);
const wait = Number(start) - Date.now();
if (wait > 0) await new Promise((r) => setTimeout(r, wait));
const token = await getToken(baseUrl, clientId, secret);
const s = stats();
console.log(`node ${createHash('sha256').update(token).digest('hex').slice(0, 16)} store_hits=${s.storeHits} requests=${s.clientCredentialsRequests}`);
