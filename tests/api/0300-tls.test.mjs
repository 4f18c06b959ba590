// 0300: built-in TLS (tls: {cert, key}), terminated by airlockd itself (backend/server/tlsfront.c).
// A self-signed certificate made with openssl; the API, dev sign-in and an authenticated call work
// over https, and plain http on that port does not. The relay works over wss: a fake agent and a
// participant (`ws` clients, as in 3100) move megabytes through it intact, and a participant that
// drops its connection is noticed at once. Clients that stall or send garbage instead of a
// handshake hold up no one, and a flood of unfinished handshakes from one address is capped per
// address; TLS 1.1 is refused; SIGTERM with connections open exits cleanly.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, test } from 'node:test';

import WebSocket from 'ws';

import { AIRLOCKD, freePort, sleep, sshKey } from './lib.mjs';

let dir, port, proc, ca, logPath;
let nAgents = 0;
const REASON = 'moving bytes through built-in TLS';

function get(method, p, { token, body } = {}) {
  return new Promise((resolve, reject) => {
    const data = body ? JSON.stringify(body) : undefined;
    const headers = {};
    if (token) headers.Authorization = `Bearer ${token}`;
    if (data) Object.assign(headers, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) });
    const req = https.request({ host: '127.0.0.1', port, path: p, method, ca, headers }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, json: text ? JSON.parse(text) : null }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

async function devToken(user, groups) {
  const t = await get('POST', '/api/v1/dev/token', { body: { user, groups } });
  assert.equal(t.status, 200);
  return t.json.token;
}

/** Opens a wss:// WebSocket; resolves the open socket, with every text message parsed into ws.msgs. */
function wss(p, token) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`wss://127.0.0.1:${port}${p}`, {
      ca, headers: token ? { Authorization: `Bearer ${token}` } : {}, perMessageDeflate: false, handshakeTimeout: 10000,
    });
    ws.msgs = [];
    ws.on('message', (d, binary) => { if (!binary) ws.msgs.push(JSON.parse(d.toString('utf8'))); });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_, res) => reject(new Error(`${p}: HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

/** Resolves with the first message of ws matching pred (waits for it to arrive). */
function waitMsg(ws, pred) {
  return new Promise((resolve, reject) => {
    const check = () => {
      const m = ws.msgs.find(pred);
      if (m) { ws.off('message', check); ws.off('close', closed); resolve(m); }
    };
    const closed = () => reject(new Error(`socket closed; messages so far: ${JSON.stringify(ws.msgs).slice(0, 800)}`));
    ws.on('message', check);
    ws.once('close', closed);
    check();
  });
}

/** Resolves with n bytes received on ws as binary messages. */
function receive(ws, n) {
  return new Promise((resolve) => {
    const chunks = [];
    let len = 0;
    ws.on('message', (d, binary) => {
      if (!binary) return;
      chunks.push(Buffer.from(d));
      len += d.length;
      if (len >= n) resolve(Buffer.concat(chunks));
    });
  });
}

/**
 * A spliced relay connection over wss: a registered fake agent online on its control channel, an
 * Active session, a participant on /connect with the join ticket and the agent's dial-back tunnel.
 */
async function relayPair() {
  const ops = await devToken('olga', ['ops']);
  const dev = await devToken('dana', ['developers']);
  const name = `tls-agent-${++nAgents}`;
  const reg = await get('POST', '/api/v1/agents', {
    token: ops, body: { name, labels: { purpose: 'test' }, hostKeys: [sshKey('host').pub], version: '0.0.0-test' },
  });
  assert.equal(reg.status, 201, JSON.stringify(reg.json));
  const ctl = await wss(`/api/v1/agents/${encodeURIComponent(name)}/control`, reg.json.credential);
  ctl.send(JSON.stringify({ type: 'hello', version: '0.0.0-test', hostKeys: [] }));
  const s = await get('POST', '/api/v1/debug-sessions', { token: dev, body: { template: 'sandbox', agent: name, reason: REASON } });
  assert.equal(s.status, 201, JSON.stringify(s.json));
  await waitMsg(ctl, (m) => m.type === 'session' && m.session?.name === s.json.name && m.session.state === 'Active');
  const j = await get('POST', `/api/v1/debug-sessions/${s.json.name}/join`, { token: dev, body: { sshPublicKey: sshKey().pub } });
  assert.equal(j.status, 200, JSON.stringify(j.json));
  const user = await wss(`/api/v1/debug-sessions/${s.json.name}/connect?ticket=${j.json.attach.ticket}`);
  const open = await waitMsg(ctl, (m) => m.type === 'open');
  const agent = await wss(`/api/v1/agents/${encodeURIComponent(name)}/tunnel/${encodeURIComponent(open.conn)}`, reg.json.credential);
  return { ctl, user, agent, connectUrl: j.json.attach.connectUrl };
}

/** A plain TCP connection to the TLS port. */
function rawConnect() {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

/** Resolves { version } or { error: code } for a handshake limited to that TLS version. */
function handshake(version) {
  return new Promise((resolve) => {
    const s = tls.connect({
      host: '127.0.0.1', port, ca, minVersion: version, maxVersion: version,
      ciphers: 'DEFAULT@SECLEVEL=0', // lets this client offer TLS 1.1: the server must be the one to refuse
    });
    s.once('secureConnect', () => { resolve({ version: s.getProtocol() }); s.destroy(); });
    s.once('error', (e) => resolve({ error: e.code }));
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
    'auth: {dev: true, agentRegistrars: {groups: [ops]}}',
    'templates:',
    '  - name: sandbox',
    '    allowed: {groups: [developers], agents: ["*"]}',
  ].join('\n'));
  logPath = path.join(dir, 'log');
  proc = spawn(AIRLOCKD, ['--config', path.join(dir, 'airlock.yaml'), '--data-dir', dir],
    { stdio: ['ignore', fs.openSync(logPath, 'a'), fs.openSync(logPath, 'a')] });
  for (let i = 0; i < 100; i++) {
    try { if ((await get('GET', '/readyz')).status === 200) return; } catch { /* not yet */ }
    await sleep(50); // the poll interval of the wait for /readyz above
  }
  throw new Error(`airlockd with TLS did not start: ${fs.readFileSync(logPath, 'utf8')}`);
});
after(async () => {
  if (proc && proc.exitCode === null && proc.signalCode === null) {
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

test('0303 the relay over wss carries 8 MiB each way at once, intact; join URLs are wss://', async () => {
  const { ctl, user, agent, connectUrl } = await relayPair();
  assert.ok(connectUrl.startsWith(`wss://127.0.0.1:${port}/`), connectUrl);
  const up = crypto.randomBytes(8 << 20);
  const down = crypto.randomBytes(8 << 20);
  const atAgent = receive(agent, up.length);
  const atUser = receive(user, down.length);
  for (let i = 0; i < up.length; i += 60000) {
    user.send(up.subarray(i, i + 60000), { binary: true });
    agent.send(down.subarray(i, i + 60000), { binary: true });
  }
  const [a, u] = await Promise.all([atAgent, atUser]);
  assert.equal(a.length, up.length, 'bytes at the agent');
  assert.ok(a.equals(up), 'the agent got exactly what the participant sent');
  assert.equal(u.length, down.length, 'bytes at the participant');
  assert.ok(u.equals(down), 'the participant got exactly what the agent sent');
  for (const ws of [user, agent, ctl]) ws.terminate();
});

test('0304 a participant that drops its TLS connection is noticed at once: the agent\'s tunnel closes', async () => {
  const { ctl, user, agent } = await relayPair();
  const got = receive(agent, 3);
  user.send(Buffer.from('hi!'), { binary: true });
  await got;
  const closed = new Promise((r) => agent.once('close', () => r('closed')));
  user.terminate(); // the TCP connection ends without a WebSocket close frame
  // the relay pings a quiet side only after 30 s (RELAY_PING_MS): closing before that means
  // the end of the participant's connection reached it
  let timer;
  const late = new Promise((r) => { timer = setTimeout(() => r('still open after 15 s'), 15000); });
  const r = await Promise.race([closed, late]);
  clearTimeout(timer);
  assert.equal(r, 'closed');
  ctl.terminate();
});

test('0305 clients that stall or send garbage instead of a handshake hold up no one', async () => {
  const stalled = [];
  for (let i = 0; i < 20; i++) stalled.push(await rawConnect());
  // a record header announcing 16 KiB of ClientHello, then nothing
  const partial = await rawConnect();
  partial.write(Buffer.from([0x16, 0x03, 0x01, 0x40, 0x00, 0x01]));
  const garbage = await rawConnect();
  const garbageClosed = new Promise((r) => garbage.once('close', r));
  garbage.on('error', () => {});
  garbage.write(crypto.randomBytes(4096));
  for (let i = 0; i < 5; i++) assert.equal((await get('GET', '/readyz')).status, 200, `request ${i} while they wait`);
  const t = await devToken('alice', ['developers']);
  assert.equal((await get('GET', '/api/v1/me', { token: t })).status, 200);
  await garbageClosed; // the server hangs up on garbage
  for (const s of [...stalled, partial]) s.destroy();
});

test('0306 TLS 1.2 and 1.3 are served, TLS 1.1 is refused by the server', async () => {
  assert.deepEqual(await handshake('TLSv1.3'), { version: 'TLSv1.3' });
  assert.deepEqual(await handshake('TLSv1.2'), { version: 'TLSv1.2' });
  assert.deepEqual(await handshake('TLSv1.1'), { error: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' });
});

/** GET over https from a given source address; resolves { status, ms }, rejects on no answer. */
function getFrom(localAddress, p) {
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: p, ca, localAddress, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, ms: Number(process.hrtime.bigint() - t0) / 1e6 }));
    });
    req.setTimeout(15000, () => req.destroy(new Error(`no answer in 15 s from ${localAddress}`))); // a deadline
    req.on('error', reject);
    req.end();
  });
}

// (before 0307, which stops the server)
test('0309 a request that is not HTTP gets the JSON error envelope over TLS too', async () => {
  const text = await new Promise((resolve, reject) => {
    let got = '';
    const s = tls.connect({ host: '127.0.0.1', port, ca }, () => s.write('HELLO THERE\r\n\r\n'));
    s.on('data', (d) => { got += d; });
    s.on('end', () => resolve(got));
    s.on('error', reject);
  });
  assert.match(text, /^HTTP\/1\.1 400 /);
  assert.match(text, /\r\nContent-Type: application\/json\r\n/);
  assert.equal(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)).code, 'BAD_REQUEST');
});

test('0308 a TLS handshake flood from one address is capped per address; another address is served', async () => {
  const FLOOD = 4200; // more than the server-wide 4,096, which alone used to be the only cap
  const CAP = 64; // limits.connectionsPerClient's default
  const socks = [];
  let closed = 0;
  const closeWaiters = [];
  await new Promise((resolve) => {
    let settled = 0;
    const settle = (s) => { if (!s.settled) { s.settled = true; if (++settled === FLOOD) resolve(); } };
    for (let i = 0; i < FLOOD; i++) {
      const s = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.1' });
      // a record header announcing 16 KiB of ClientHello, then nothing: the handshake never ends
      s.on('connect', () => { s.write(Buffer.from([0x16, 0x03, 0x01, 0x40, 0x00, 0x01])); settle(s); });
      s.on('error', () => {});
      s.on('close', () => { closed++; settle(s); for (const w of closeWaiters.splice(0)) w(); });
      socks.push(s);
    }
  });
  try {
    // all but the cap are closed by the server as soon as it accepts them: well before its 10 s
    // handshake deadline (TLSFRONT_HANDSHAKE_MS), which would close them all anyway
    const deadline = Date.now() + 7000;
    while (closed < FLOOD - CAP && Date.now() < deadline) {
      let t;
      await new Promise((r) => { closeWaiters.push(r); t = setTimeout(r, deadline - Date.now()); }); // bounded wait
      clearTimeout(t);
    }
    assert.ok(closed >= FLOOD - CAP, `only ${closed} of ${FLOOD} closed within 7 s: the rest are held`);
    const ms = [];
    for (let i = 0; i < 20; i++) {
      const r = await getFrom('127.0.0.2', '/readyz');
      assert.equal(r.status, 200, `request ${i} from 127.0.0.2 during the flood`);
      ms.push(r.ms);
    }
    ms.sort((a, b) => a - b);
    console.log(`# TLS flood: ${FLOOD - closed} of ${FLOOD} handshakes from 127.0.0.1 held; ` +
      `20 requests from 127.0.0.2 answered 200, p50 ${ms[9].toFixed(1)} ms, max ${ms[19].toFixed(1)} ms`);
    const m = await new Promise((resolve, reject) => {
      https.get({ host: '127.0.0.1', port, path: '/metrics', ca, localAddress: '127.0.0.2', agent: false }, (res) => {
        let text = '';
        res.on('data', (d) => { text += d; });
        res.on('end', () => resolve(text));
      }).on('error', reject);
    });
    const refused = Number((m.match(/^airlock_limit_connections_refused_total (\d+)$/m) || [])[1]);
    assert.ok(refused >= FLOOD - CAP, `airlock_limit_connections_refused_total ${refused}`);
  } finally {
    for (const s of socks) s.destroy();
  }
});

test('0307 SIGTERM with relayed, idle and half-open TLS connections open: a clean exit', async () => {
  const { ctl, user, agent } = await relayPair();
  const got = receive(agent, 3);
  user.send(Buffer.from('hi!'), { binary: true });
  await got;
  const stalled = await rawConnect();
  stalled.on('error', () => {});
  const keepAlive = new https.Agent({ keepAlive: true, ca });
  await new Promise((resolve, reject) => {
    https.get({ host: '127.0.0.1', port, path: '/readyz', agent: keepAlive }, (res) => { res.resume(); res.on('end', resolve); })
      .on('error', reject);
  });
  for (const ws of [ctl, user, agent]) ws.on('error', () => {});
  const exited = new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal })));
  proc.kill('SIGTERM');
  assert.deepEqual(await exited, { code: 0, signal: null });
  const log = fs.readFileSync(logPath, 'utf8');
  const san = log.match(/^.*(ERROR: (Address|Leak|Thread)Sanitizer|runtime error:).*$/m);
  assert.equal(san, null, `sanitizer report:\n${san ? log.slice(log.indexOf(san[0]), log.indexOf(san[0]) + 3000) : ''}`);
  stalled.destroy();
  keepAlive.destroy();
});
