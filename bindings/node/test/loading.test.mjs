// The loading order, each case in a child process: $FINDITY_LIB, else the copy in prebuilds/,
// else the system loader. FINDITY_TEST_LIB names a libfindity to copy (set by scripts/test-node.sh).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, symlinkSync, readdirSync, copyFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const pkgDir = dirname(require.resolve('findity-auth/package.json'));
const modules = dirname(pkgDir);
const PROBE = "const f = require('findity-auth'); console.log('loaded ' + f.libraryPath() + ' version ' + f.version())";

function probe(cwd, findityLib) {
  const env = { ...process.env };
  delete env.LD_LIBRARY_PATH;
  delete env.NODE_OPTIONS;
  if (findityLib === undefined) delete env.FINDITY_LIB;
  else env.FINDITY_LIB = findityLib;
  const r = spawnSync(process.execPath, ['-e', PROBE], { cwd, env, encoding: 'utf8' });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

const prebuilt = join(pkgDir, 'prebuilds', `${process.platform}-${process.arch}`, 'libfindity.so');

test('the copy in prebuilds/ when FINDITY_LIB is unset', () => {
  const r = probe(modules);
  assert.equal(r.status, 0, r.err);
  assert.equal(r.out.trim().split(' version ')[0], `loaded ${prebuilt}`);
});

test('FINDITY_LIB comes first: a file, or a directory holding it', (t) => {
  const src = process.env.FINDITY_TEST_LIB;
  if (!src) return t.skip('FINDITY_TEST_LIB is not set');
  const dir = mkdtempSync(join(tmpdir(), 'findity-lib-'));
  try {
    copyFileSync(src, join(dir, 'libfindity.so'));
    for (const v of [join(dir, 'libfindity.so'), dir]) {
      const r = probe(modules, v);
      assert.equal(r.status, 0, r.err);
      assert.ok(r.out.startsWith(`loaded ${join(dir, 'libfindity.so')} `), r.out);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a FINDITY_LIB that does not load: a warning, then the next place', () => {
  const r = probe(modules, '/nonexistent/libfindity.so');
  assert.equal(r.status, 0, r.err);
  assert.ok(r.out.startsWith(`loaded ${prebuilt} `), r.out);
  assert.match(r.err, /FINDITY_LIB=\/nonexistent\/libfindity.so could not be loaded/);
});

test('a library that is not libfindity is refused', () => {
  const other = '/lib/x86_64-linux-gnu/libz.so.1';
  if (!existsSync(other)) return;
  const r = probe(modules, other);
  assert.match(r.err, /not libfindity/);
});

test('nothing to load: one error naming the three places', () => {
  // A copy of the installed package without prebuilds/, next to the same dependencies.
  const root = mkdtempSync(join(tmpdir(), 'findity-noprebuilds-'));
  try {
    const nm = join(root, 'node_modules');
    cpSync(pkgDir, join(nm, 'findity-auth'), { recursive: true });
    rmSync(join(nm, 'findity-auth', 'prebuilds'), { recursive: true, force: true });
    for (const name of readdirSync(modules)) {
      if (name !== 'findity-auth' && !name.startsWith('.')) symlinkSync(join(modules, name), join(nm, name));
    }
    const r = probe(root, '/nonexistent/libfindity.so');
    assert.notEqual(r.status, 0);
    assert.match(r.err, /findity-auth could not load the native library libfindity.so/);
    assert.match(r.err, /1\. \$FINDITY_LIB=\/nonexistent\/libfindity.so/);
    assert.match(r.err, /2\. the copy bundled in findity-auth/);
    assert.match(r.err, /3\. the system loader/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
