// Test helpers: target/debug/findity-emulator ($FINDITY_EMULATOR) on a free port, and its control API.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const ID = 'node-client';
export const SECRET = 'node-secret-do-not-leak';

export async function startEmulator(...extra) {
  const exe = process.env.FINDITY_EMULATOR;
  if (!exe) throw new Error('FINDITY_EMULATOR is not set (make test-node sets it)');
  const dir = mkdtempSync(join(tmpdir(), 'findity-emu-'));
  const urlFile = join(dir, 'url');
  const child = spawn(exe, ['--port', '0', '--quiet', '--exit-on-stdin-close', '--url-file', urlFile,
    '--client', `${ID}:${SECRET}`, '--client', 'other-client:other-secret', ...extra],
  { stdio: ['pipe', 'ignore', 'inherit'] });
  let url = '';
  for (let i = 0; i < 200 && !url; i++) {
    await sleep(25);
    try { url = readFileSync(urlFile, 'utf8').trim(); } catch { /* not yet */ }
  }
  rmSync(dir, { recursive: true, force: true });
  if (!url) {
    child.kill();
    throw new Error('the emulator did not start');
  }
  const control = async (method, path) => {
    const r = await fetch(url + path, { method });
    return r.json();
  };
  return {
    url,
    stats: () => control('GET', '/_emulator/stats'),
    reset: () => control('POST', '/_emulator/reset'),
    config: (q) => control('POST', `/_emulator/config?${q}`),
    fault: (q) => control('POST', `/_emulator/fault?${q}`),
    clearFaults: () => control('POST', '/_emulator/fault/clear'),
    close: () => { child.stdin.end(); child.kill('SIGKILL'); },
  };
}

/** 'resolved:<value>' if `p` is already settled, else 'pending' (checked without waiting: with
 * both promises settled, Promise.race takes the first in order). */
export async function stateOf(p) {
  const PENDING = Symbol('pending');
  return Promise.race([p, Promise.resolve(PENDING)])
    .then((v) => (v === PENDING ? 'pending' : `resolved:${v}`), (e) => `rejected:${e}`);
}
