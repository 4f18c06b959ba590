// 3000: agent registration and lookup (DESIGN.md 8.1): 201 with a one-time credential, 409 for
// an online name, replacement (new credential) for an offline one, names with "/" in URLs.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { agentOnline, agentPath, is, namesField, openWs, registerAgent, setup, sleep, sshKey, until, whenClosed } from './lib.mjs';

let env;
const c = {};
before(async () => {
  env = await setup();
  for (const u of ['alice', 'dave', 'erin', 'frank']) c[u] = await env.client(u);
});
after(async () => { await env?.close(); });

test('3001 a registrar registers a host agent: 201, credential once, fingerprints computed', async () => {
  const k1 = sshKey('h1');
  const k2 = sshKey('h2');
  const t0 = Date.now();
  const r = await c.erin.post('/api/v1/agents', { name: 'lab/reg/one', labels: { env: 'lab', team: 'sre' }, hostKeys: [k1.pub, k2.pub], version: '9.9.9' });
  const j = is(r, 201);
  assert.equal(j.agent.name, 'lab/reg/one');
  assert.deepEqual(j.agent.labels, { env: 'lab', team: 'sre' });
  assert.deepEqual(j.agent.hostKeyFingerprints, [k1.fp, k2.fp]);
  assert.deepEqual(j.agent.hostKeys.map((k) => k.split(' ').slice(0, 2).join(' ')), [k1.pub, k2.pub].map((k) => k.split(' ').slice(0, 2).join(' ')));
  assert.equal(j.agent.online, false);
  assert.equal(j.agent.registeredBy, 'erin');
  assert.ok(Math.abs(Date.parse(j.agent.registeredAt) - t0) < 5000);
  assert.deepEqual(j.agent.sessions, []);
  assert.equal(j.session, null);
  assert.ok(j.credential.length >= 32);
  assert.equal(j.controlUrl, `${env.base.replace(/^http/, 'ws')}/api/v1/agents/lab%2Freg%2Fone/control`);
  const g = is(await c.dave.get(agentPath('lab/reg/one')), 200);
  assert.ok(!JSON.stringify(g).includes(j.credential), 'the credential is never shown again');
  assert.deepEqual(g.hostKeyFingerprints, [k1.fp, k2.fp]);
});

test('3002 registration bodies are strict', async () => {
  let r = await c.erin.post('/api/v1/agents', { name: 'lab/reg/x', hostKeys: 'ssh-ed25519 AAAA' });
  is(r, 400);
  namesField(r, 'hostKeys');
  r = await c.erin.post('/api/v1/agents', { name: 'lab/reg/x', hostKeys: ['not a key'] });
  is(r, 400);
  namesField(r, 'hostKeys');
  r = await c.erin.post('/api/v1/agents', { name: 'lab/reg/x', hostKeys: [sshKey().pub], colour: 'blue' });
  is(r, 400);
  namesField(r, 'colour');
  r = await c.erin.post('/api/v1/agents', { name: 'lab/reg/x', labels: { a: 1 } });
  is(r, 400);
  namesField(r, 'labels');
  for (const bad of ['bad name', 'lab//x', '/lab/x', 'lab/x/', 'x'.repeat(201)]) {
    r = await c.erin.post('/api/v1/agents', { name: bad, hostKeys: [sshKey().pub] });
    is(r, 400, `agent name ${JSON.stringify(bad.slice(0, 20))}`);
    namesField(r, 'name');
  }
  r = await c.erin.post('/api/v1/agents', { name: 'lab/reg/x', hostKeys: [sshKey().pub], session: { template: 'open', nope: 1 } });
  is(r, 400);
  namesField(r, 'nope');
});

test('3003 the control channel refuses a missing or wrong credential (401), an unknown agent (401/404)', async () => {
  const reg = await registerAgent(c.erin, 'lab/reg/cred');
  let r = await openWs(env.srv, `${agentPath('lab/reg/cred')}/control`, { token: 'wrong-credential' });
  assert.equal(r.ok, false);
  assert.equal(r.status, 401);
  r = await openWs(env.srv, `${agentPath('lab/reg/cred')}/control`);
  assert.equal(r.ok, false);
  assert.equal(r.status, 401);
  r = await openWs(env.srv, `${agentPath('lab/reg/cred')}/control`, { token: await env.token('dave') });
  assert.equal(r.ok, false, 'a person\'s token is not an agent credential');
  assert.equal(r.status, 401);
  const other = await registerAgent(c.erin, 'lab/reg/other');
  r = await openWs(env.srv, `${agentPath('lab/reg/cred')}/control`, { token: other.credential });
  assert.equal(r.ok, false, 'another agent\'s credential');
  assert.equal(r.status, 401);
  r = await openWs(env.srv, `${agentPath('lab/reg/none')}/control`, { token: reg.credential });
  assert.equal(r.ok, false);
  assert.ok([401, 404].includes(r.status));
  const ok = await agentOnline(env.srv, 'lab/reg/cred', reg.credential);
  await ok.close();
});

test('3004 the agent is online while its control channel is up, and lastSeenAt moves', async () => {
  const reg = await registerAgent(c.erin, 'lab/reg/online');
  const ctl = await agentOnline(env.srv, 'lab/reg/online', reg.credential);
  try {
    let a;
    for (let i = 0; i < 30; i++) {
      a = is(await c.dave.get(agentPath('lab/reg/online')), 200);
      if (a.online) break;
      await sleep(100); // the poll interval of this wait for the state
    }
    assert.equal(a.online, true);
    assert.ok(a.lastSeenAt && Math.abs(Date.parse(a.lastSeenAt) - Date.now()) < 5000);
  } finally { await ctl.close(); }
  let off;
  for (let i = 0; i < 30; i++) {
    off = is(await c.dave.get(agentPath('lab/reg/online')), 200);
    if (!off.online) break;
    await sleep(100); // the poll interval of this wait for the state
  }
  assert.equal(off.online, false, 'offline once the socket closed');
});

test('3005 registering an online name again is 409; an offline one is replaced with a new credential', async () => {
  const reg = await registerAgent(c.erin, 'lab/reg/dup');
  const ctl = await agentOnline(env.srv, 'lab/reg/dup', reg.credential);
  const online = async () => is(await c.erin.get(agentPath('lab/reg/dup')), 200).online;
  try {
    await until(online, { what: 'lab/reg/dup online' });
    is(await c.erin.post('/api/v1/agents', { name: 'lab/reg/dup', hostKeys: [sshKey().pub] }), 409);
  } finally { await ctl.close(); }
  await until(async () => !(await online()), { what: 'lab/reg/dup offline' });
  const k = sshKey('new');
  const again = is(await c.erin.post('/api/v1/agents', { name: 'lab/reg/dup', hostKeys: [k.pub] }), 201, 'offline: replaced');
  assert.notEqual(again.credential, reg.credential);
  assert.deepEqual(again.agent.hostKeyFingerprints, [k.fp]);
  const old = await openWs(env.srv, `${agentPath('lab/reg/dup')}/control`, { token: reg.credential });
  assert.equal(old.ok, false, 'the old credential stops working');
  assert.equal(old.status, 401);
  const fresh = await agentOnline(env.srv, 'lab/reg/dup', again.credential);
  await fresh.close();
});

test('3006 GET /agents: admins see all; GET of an unknown name is 404', async () => {
  const l = is(await c.dave.get('/api/v1/agents'), 200);
  assert.ok(l.agents.some((a) => a.name === 'lab/reg/one'));
  is(await c.dave.get(agentPath('lab/reg/nothing')), 404);
  is(await c.frank.get(agentPath('lab/reg/one')), 404);
});

test('3007 percent-encoded names: only %2F-encoded slashes address an agent with "/"', async () => {
  is(await c.dave.get('/api/v1/agents/lab%2Freg%2Fone'), 200);
  is(await c.dave.get('/api/v1/agents/lab%2freg%2fone'), 200, 'lowercase hex');
  const raw = await c.dave.get('/api/v1/agents/lab/reg/one', { validate: false });
  assert.notEqual(raw.status, 200, 'raw slashes are other paths');
});

test('3008 a second control connection replaces the first (the agent is never locked out by a half-open socket)', async () => {
  const reg = await registerAgent(c.erin, 'lab/reg/twice');
  const first = await agentOnline(env.srv, 'lab/reg/twice', reg.credential);
  for (let i = 0; i < 30 && !is(await c.dave.get(agentPath('lab/reg/twice')), 200).online; i++) await sleep(100); // poll interval
  const second = await agentOnline(env.srv, 'lab/reg/twice', reg.credential);
  const closed = await whenClosed(first, 3000);
  assert.ok(closed, 'the first socket is closed');
  assert.equal(second.closed, false, 'the second stays');
  const a = is(await c.dave.get(agentPath('lab/reg/twice')), 200);
  assert.equal(a.online, true);
  const s = is(await (await env.client('alice')).post('/api/v1/debug-sessions', { template: 'open', agent: 'lab/reg/twice' }), 201);
  await second.waitSession(s.name, (x) => x.state === 'Active');
  await second.close();
});

test('3010 two control connections at the same instant: exactly one stays and gets the state', async () => {
  const reg = await registerAgent(c.erin, 'lab/reg/race');
  const [a, b] = await Promise.all([agentOnline(env.srv, 'lab/reg/race', reg.credential), agentOnline(env.srv, 'lab/reg/race', reg.credential)]);
  await until(() => a.closed || b.closed, { what: 'one of them closed' });
  assert.equal([a, b].filter((x) => x.closed).length, 1, `exactly one closed: ${a.closed}/${b.closed}`);
  const live = a.closed ? b : a;
  const s = is(await (await env.client('alice')).post('/api/v1/debug-sessions', { template: 'open', agent: 'lab/reg/race' }), 201);
  await live.waitSession(s.name, (x) => x.state === 'Active');
  await a.close();
  await b.close();
});

test('3009 a CI agent is addressed with its slashes percent-encoded', async () => {
  const ci = await env.client('ci-sandbox');
  const j = is(await ci.post('/api/v1/agents', { hostKeys: [sshKey().pub] }), 201);
  assert.equal(j.agent.name, 'gh/acme/sandbox/7-1');
  const g = is(await c.dave.get('/api/v1/agents/gh%2Facme%2Fsandbox%2F7-1'), 200);
  assert.equal(g.name, 'gh/acme/sandbox/7-1');
  const ctl = await agentOnline(env.srv, 'gh/acme/sandbox/7-1', j.credential);
  await ctl.close();
});
