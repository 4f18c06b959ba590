// 4000: one client cannot take airlockd down (issue 11 item 1, DESIGN.md 3 `limits:`).
// The attacks come from 127.0.0.1; the normal client binds 127.0.0.2 as its source address
// (all of 127/8 is loopback) and must keep getting answers. Its latency is measured and
// printed, but only "answered, status 200" is asserted: no timing thresholds.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { after, test } from 'node:test';

import { agentOnline, checkResponse, is, registerAgent, setup, sleep, sshKey, TEMPLATES, tmpl } from './lib.mjs';

const ATTACKER = '127.0.0.1';
const NORMAL = '127.0.0.2';
const SLOWLORIS_SOCKETS = 4500;
const REQ_TIMEOUT_MS = 15000; // a request with no answer by then counts as not answered

let env;
after(async () => { await env?.close(); });

async function start(limits, opts = {}) {
  await env?.close();
  env = await setup({ extra: { limits }, ...opts });
  return env;
}

/** One request from a given source address; resolves { status, headers, text, json, ms }. */
function req(base, method, p, { localAddress = NORMAL, headers = {}, agent = false, body } = {}) {
  const u = new URL(base);
  const t0 = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const r = http.request({ host: u.hostname, port: u.port, method, path: p, headers, agent, localAddress }, (res) => {
      const port = res.socket?.localPort;
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json, port, ms: Number(process.hrtime.bigint() - t0) / 1e6 });
      });
    });
    r.setTimeout(REQ_TIMEOUT_MS, () => r.destroy(new Error(`no answer in ${REQ_TIMEOUT_MS} ms: ${method} ${p} from ${localAddress}`)));
    r.on('error', reject);
    r.end(body);
  });
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

/*
 * The normal client, in a process of its own: this test process also drives thousands of attack
 * sockets, and its event loop's delays would otherwise be part of every figure (in one run,
 * p99 125-280 ms measured here in-process against 9-50 ms from another process, with the same
 * server and about the same as that process saw with no attack at all on a loaded machine).
 */
const CLIENT = `
import http from 'node:http';
const { BASE, TOKEN, N, FROM, TIMEOUT } = process.env;
const u = new URL(BASE);
const out = [];
for (let i = 0; i < Number(N) + 2; i++) { // the first two warm up (see normalClient)
  const p = i % 2 ? '/api/v1/debug-sessions?limit=5' : '/healthz';
  const headers = i % 2 ? { Authorization: 'Bearer ' + TOKEN } : {};
  const t0 = process.hrtime.bigint();
  const r = await new Promise((resolve) => {
    const q = http.request({ host: u.hostname, port: u.port, path: p, headers, agent: false, localAddress: FROM }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode, text: text.slice(0, 200) }));
    });
    q.setTimeout(Number(TIMEOUT), () => q.destroy(new Error('no answer in ' + TIMEOUT + ' ms')));
    q.on('error', (e) => resolve({ status: 0, text: String(e) }));
    q.end();
  });
  out.push({ p, ...r, ms: Number(process.hrtime.bigint() - t0) / 1e6, warm: i < 2 });
}
process.stdout.write(JSON.stringify(out));
`;

/**
 * n requests one after another from 127.0.0.2, alternating /healthz and an authenticated list
 * (in a child process, see CLIENT). Asserts each is answered 200; prints the latency percentiles.
 * Two more requests go first and are not in the figures: the child's first connection, and the
 * server's first verification of a token, which fetches the issuer's keys from the test's OIDC
 * provider, which runs in this (busy) process; each was the slowest request of its run.
 */
async function normalClient(what, n = 40) {
  const token = await env.token('alice');
  const child = spawn(process.execPath, ['--input-type=module', '-e', CLIENT], {
    env: { ...process.env, BASE: env.base, TOKEN: token, N: String(n), FROM: NORMAL, TIMEOUT: String(REQ_TIMEOUT_MS) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let text = '';
  child.stdout.on('data', (d) => { text += d; });
  const code = await new Promise((r) => child.once('exit', r));
  assert.equal(code, 0, `${what}: the normal client failed: ${text}`);
  const rs = JSON.parse(text);
  rs.forEach((r, i) => assert.equal(r.status, 200, `${what}: normal request ${i} (${r.p}) from ${NORMAL}: ${r.status} ${r.text}`));
  const timed = rs.filter((r) => !r.warm);
  const ms = timed.map((r) => r.ms);
  console.log(`# ${what}: ${n} normal requests from ${NORMAL} (another process) all answered 200; ` +
    `p50 ${pct(ms, 50).toFixed(1)} ms, p99 ${pct(ms, 99).toFixed(1)} ms, max ${Math.max(...ms).toFixed(1)} ms ` +
    `(request ${ms.indexOf(Math.max(...ms))}, ${timed[ms.indexOf(Math.max(...ms))].p})`);
}

async function metric(name) {
  const r = await req(env.base, 'GET', '/metrics');
  is(r, 200, 'metrics');
  const m = r.text.match(new RegExp(`^${name.replace(/[{}"]/g, '\\$&')} (\\d+)$`, 'm'));
  assert.ok(m, `metric ${name} missing:\n${r.text.split('\n').filter((l) => l.includes('limit')).join('\n')}`);
  return Number(m[1]);
}

/**
 * Opens n sockets from 127.0.0.1 that each send a request line and then one header line
 * every interval ms, never ending the headers. Resolves once every socket has either connected
 * (and sent its request line) or been closed. Returns { socks, closed(), stop() }.
 */
async function slowloris(port, n, interval) {
  const socks = [];
  let nClosed = 0;
  const closeWaiters = [];
  await new Promise((resolve) => {
    let settled = 0;
    for (let i = 0; i < n; i++) {
      const s = net.connect({ host: '127.0.0.1', port, localAddress: ATTACKER });
      let done = false;
      const settle = () => { if (!done) { done = true; if (++settled === n) resolve(); } };
      s.on('connect', () => { s.write('GET /healthz HTTP/1.1\r\nHost: airlock\r\n'); settle(); });
      s.on('error', () => {});
      s.on('close', () => {
        s.closedAt = Date.now();
        nClosed++;
        settle();
        for (const w of closeWaiters.splice(0)) w();
      });
      socks.push(s);
    }
  });
  const timer = setInterval(() => {
    for (const s of socks) if (!s.destroyed && s.writable) s.write('X-Slow: 1\r\n');
  }, interval);
  return {
    socks,
    closed: () => nClosed,
    open: () => socks.filter((s) => !s.destroyed && s.closedAt === undefined).length,
    /** Resolves when at least k sockets are closed. */
    async waitClosed(k) {
      while (nClosed < k) await new Promise((r) => closeWaiters.push(r));
    },
    stop() {
      clearInterval(timer);
      for (const s of socks) s.destroy();
    },
  };
}

test('4001 slowloris: 4,500 slow sockets from one address; another address keeps being answered', async () => {
  // the documented defaults (connectionsPerClient 64)
  await start({});
  const att = await slowloris(env.srv.port, SLOWLORIS_SOCKETS, 2000);
  try {
    console.log(`# slowloris: ${SLOWLORIS_SOCKETS} sockets settled, ${att.open()} open`);
    await normalClient('during the slowloris');
    // all but the per-client cap were refused at accept (a few more may slip past while the
    // worker threads accept in parallel)
    await att.waitClosed(SLOWLORIS_SOCKETS - 64 - 8);
    const refused = await metric('airlock_limit_connections_refused_total');
    console.log(`# slowloris: ${refused} connections refused, ${att.open()} still held`);
    assert.ok(refused >= SLOWLORIS_SOCKETS - 64 - 8, `refused ${refused}`);
    assert.ok(att.open() <= 64 + 8, `${att.open()} slow sockets are still held open`);
    await normalClient('after the slowloris was refused', 10);
  } finally {
    att.stop();
  }
});

test('4002 request deadline: headers that never end are cut off though bytes keep coming', async () => {
  await start({ requestDeadline: '2s' });
  const n = 20;
  const t0 = Date.now();
  const att = await slowloris(env.srv.port, n, 300); // a byte every 300 ms resets MHD's own timeout
  try {
    await normalClient('while slow requests are pending', 6);
    await att.waitClosed(n); // today they stay for as long as the attacker likes
    const secs = (Math.max(...att.socks.map((s) => s.closedAt)) - t0) / 1000;
    console.log(`# deadline 2s: all ${n} slow requests cut off after ${secs.toFixed(1)} s`);
    assert.ok(await metric('airlock_limit_deadline_closed_total{phase="request"}') >= n);
  } finally {
    att.stop();
  }
});

test('4003 request deadline: a kept-alive connection serves requests for longer than the deadline', async () => {
  await start({ requestDeadline: '2s' });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const ports = new Set();
  try {
    for (let i = 0; i < 4; i++) {
      const r = await req(env.base, 'GET', '/healthz', { agent });
      is(r, 200, `request ${i} on the kept-alive connection`);
      ports.add(r.port);
      await sleep(900); // 3.6 s in all: longer than the 2 s deadline, which restarts per request
    }
    assert.equal(ports.size, 1, 'one connection served every request');
    assert.equal(await metric('airlock_limit_deadline_closed_total{phase="request"}'), 0);
  } finally {
    agent.destroy();
  }
});

test('4004 flood: one address gets 429 + Retry-After + envelope; another address keeps being answered', async () => {
  // the documented defaults (requestsPerSecond 20, burst 100)
  await start({});
  const flood = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const statuses = {};
  let stop = false;
  let bad429 = null;
  const loop = async () => {
    while (!stop) {
      const r = await req(env.base, 'GET', '/healthz', { localAddress: ATTACKER, agent: flood });
      statuses[r.status] = (statuses[r.status] || 0) + 1;
      if (r.status === 429 && !bad429) {
        try {
          checkResponse('GET', '/healthz', 429, r.headers, r.text); // the error envelope
          assert.equal(r.json.code, 'TOO_MANY_REQUESTS');
          assert.match(String(r.headers['retry-after']), /^[1-9][0-9]*$/, 'Retry-After in seconds');
        } catch (e) { bad429 = e; }
      }
    }
  };
  const loops = Array.from({ length: 16 }, loop);
  try {
    // wait until the flood is being refused, then measure the normal client while it goes on
    // (bounded: 3,000 requests is 30 times the burst)
    const sent = () => Object.values(statuses).reduce((a, b) => a + b, 0);
    while (!statuses[429] && sent() < 3000) await new Promise((r) => setImmediate(r));
    assert.ok(statuses[429] > 0, `the flood was never rate limited: ${JSON.stringify(statuses)}`);
    await normalClient('during the flood');
  } finally {
    stop = true;
    await Promise.allSettled(loops);
    flood.destroy();
  }
  console.log(`# flood from ${ATTACKER}: ${JSON.stringify(statuses)}`);
  if (bad429) throw bad429;
  assert.ok(statuses[429] > 0, 'the flood was rate limited');
  assert.ok(await metric('airlock_limit_requests_refused_total') >= statuses[429]);
  // the 429s are requests too: counted under the route they were for, and still valid text
  const refused = await metric('airlock_http_requests_total{method="ANY",route="/healthz",status="429"}');
  assert.ok(refused >= statuses[429], `airlock_http_requests_total counts the 429s: ${refused} of ${statuses[429]}`);
  await promtoolCheck();
});

/** Runs `promtool check metrics` on /metrics when promtool is installed (Debian prometheus). */
async function promtoolCheck() {
  const { spawnSync } = await import('node:child_process');
  if (spawnSync('promtool', ['--version']).error) {
    console.log('# promtool is missing (Debian package prometheus): /metrics text not checked');
    return;
  }
  const r = await req(env.base, 'GET', '/metrics');
  const out = spawnSync('promtool', ['check', 'metrics'], { input: r.text, encoding: 'utf8' });
  assert.equal(out.status, 0, `promtool check metrics: ${out.stdout}${out.stderr}`);
}

test('4005 X-Forwarded-For names the client only when the peer is a trusted proxy', async () => {
  await start({ requestsPerSecond: 1, burst: 3, trustedProxies: ['127.0.0.1/32'] });
  const get = (localAddress, xff) => req(env.base, 'GET', '/healthz', { localAddress, headers: xff ? { 'X-Forwarded-For': xff } : {} });
  // behind the trusted proxy 127.0.0.1, client 198.51.100.1 uses up its burst ...
  for (let i = 0; i < 3; i++) is(await get(ATTACKER, '6.6.6.6, 198.51.100.1'), 200, `burst ${i}`);
  is(await get(ATTACKER, '7.7.7.7, 198.51.100.1'), 429, 'the right-most untrusted entry is the client, not what it wrote first');
  // ... while another client behind the same proxy, and the proxy itself, are unaffected
  is(await get(ATTACKER, '198.51.100.2'), 200, 'another client behind the proxy');
  is(await get(ATTACKER), 200, 'the proxy itself');
  // an untrusted peer cannot pick a fresh address with the header
  for (let i = 0; i < 3; i++) is(await get(NORMAL, `203.0.113.${i}`), 200, `untrusted burst ${i}`);
  is(await get(NORMAL, '203.0.113.99'), 429, 'an untrusted peer is its own client whatever its X-Forwarded-For says');
});

test('4006 open sessions per person: limits.sessionsPerUser and a template maxOpenSessionsPerUser answer 429', async () => {
  await start({ connectionsPerClient: 0, requestsPerSecond: 0, sessionsPerUser: 3 }, {
    templates: [...TEMPLATES, tmpl('capped', {
      allowed: { groups: ['developers'], users: [], agents: ['lab/*'] },
      constraints: { maxDuration: '4h', defaultDuration: '1h', allowRenewal: true, maxRenewals: 3, maxOpenSessionsPerUser: 1 },
    })],
  });
  const [alice, bob, erin] = await Promise.all(['alice', 'bob', 'erin'].map((u) => env.client(u)));
  await registerAgent(erin, 'lab/quota/host');
  const create = (c, template) => c.post('/api/v1/debug-sessions', { template, agent: 'lab/quota/host' });

  const first = is(await create(alice, 'capped'), 201);
  let r = await create(alice, 'capped');
  is(r, 429, 'a second open session of the capped template');
  assert.equal(r.json.code, 'TOO_MANY_REQUESTS');
  assert.match(r.json.error, /maxOpenSessionsPerUser/);
  is(await create(alice, 'open'), 201);
  is(await create(alice, 'open'), 201);
  r = await create(alice, 'open');
  is(r, 429, 'a fourth open session');
  assert.match(r.json.error, /sessionsPerUser/);
  is(await create(bob, 'capped'), 201, 'the cap is per person');
  // ending one frees a place
  is(await alice.post(`/api/v1/debug-sessions/${first.name}/terminate`, {}), 200);
  is(await create(alice, 'open'), 201);
  assert.equal(await metric('airlock_limit_sessions_refused_total'), 2);
});

test('4008 sessions requested at agent registration count against limits.sessionsPerUser (429)', async () => {
  await start({ connectionsPerClient: 0, requestsPerSecond: 0, sessionsPerUser: 1 });
  const [alice, erin, dave] = await Promise.all(['alice', 'erin', 'dave'].map((u) => env.client(u)));
  const [web, web2, web3] = await Promise.all(['ci-web', 'ci-web2', 'ci-web3'].map((j) => env.client(j)));
  await registerAgent(erin, 'lab/quota/reg');
  const own = is(await alice.post('/api/v1/debug-sessions', { template: 'open', agent: 'lab/quota/reg' }), 201);
  // alice's CI job (ownerClaim actor: alice) asks for a session while she has her one open
  const body = { hostKeys: [sshKey().pub], version: '0.0.0-test', session: { template: 'open' } };
  let r = await web.post('/api/v1/agents', body);
  is(r, 429, 'a registration whose session would be alice\'s second');
  assert.equal(r.json.code, 'TOO_MANY_REQUESTS');
  assert.match(r.json.error, /sessionsPerUser/);
  is(await dave.get('/api/v1/agents/gh%2Facme%2Fweb%2F42-1'), 404, 'the refused registration left no agent');
  is(await web3.post('/api/v1/agents', body), 201, 'bob\'s job is not capped by alice\'s sessions');
  // with her own session ended, the registration's session is her one
  is(await alice.post(`/api/v1/debug-sessions/${own.name}/terminate`, {}), 200);
  const reg = is(await web.post('/api/v1/agents', body), 201);
  assert.equal(reg.session.spec.requestedBy, 'alice');
  // and it counts: another job of hers, and a REST request, are refused
  is(await web2.post('/api/v1/agents', body), 429, 'a second job of alice\'s');
  is(await alice.post('/api/v1/debug-sessions', { template: 'open', agent: 'lab/quota/reg' }), 429, 'a REST request');
  assert.equal(await metric('airlock_limit_sessions_refused_total'), 3);
});

test('4007 request deadline: an upgraded WebSocket (an agent control channel) outlives it', async () => {
  await start({ requestDeadline: '2s', requestsPerSecond: 0 });
  const [alice, erin] = await Promise.all(['alice', 'erin'].map((u) => env.client(u)));
  const agent = await registerAgent(erin, 'lab/ws/host');
  const ctl = await agentOnline(env.srv, 'lab/ws/host', agent.credential, { hostKeys: [agent.key.pub] });
  try {
    await sleep(3500); // past the deadline and the sweeper's next pass
    assert.equal(ctl.closed, false, `control channel closed: ${ctl.closeCode} ${ctl.closeReason}`);
    const s = is(await alice.post('/api/v1/debug-sessions', { template: 'open', agent: 'lab/ws/host' }), 201);
    await ctl.waitSession(s.name); // the channel still carries messages
    assert.equal(await metric('airlock_limit_deadline_closed_total{phase="request"}'), 0);
  } finally {
    await ctl.close();
  }
});
