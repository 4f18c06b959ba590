// 2150: one contract for every error. Every 4xx/5xx airlockd itself sends carries the JSON
// envelope {error, code, details?} with the code of its status: size limits (413, 414, 431),
// malformed paths and query arguments, 405; /connect does not reveal a session the caller may
// not see; the relay's connection cap is 429 as documented; string limits count characters;
// /metrics counts each reply under its true status; a second airlockd on a used port fails.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';

import {
  agentOnline, assertSchema, configYaml, is, namesField, openWs, REASON, registerAgent, runAirlockdExpectExit,
  sessPath, setup, sshKey, startAirlock,
} from './lib.mjs';

let env;
before(async () => { env = await setup(); });
after(async () => { await env?.close(); });

/** Asserts an error envelope with this status and code (schema Error, code as given). */
function envelope(r, status, code, what = '') {
  assert.equal(r.status, status, `${what}: expected ${status}, got ${r.status}: ${r.text?.slice(0, 300)}`);
  assert.match(String(r.headers['content-type']), /^application\/json/, `${what}: JSON body`);
  assertSchema('Error', r.json, `${what} body`);
  assert.equal(r.json.code, code, `${what}: code`);
  assert.ok(r.json.error.length > 0, `${what}: a message`);
}

/** Counter value of airlock_http_requests_total for a route and status (0 when absent). */
async function requestCount(route, status) {
  const r = await env.anon.get('/metrics');
  is(r, 200);
  const esc = route.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`^airlock_http_requests_total\\{method="[A-Z]+",route="${esc}",status="${status}"\\} (\\d+)$`, 'm');
  const m = r.text.match(re);
  return m ? Number(m[1]) : 0;
}

test('2151 /metrics counts a static 404 and a 405 with their real status', async () => {
  const before404 = await requestCount('static', 404);
  const r = await env.anon.get('/assets/no-such-file-2151.js', { validate: false });
  envelope(r, 404, 'NOT_FOUND', 'missing asset');
  assert.equal(await requestCount('static', 404), before404 + 1, 'the static 404 is counted as 404');
  const alice = await env.client('alice');
  const m = await alice.req('DELETE', '/api/v1/debug-sessions', { validate: false });
  envelope(m, 405, 'BAD_REQUEST', 'DELETE on a GET/POST path');
  assert.ok(await requestCount('other', 405) >= 1, 'the 405 is counted as 405');
});

test('2152 a path segment that is not UTF-8 is 400 with the envelope (was 404 {})', async () => {
  const alice = await env.client('alice');
  for (const p of ['/api/v1/debug-sessions/%ff%fe', '/api/v1/debug-sessions/%C0%AF', '/api/v1/agents/%ff']) {
    envelope(await alice.get(p), 400, 'BAD_REQUEST', p);
  }
  envelope(await alice.get('/api/v1/debug-sessions/%zz'), 400, 'BAD_REQUEST', 'bad escape');
});

test('2153 a query argument that is not UTF-8 still gets a JSON envelope naming it', async () => {
  const alice = await env.client('alice');
  const r = await alice.get('/api/v1/debug-sessions?state=%ff%fe');
  envelope(r, 400, 'BAD_REQUEST', 'state=%ff%fe');
  assert.match(r.json.error, /state/);
});

test('2154 a request target over 8 KiB is 414 with the envelope', async () => {
  const r = await env.anon.get(`/api/v1/config?x=${'a'.repeat(9000)}`, { validate: false });
  envelope(r, 414, 'URI_TOO_LONG', 'long target');
  assertSchema('ErrorUriTooLong', r.json);
  is(await env.anon.get(`/api/v1/config?x=${'a'.repeat(4000)}`), 200, 'a 4 KiB target is fine');
});

test('2155 request headers over 32 KiB are 431 with the envelope', async () => {
  const r = await env.anon.get('/api/v1/config', { headers: { 'X-Padding': 'p'.repeat(40 * 1024) }, validate: false });
  envelope(r, 431, 'HEADERS_TOO_LARGE', 'big headers');
  assertSchema('ErrorHeadersTooLarge', r.json);
  is(await env.anon.get('/api/v1/config', { headers: { 'X-Padding': 'p'.repeat(20 * 1024) } }), 200, '20 KiB of headers are fine');
});

test('2156 a body over 64 KiB is 413 with the envelope', async () => {
  const alice = await env.client('alice');
  const r = await alice.post('/api/v1/debug-sessions', null, { raw: JSON.stringify({ reason: 'x'.repeat(70 * 1024) }) });
  envelope(r, 413, 'PAYLOAD_TOO_LARGE', 'big body');
});

test('2157 string limits count characters, not bytes', async () => {
  const erin = await env.client('erin');
  await registerAgent(erin, 'lab/unicode');
  const alice = await env.client('alice');
  // ci-debug: requestReason.maxLength 200; '€' is 3 bytes, '😀' 4 bytes (2 UTF-16 units)
  for (const ch of ['€', '😀']) {
    const ok = await alice.post('/api/v1/debug-sessions', { template: 'ci-debug', agent: 'lab/unicode', reason: ch.repeat(200) });
    is(ok, 201, `200 × ${ch} is 200 characters`);
    const long = await alice.post('/api/v1/debug-sessions', { template: 'ci-debug', agent: 'lab/unicode', reason: ch.repeat(201) });
    is(long, 400, `201 × ${ch}`);
    namesField(long, 'reason');
  }
  // a field's own limit: invitedParticipants items are at most 254 characters
  const inv = await alice.post('/api/v1/debug-sessions', { template: 'open', agent: 'lab/unicode', invitedParticipants: ['é'.repeat(254)] });
  is(inv, 201, '254 × é');
  const inv2 = await alice.post('/api/v1/debug-sessions', { template: 'open', agent: 'lab/unicode', invitedParticipants: ['é'.repeat(255)] });
  is(inv2, 400, '255 × é');
  namesField(inv2, 'invitedParticipants');
  // agent labels: keys up to 63, values up to 255 characters
  await registerAgent(erin, 'lab/unicode-labels', { body: { labels: { ['é'.repeat(63)]: 'ü'.repeat(255) } } });
  const bad = await erin.post('/api/v1/agents', { name: 'lab/unicode-labels2', labels: { k: 'ü'.repeat(256) }, hostKeys: [sshKey('h').pub], version: '0.0.0-test' });
  is(bad, 400, '256 × ü');
  namesField(bad, 'labels');
});

test('2158 /connect: 404 for a session the caller may not see, 403 for one they see but did not join', async () => {
  const erin = await env.client('erin');
  const reg = await registerAgent(erin, 'lab/connect-404');
  const ctl = await agentOnline(env.srv, 'lab/connect-404', reg.credential);
  try {
    const alice = await env.client('alice');
    const s = is(await alice.post('/api/v1/debug-sessions', { template: 'open', agent: 'lab/connect-404', reason: REASON }), 201);
    await ctl.waitSession(s.name, (x) => x.state === 'Active');
    const path = `${sessPath(s.name)}/connect`;
    for (const who of ['frank', 'bob']) {
      const r = await openWs(env.srv, path, { token: await env.token(who) });
      assert.equal(r.ok, false);
      assert.equal(r.status, 404, `${who} may not see it: ${r.text}`);
      assert.equal(r.json.code, 'NOT_FOUND');
    }
    const missing = await openWs(env.srv, `${sessPath('ds-0000000000')}/connect`, { token: await env.token('frank') });
    assert.equal(missing.status, 404, 'a session that does not exist looks the same');
    // dave is an admin: he sees every session, but is not its participant
    const dave = await openWs(env.srv, path, { token: await env.token('dave') });
    assert.equal(dave.status, 403, dave.text);
    assert.equal(dave.json.code, 'FORBIDDEN');
    // the owner is listed from activation, but has not joined: no key, nothing to connect with
    const early = await openWs(env.srv, path, { token: await env.token('alice') });
    assert.equal(early.status, 403, `the owner before joining: ${early.text}`);
    assert.equal(early.json.code, 'FORBIDDEN');
    // the owner joins and connects
    is(await alice.post(sessPath(s.name, 'join'), { sshPublicKey: sshKey().pub }), 200);
    const own = await openWs(env.srv, path, { token: await env.token('alice') });
    assert.equal(own.ok, true, `the owner connects: ${own.status} ${own.text}`);
    own.conn.ws.terminate();
  } finally {
    await ctl.close();
  }
});

test('2159 the relay connection cap is 429 TOO_MANY_REQUESTS, as openapi.yaml says', async () => {
  const erin = await env.client('erin');
  const reg = await registerAgent(erin, 'lab/cap');
  const ctl = await agentOnline(env.srv, 'lab/cap', reg.credential);
  const open = [];
  try {
    const alice = await env.client('alice');
    // tiny: maxParticipants 2, so 8 relayed connections per session
    const s = is(await alice.post('/api/v1/debug-sessions', { template: 'tiny', agent: 'lab/cap', reason: REASON }), 201);
    await ctl.waitSession(s.name, (x) => x.state === 'Active');
    is(await alice.post(sessPath(s.name, 'join'), { sshPublicKey: sshKey().pub }), 200);
    const tok = await env.token('alice');
    for (let i = 0; i < 8; i++) {
      const r = await openWs(env.srv, `${sessPath(s.name)}/connect`, { token: tok });
      assert.equal(r.ok, true, `connection ${i + 1}: ${r.status} ${r.text}`);
      open.push(r.conn);
    }
    const r = await openWs(env.srv, `${sessPath(s.name)}/connect`, { token: tok });
    assert.equal(r.status, 429, r.text);
    assert.equal(r.json.code, 'TOO_MANY_REQUESTS');
    const op = (await import('./lib.mjs')).spec.paths['/api/v1/debug-sessions/{name}/connect'].get;
    assert.ok(op.responses['429'], 'openapi.yaml describes the cap as 429');
    assert.ok(!/\(409\)/.test(op.description), 'and no longer as 409');
  } finally {
    for (const c of open) c.ws.terminate();
    await ctl.close();
  }
});

test('2160 a second airlockd on a port in use fails at start with "address in use"', async () => {
  const text = configYaml({ publicUrl: env.base, oidc: env.oidc, ci: env.ci });
  const r = await runAirlockdExpectExit(text, { listen: `127.0.0.1:${env.srv.port}` });
  assert.ok(r.code !== null && r.code !== 0, `exits non-zero on its own: ${r.code}/${r.signal} ${r.output}`);
  assert.match(r.output, /address in use/i);
  is(await env.anon.get('/readyz'), 200, 'the first keeps serving');
});

test('2161 libmicrohttpd\'s own messages are JSON log lines under --log-format json', async () => {
  const s2 = await startAirlock({ oidc: env.oidc, ci: env.ci, args: ['--log-format', 'json'] });
  try {
    // a Content-Length that is not a number: libmicrohttpd answers it itself and logs why
    await new Promise((resolve, reject) => {
      const sock = net.connect(s2.port, '127.0.0.1', () => sock.end('POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n'));
      sock.on('data', () => {});
      sock.on('close', resolve);
      sock.on('error', reject);
    });
    const { readFileSync } = await import('node:fs');
    let lines = [];
    for (let i = 0; i < 100; i++) { // wait for the line to reach the file (an event: its content)
      lines = readFileSync(s2.logPath, 'utf8').split('\n').filter((l) => l.length);
      if (lines.some((l) => l.includes('libmicrohttpd'))) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const mhd = lines.filter((l) => l.includes('libmicrohttpd'));
    assert.ok(mhd.length > 0, `a libmicrohttpd line in the log:\n${lines.join('\n')}`);
    for (const l of mhd) assert.doesNotThrow(() => JSON.parse(l), `JSON: ${l}`);
  } finally {
    await s2.stop();
  }
});

/**
 * Sends bytes on a raw socket and resolves the whole answer (the server closes after these)
 * as { status, headers, text, json }.
 */
function rawExchange(port, bytes) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    const sock = net.connect(port, '127.0.0.1', () => sock.write(bytes));
    sock.setTimeout(10000, () => sock.destroy(new Error('no answer within 10 s'))); // a deadline
    sock.on('data', (c) => chunks.push(c));
    sock.on('error', reject);
    sock.on('close', () => {
      const all = Buffer.concat(chunks).toString('latin1');
      const end = all.indexOf('\r\n\r\n');
      const m = /^HTTP\/1\.[01] (\d{3}) /.exec(all);
      if (!m || end < 0) return reject(new Error(`not an HTTP answer: ${JSON.stringify(all.slice(0, 300))}`));
      const headers = {};
      for (const l of all.slice(0, end).split('\r\n').slice(1)) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const text = Buffer.from(all.slice(end + 4), 'latin1').toString('utf8');
      let json;
      try { json = JSON.parse(text); } catch { json = undefined; }
      resolve({ status: Number(m[1]), headers, text, json });
    });
  });
}

test('2162 requests libmicrohttpd answers itself carry the envelope too (raw sockets)', async () => {
  const port = env.srv.port;
  const before = await requestCount('other', 400);
  const cases = [
    ['not HTTP at all', 'HELLO THERE\r\n\r\n', 400, 'BAD_REQUEST', /request/i],
    ['a request line with a bad version', 'GET /healthz HTTPS/1.1\r\nHost: x\r\n\r\n', 400, 'BAD_REQUEST', /request/i],
    ['a Content-Length that is not a number', 'POST /api/v1/config HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n', 400, 'BAD_REQUEST', /Content-Length/],
    ['a Content-Length past 64 bits', 'POST /api/v1/config HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n', 413, 'PAYLOAD_TOO_LARGE', /Content-Length/],
    ['a malformed chunk', 'POST /api/v1/config HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 400, 'BAD_REQUEST', /chunk/i],
    ['an HTTP version from the future', 'GET /healthz HTTP/2.5\r\nHost: x\r\n\r\n', 505, 'HTTP_VERSION_NOT_SUPPORTED', /version/i],
  ];
  for (const [what, bytes, status, code, re] of cases) {
    const r = await rawExchange(port, bytes);
    envelope(r, status, code, what);
    assert.match(r.json.error, re, `${what}: the message says why`);
    assert.equal(r.headers['x-content-type-options'], 'nosniff', `${what}: our headers`);
  }
  assert.ok(await requestCount('other', 400) >= before + 4, '/metrics counts them under route "other"');
  is(await env.anon.get('/readyz'), 200, 'and airlockd keeps serving');
});
