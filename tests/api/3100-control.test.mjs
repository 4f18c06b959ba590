// 3100: the agent control channel (DESIGN.md 8.2) and the relay (8.3), with a `ws` client
// playing the agent: desired state on connect and on every change, extend/resume requests
// answered with the REST API's policy and codes, and the dial-back tunnel splice.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { agentOnline, agentPath, assertSchema, is, openWs, REASON, registerAgent, secs, sessPath, setup, sleep, sshKey, until, whenClosed } from './lib.mjs';

let env;
const c = {};
const reg = {};
let ctl;
let seq = 0;
const AG = 'lab/ctl/host';

before(async () => {
  env = await setup();
  for (const u of ['alice', 'bob', 'carol', 'erin']) c[u] = await env.client(u);
  reg.main = await registerAgent(c.erin, AG);
  reg.other = await registerAgent(c.erin, 'lab/ctl/other');
});
after(async () => {
  await ctl?.close();
  await env?.close();
});

const create = async (body) => is(await c.alice.post('/api/v1/debug-sessions', { agent: AG, ...body }), 201);
/** Sends a control request and waits for its reply. */
async function request(msg) {
  const id = `r${++seq}`;
  const from = ctl.messages.length;
  ctl.send({ ...msg, id });
  const rep = await ctl.waitFor((m) => m.type === 'reply' && m.id === id, { from, what: `reply ${id}` });
  return rep;
}

test('3101 on connect the agent receives the whole desired state: every session bound to it', async () => {
  const a = await create({ template: 'ci-debug', reason: REASON });
  is(await c.carol.post(sessPath(a.name, 'approve'), {}), 200);
  const b = await create({ template: 'open' });
  assert.equal(is(await c.alice.get(sessPath(a.name)), 200).status.message, 'waiting for agent');
  ctl = await agentOnline(env.srv, AG, reg.main.credential);
  const ma = await ctl.waitSession(a.name, (x) => x.state === 'Active');
  const mb = await ctl.waitSession(b.name, (x) => x.state === 'Active');
  assertSchema('ControlSession', ma);
  assert.deepEqual(ma.allowedOperations, { shell: true, exec: true, sftp: true, portForward: false });
  assert.equal(ma.terminalSharing.provider, 'tmux');
  // the owner rule: the requester is listed from activation, with no key until they join
  assert.deepEqual(mb.participants, [{ user: 'alice', role: 'owner', keys: [] }]);
  assert.ok(!ctl.messages.some((m) => m.type === 'session' && !m.session.name), 'every session message names its session');
});

test('3102 a reconnect gets the state again without replay (level-triggered)', async () => {
  const s = await create({ template: 'open' });
  await ctl.waitSession(s.name, (x) => x.state === 'Active');
  await ctl.close();
  ctl = await agentOnline(env.srv, AG, reg.main.credential);
  await ctl.waitSession(s.name, (x) => x.state === 'Active', { timeout: 3000 });
});

test('3103 the agent sees approve, REST renew and terminate as they happen', async () => {
  const s = await create({ template: 'ci-debug', reason: REASON });
  let from = ctl.messages.length;
  is(await c.carol.post(sessPath(s.name, 'approve'), {}), 200);
  const act = await ctl.waitSession(s.name, (x) => x.state === 'Active', { from, timeout: 2000 });
  from = ctl.messages.length;
  const r = is(await c.alice.post(sessPath(s.name, 'renew'), { extendBy: '20m' }), 200);
  const ren = await ctl.waitSession(s.name, (x) => x.expiresAt === r.status.expiresAt, { from, timeout: 2000 });
  assert.equal(secs(ren.expiresAt, act.expiresAt), 1200);
  from = ctl.messages.length;
  is(await c.alice.post(sessPath(s.name, 'terminate'), {}), 200);
  await ctl.waitSession(s.name, (x) => x.state === 'Terminated', { from, timeout: 1500 });
});

test('3104 extend from inside the session: ok:true with the new expiresAt, same as REST', async () => {
  const s = await create({ template: 'ci-debug', reason: REASON, invitedParticipants: ['bob'] });
  is(await c.carol.post(sessPath(s.name, 'approve'), {}), 200);
  const act = await ctl.waitSession(s.name, (x) => x.state === 'Active');
  const rep = await request({ type: 'extend', session: s.name, user: 'alice', by: '30m' });
  assert.equal(rep.ok, true, JSON.stringify(rep));
  assert.equal(secs(rep.session.expiresAt, act.expiresAt), 1800);
  const g = is(await c.alice.get(sessPath(s.name)), 200);
  assert.equal(g.status.expiresAt, rep.session.expiresAt);
  assert.equal(g.status.renewalCount, 1);
  const ev = is(await c.alice.get(sessPath(s.name, 'events')), 200).events;
  assert.equal(ev.filter((e) => e.type === 'renewed').at(-1).actor, 'alice');
  // a joined participant may extend too
  is(await c.bob.post(sessPath(s.name, 'join'), { sshPublicKey: sshKey().pub }), 200);
  const rb = await request({ type: 'extend', session: s.name, user: 'bob', by: '10m' });
  assert.equal(rb.ok, true, JSON.stringify(rb));
  // beyond policy (maxRenewals 2): FORBIDDEN with the REST message
  const rf = await request({ type: 'extend', session: s.name, user: 'alice', by: '10m' });
  assert.equal(rf.ok, false);
  assert.equal(rf.code, 'FORBIDDEN');
  assert.match(rf.error, /renewal/i);
  const rest = await c.alice.post(sessPath(s.name, 'renew'), { extendBy: '10m' });
  is(rest, 403);
  assert.equal(rf.error, rest.json.error, 'the same message as the REST API');
});

test('3105 extend refused: past maxDuration, bad duration, viewer, stranger, another agent\'s session', async () => {
  const s = await create({ template: 'ci-debug', reason: REASON, requestedDuration: '3h', invitedParticipants: ['bob'] });
  is(await c.carol.post(sessPath(s.name, 'approve'), {}), 200);
  await ctl.waitSession(s.name, (x) => x.state === 'Active');
  let r = await request({ type: 'extend', session: s.name, user: 'alice', by: '2h' });
  assert.equal(r.ok, false);
  assert.equal(r.code, 'FORBIDDEN', 'past startsAt + maxDuration');
  r = await request({ type: 'extend', session: s.name, user: 'alice', by: 'forever' });
  assert.equal(r.ok, false);
  assert.equal(r.code, 'BAD_REQUEST');
  is(await c.bob.post(sessPath(s.name, 'join'), { sshPublicKey: sshKey().pub, role: 'viewer' }), 200);
  r = await request({ type: 'extend', session: s.name, user: 'bob', by: '5m' });
  assert.equal(r.ok, false);
  assert.equal(r.code, 'FORBIDDEN', 'viewer');
  r = await request({ type: 'extend', session: s.name, user: 'frank', by: '5m' });
  assert.equal(r.ok, false);
  assert.ok(['FORBIDDEN', 'NOT_FOUND'].includes(r.code), r.code);
  // a session of another agent, asked for through this agent's channel
  const o = is(await c.alice.post('/api/v1/debug-sessions', { template: 'open', agent: 'lab/ctl/other' }), 201);
  r = await request({ type: 'extend', session: o.name, user: 'alice', by: '5m' });
  assert.equal(r.ok, false);
  assert.ok(['FORBIDDEN', 'NOT_FOUND'].includes(r.code), r.code);
  assert.equal(is(await c.alice.get(sessPath(s.name)), 200).status.renewalCount, 0, 'nothing was renewed');
});

test('3106 resume ends the session (a terminate by that participant)', async () => {
  const s = await create({ template: 'open', invitedParticipants: ['bob'] });
  await ctl.waitSession(s.name, (x) => x.state === 'Active');
  is(await c.bob.post(sessPath(s.name, 'join'), { sshPublicKey: sshKey().pub }), 200);
  const from = ctl.messages.length;
  const r = await request({ type: 'resume', session: s.name, user: 'bob' });
  assert.equal(r.ok, true, JSON.stringify(r));
  assert.equal(r.session.state, 'Terminated');
  await ctl.waitSession(s.name, (x) => x.state === 'Terminated', { from });
  const g = is(await c.alice.get(sessPath(s.name)), 200);
  assert.equal(g.status.state, 'Terminated');
  const ev = is(await c.alice.get(sessPath(s.name, 'events')), 200).events;
  assert.equal(ev.find((e) => e.type === 'terminated')?.actor, 'bob');
  const again = await request({ type: 'resume', session: s.name, user: 'alice' });
  assert.equal(again.ok, false);
  assert.equal(again.code, 'CONFLICT');
});

test('3107 garbage on the control channel does not take the server down', async () => {
  ctl.ws.send('this is not json');
  ctl.ws.send(JSON.stringify({ type: 'no-such-type', id: 'x' }));
  // handled once the second is answered (or the channel dropped)
  await until(() => ctl.closed || ctl.messages.some((m) => m.type === 'reply' && m.id === 'x'),
    { what: 'the server handled both messages' });
  is(await env.anon.get('/healthz'), 200);
  if (ctl.closed) ctl = await agentOnline(env.srv, AG, reg.main.credential);
  const s = await create({ template: 'open' });
  await ctl.waitSession(s.name, (x) => x.state === 'Active');
});

test('3108 relay: a participant connects with the join ticket, the agent dials back, bytes flow both ways', async () => {
  const s = await create({ template: 'open' });
  await ctl.waitSession(s.name, (x) => x.state === 'Active');
  const j = is(await c.alice.post(sessPath(s.name, 'join'), { sshPublicKey: sshKey().pub }), 200);
  const from = ctl.messages.length;
  const p = await openWs(env.srv, `${sessPath(s.name, 'connect')}?ticket=${j.attach.ticket}`);
  assert.ok(p.ok, `connect refused: ${p.status} ${p.text}`);
  const open = await ctl.waitFor((m) => m.type === 'open', { from, what: 'open', timeout: 3000 });
  const t = await openWs(env.srv, `${agentPath(AG)}/tunnel/${encodeURIComponent(open.conn)}`, { token: reg.main.credential });
  assert.ok(t.ok, `tunnel refused: ${t.status} ${t.text}`);
  const recv = (conn) => new Promise((resolve) => {
    const chunks = [];
    conn.ws.on('message', (d) => { chunks.push(Buffer.from(d)); if (Buffer.concat(chunks).length >= 5) resolve(Buffer.concat(chunks)); });
  });
  const atAgent = recv(t.conn);
  p.conn.ws.send(Buffer.from('SSH-2'), { binary: true });
  assert.equal((await atAgent).toString(), 'SSH-2');
  const atUser = recv(p.conn);
  t.conn.ws.send(Buffer.from([0, 1, 2, 255, 10]), { binary: true });
  assert.deepEqual([...(await atUser)], [0, 1, 2, 255, 10]);
  // Terminating the session closes the relayed connection. A real agent closes it itself (after
  // the `airlock resume` that asked has returned its status); this fake agent does not, so the
  // relay's backstop must (core.c) — but only once the agent is gone: while it is online it may
  // still be closing, and a cut would drop what it sends last.
  is(await c.alice.post(sessPath(s.name, 'terminate'), {}), 200);
  await ctl.waitSession(s.name, (x) => x.state === 'Terminated', { from });
  // Then bytes still flow both ways.
  await sleep(3000); // a timer is right: nothing must happen while the agent is online (the old backstop cut at 2-2.25 s)
  assert.equal(p.conn.closed, false, 'the relay leaves the connection of an online agent to the agent');
  const atAgent2 = recv(t.conn);
  p.conn.ws.send(Buffer.from('still'), { binary: true });
  assert.equal((await atAgent2).toString(), 'still');
  const atUser2 = recv(p.conn);
  t.conn.ws.send(Buffer.from('there'), { binary: true });
  assert.equal((await atUser2).toString(), 'there');
  // The agent goes away without closing it: the backstop closes it at the reaper's next tick.
  const closed = whenClosed(p.conn);
  await ctl.close();
  assert.ok(await closed, 'the participant\'s relay socket is closed once the agent is gone');
  await t.conn.close();
  ctl = await agentOnline(env.srv, AG, reg.main.credential);
});

test('3109 connect refuses a bearer of a non-participant and a bad ticket', async () => {
  const s = await create({ template: 'open', invitedParticipants: ['bob'] });
  await ctl.waitSession(s.name, (x) => x.state === 'Active');
  const bad = await openWs(env.srv, `${sessPath(s.name, 'connect')}?ticket=${'A'.repeat(43)}`);
  assert.equal(bad.ok, false);
  assert.equal(bad.status, 401);
  const notJoined = await openWs(env.srv, sessPath(s.name, 'connect'), { token: await env.token('bob') });
  assert.equal(notJoined.ok, false, 'invited but not joined');
  assert.ok([403, 409].includes(notJoined.status), `${notJoined.status}`);
});

test('3110 tunnel endpoint: wrong credential 401, unknown conn 404 (or 401)', async () => {
  const w = await openWs(env.srv, `${agentPath(AG)}/tunnel/nope`, { token: 'bad' });
  assert.equal(w.ok, false);
  assert.equal(w.status, 401);
  const u = await openWs(env.srv, `${agentPath(AG)}/tunnel/no-such-conn`, { token: reg.main.credential });
  assert.equal(u.ok, false, 'a dial-back nobody asked for is refused');
  assert.ok([404, 401].includes(u.status), `${u.status}`);
  const o = await openWs(env.srv, `${agentPath('lab/ctl/other')}/tunnel/x`, { token: reg.main.credential });
  assert.equal(o.ok, false, 'another agent\'s tunnel path');
  assert.equal(o.status, 401);
});

test('3111 a join ticket dies with the session', async () => {
  const s = await create({ template: 'open' });
  await ctl.waitSession(s.name, (x) => x.state === 'Active');
  const j = is(await c.alice.post(sessPath(s.name, 'join'), { sshPublicKey: sshKey().pub }), 200);
  is(await c.alice.post(sessPath(s.name, 'terminate'), {}), 200);
  const r = await openWs(env.srv, `${sessPath(s.name, 'connect')}?ticket=${j.attach.ticket}`);
  assert.equal(r.ok, false);
  assert.ok([401, 403, 409].includes(r.status), `${r.status}`);
  // and a ticket is bound to its session
  const s2 = await create({ template: 'open' });
  await ctl.waitSession(s2.name, (x) => x.state === 'Active');
  const j2 = is(await c.alice.post(sessPath(s2.name, 'join'), { sshPublicKey: sshKey().pub }), 200);
  const s3 = await create({ template: 'open' });
  await ctl.waitSession(s3.name, (x) => x.state === 'Active');
  const cross = await openWs(env.srv, `${sessPath(s3.name, 'connect')}?ticket=${j2.attach.ticket}`);
  assert.equal(cross.ok, false, 'a ticket of another session');
  assert.equal(cross.status, 401);
});

test('3112 the agent\'s sessions record agent_online/agent_offline', async () => {
  const s = await create({ template: 'open' });
  await ctl.waitSession(s.name, (x) => x.state === 'Active');
  const eventTypes = async () => is(await c.alice.get(sessPath(s.name, 'events')), 200).events.map((e) => e.type);
  await ctl.close();
  await until(async () => (await eventTypes()).includes('agent_offline'), { what: 'the server sees the agent go' });
  ctl = await agentOnline(env.srv, AG, reg.main.credential);
  await ctl.waitSession(s.name, (x) => x.state === 'Active');
  // the events are recorded in the same transaction that resends the state, or just after
  await until(async () => {
    const t = await eventTypes();
    return t.indexOf('agent_online', t.indexOf('agent_offline')) > t.indexOf('agent_offline');
  }, { what: 'agent_online recorded after agent_offline' });
  const types = await eventTypes();
  const off = types.indexOf('agent_offline');
  assert.ok(off >= 0, `agent_offline recorded: ${types}`);
  assert.ok(types.indexOf('agent_online', off) > off, `agent_online after it: ${types}`);
});

test('3113 connect: an expired bearer is 401; a plain GET without an upgrade is 400', async () => {
  const s = await create({ template: 'open' });
  await ctl.waitSession(s.name, (x) => x.state === 'Active');
  is(await c.alice.post(sessPath(s.name, 'join'), { sshPublicKey: sshKey().pub }), 200);
  const t = Math.floor(Date.now() / 1000);
  const expired = await env.oidc.sign({ exp: t - 3600, iat: t - 7200 });
  const r = await openWs(env.srv, sessPath(s.name, 'connect'), { token: expired });
  assert.equal(r.ok, false);
  assert.equal(r.status, 401);
  const plain = await c.alice.get(sessPath(s.name, 'connect'));
  is(plain, 400, 'GET without Upgrade: websocket');
});

test('3114 the owner joining asks for owner or less and gets it', async () => {
  const s = await create({ template: 'open' });
  await ctl.waitSession(s.name, (x) => x.state === 'Active');
  assert.equal(is(await c.alice.post(sessPath(s.name, 'join'), { sshPublicKey: sshKey().pub, role: 'owner' }), 200).role, 'owner');
  assert.equal(is(await c.alice.post(sessPath(s.name, 'leave'), {}), 200).status.participants[0].leftAt !== null, true, 'leave with {} works');
  assert.equal(is(await c.alice.post(sessPath(s.name, 'join'), { sshPublicKey: sshKey().pub, role: 'viewer' }), 200).role, 'viewer');
});

test('3115 extend below the template\'s minDuration is refused over the control channel with REST\'s code and message', async () => {
  const s = await create({ template: 'bounded' });
  await ctl.waitSession(s.name, (x) => x.state === 'Active');
  for (const by of ['5m', '9m59s', '2h', 'soon']) {
    const r = await request({ type: 'extend', session: s.name, user: 'alice', by });
    assert.equal(r.ok, false, `${by}: ${JSON.stringify(r)}`);
    const rest = await c.alice.post(sessPath(s.name, 'renew'), { extendBy: by });
    is(rest, 400, `REST extendBy ${by}`);
    assert.equal(r.code, rest.json.code, `${by}: the same code as the REST API`);
    assert.equal(r.error, rest.json.error, `${by}: the same message as the REST API`);
  }
  assert.match((await request({ type: 'extend', session: s.name, user: 'alice', by: '5m' })).error, /minDuration/);
  assert.equal(is(await c.alice.get(sessPath(s.name)), 200).status.renewalCount, 0, 'nothing was renewed');
  const ok = await request({ type: 'extend', session: s.name, user: 'alice', by: '10m' });
  assert.equal(ok.ok, true, `exactly minDuration: ${JSON.stringify(ok)}`);
});
