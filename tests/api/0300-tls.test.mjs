// 0300: built-in TLS (tls: {cert, key}). A self-signed certificate made with openssl; the API,
// dev sign-in and an authenticated call work over https, and plain http on that port does not.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { AIRLOCKD, freePort, sleep } from './lib.mjs';

let dir, port, proc, ca;

function get(method, p, { token, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: p, method, ca,
      headers: token ? { Authorization: `Bearer ${token}` } : {} }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, json: text ? JSON.parse(text) : null }));
    });
    req.on('error', reject);
    if (body) req.write(JSON.stringify(body));
    req.end();
  });
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-tls-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-nodes', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'), '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  ca = fs.readFileSync(path.join(dir, 'cert.pem'));
  port = await freePort();
  fs.writeFileSync(path.join(dir, 'airlock.yaml'), [
    `listen: 127.0.0.1:${port}`,
    `tls: {cert: ${path.join(dir, 'cert.pem')}, key: ${path.join(dir, 'key.pem')}}`,
    'auth: {dev: true}',
    'templates:',
    '  - name: sandbox',
    '    allowed: {groups: [developers]}',
  ].join('\n'));
  proc = spawn(AIRLOCKD, ['--config', path.join(dir, 'airlock.yaml'), '--data-dir', dir],
    { stdio: ['ignore', fs.openSync(path.join(dir, 'log'), 'a'), fs.openSync(path.join(dir, 'log'), 'a')] });
  for (let i = 0; i < 100; i++) {
    try { if ((await get('GET', '/readyz')).status === 200) return; } catch { /* not yet */ }
    await sleep(50); // the poll interval of the wait for /readyz above
  }
  throw new Error(`airlockd with TLS did not start: ${fs.readFileSync(path.join(dir, 'log'), 'utf8')}`);
});
after(async () => {
  if (proc && proc.exitCode === null) {
    const done = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await done;
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

test('0301 https serves the API; the derived publicUrl is https; dev sign-in and a bearer call work', async () => {
  const cfg = await get('GET', '/api/v1/config');
  assert.equal(cfg.status, 200);
  assert.equal(cfg.json.publicUrl, `https://127.0.0.1:${port}`);
  const t = await get('POST', '/api/v1/dev/token', { body: { user: 'alice', groups: ['developers'] } });
  assert.equal(t.status, 200);
  const me = await get('GET', '/api/v1/me', { token: t.json.token });
  assert.equal(me.status, 200);
  assert.equal(me.json.user, 'alice');
});

test('0302 plain http on the TLS port gets no API answer', async () => {
  const r = await fetch(`http://127.0.0.1:${port}/api/v1/config`).then((x) => x.status, () => 'refused');
  assert.notEqual(r, 200);
});
