// 0150: the files airlockd keeps. The database and its WAL are created 0600 whatever the umask
// (they hold every session, participants' keys and agents' credential hashes), and airlockd
// warns at start when its data directory is open to other users.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { CI_JOBS, client, is, REASON, registerAgent, startAirlock, startOidc, USERS } from './lib.mjs';

let oidc, ci;
const dirs = [];
before(async () => {
  oidc = await startOidc(USERS);
  ci = await startOidc(CI_JOBS);
  process.umask(0o022); // the common default: SQLite alone would create 0644 files with it
});
after(async () => {
  await oidc?.close();
  await ci?.close();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function dataDir(mode) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-files-'));
  fs.chmodSync(d, mode);
  dirs.push(d);
  return d;
}

const mode = (p) => (fs.statSync(p).mode & 0o777).toString(8).padStart(4, '0');
const warned = (srv) => /data directory .* is readable by other users \(mode 0755\)/.test(fs.readFileSync(srv.logPath, 'utf8'));

test('0151 airlock.db and airlock.db-wal are 0600 under umask 022; a 0755 data dir is warned about', async () => {
  const dir = dataDir(0o755);
  const srv = await startAirlock({ oidc, ci, dataDir: dir });
  try {
    // a write, so that the WAL holds something
    const erin = client(srv, await oidc.token('erin'));
    await registerAgent(erin, 'lab/files');
    const alice = client(srv, await oidc.token('alice'));
    is(await alice.post('/api/v1/debug-sessions', { template: 'ci-debug', agent: 'lab/files', reason: REASON }), 201);
    const db = path.join(dir, 'airlock.db');
    assert.equal(mode(db), '0600', 'airlock.db');
    assert.ok(fs.existsSync(`${db}-wal`), 'the WAL exists while airlockd runs');
    assert.equal(mode(`${db}-wal`), '0600', 'airlock.db-wal');
    for (const f of fs.readdirSync(dir).filter((n) => n.startsWith('airlock.db'))) {
      assert.equal(mode(path.join(dir, f)), '0600', f);
    }
    assert.ok(warned(srv), `no warning about the 0755 data dir in the log:\n${fs.readFileSync(srv.logPath, 'utf8')}`);
  } finally {
    await srv.stop();
  }
});

test('0152 a 0700 data dir starts without that warning', async () => {
  const dir = dataDir(0o700);
  const srv = await startAirlock({ oidc, ci, dataDir: dir });
  try {
    is(await client(srv, null).get('/healthz'), 200);
    assert.equal(mode(path.join(dir, 'airlock.db')), '0600');
    assert.ok(!/readable by other users/.test(fs.readFileSync(srv.logPath, 'utf8')), 'warned about a private data dir');
  } finally {
    await srv.stop();
  }
});
