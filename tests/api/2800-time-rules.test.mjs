// 2800: issue 12 on the server: template time rules (claimDeadline, clockStartsAt: firstConnect,
// idleTimeout, autoExtend), presence from the agent's `activity` reports, the audit events
// connected/disconnected/ticket_issued, the agent offline countdown and `wait --timeout` recorded
// as airlock's. A `ws` client plays the agent; limits are seconds, so nothing sleeps for long:
// every wait polls the API (or the control socket) with a deadline.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { agentOnline, assertSchema, is, registerAgent, secs, sessPath, setup, sleep, sshKey, TEMPLATES, tmpl, waitState } from './lib.mjs';

let env;
const c = {};
const reg = {};
const ctl = {};
const GRACE = 20;

const RULES = [
  tmpl('claim', { constraints: { claimDeadline: '3s' } }),
  tmpl('first', { constraints: { maxDuration: '4h', defaultDuration: '1h', claimDeadline: '1m', clockStartsAt: 'firstConnect' } }),
  tmpl('idle', { constraints: { idleTimeout: '3s' } }),
  tmpl('auto', { constraints: { maxDuration: '1m', defaultDuration: '4s', allowRenewal: true, maxRenewals: 0, autoExtend: { step: '3s', maxTotal: '10s' } } }),
];

before(async () => {
  env = await setup({ extra: { agentGracePeriod: `${GRACE}s` }, templates: [...TEMPLATES, ...RULES] });
  for (const u of ['alice', 'bob', 'erin']) c[u] = await env.client(u);
  for (const n of ['lab/rules-1', 'lab/rules-2']) {
    reg[n] = await registerAgent(c.erin, n);
    ctl[n] = await agentOnline(env.srv, n, reg[n].credential);
  }
});
after(async () => {
  for (const k of Object.keys(ctl)) await ctl[k]?.close();
  await env?.close();
});

const AG = 'lab/rules-1';
const iso = (ms = Date.now()) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
const create = async (template, body = {}) => {
  const s = is(await c.alice.post('/api/v1/debug-sessions', { template, agent: AG, ...body }), 201);
  return waitState(c.alice, s.name, (x) => x.status.state === 'Active');
};
const events = async (name) => is(await c.alice.get(sessPath(name, 'events')), 200).events;
/** Polls the events until pred(events) holds; returns them. */
async function waitEvents(name, pred, { timeout = 8000, what = 'events' } = {}) {
  const end = Date.now() + timeout;
  for (;;) {
    const ev = await events(name);
    if (pred(ev)) return ev;
    if (Date.now() > end) assert.fail(`${name}: ${what} not seen in ${timeout} ms: ${ev.map((e) => e.type).join(',')}`);
    await sleep(100); // the poll interval of this wait for the event
  }
}
/** The agent's activity report: conns [{id, user, role, since, lastInputAt?}]. */
const report = (name, conns, lastInputAt = null, agent = AG) =>
  ctl[agent].send({ type: 'activity', session: name, connections: conns, lastInputAt });

test('2801 the template JSON and the control message carry the time rules', async () => {
  const t = is(await c.alice.get('/api/v1/debug-session-templates/auto'), 200);
  assert.deepEqual(
    [t.constraints.claimDeadline, t.constraints.clockStartsAt, t.constraints.idleTimeout, t.constraints.autoExtend],
    [null, 'activation', null, { step: '3s', maxTotal: '10s' }]);
  const f = is(await c.alice.get('/api/v1/debug-session-templates/first'), 200);
  assert.equal(f.constraints.clockStartsAt, 'firstConnect');
  assert.equal(f.constraints.claimDeadline, '1m');
  const s = await create('idle');
  const m = await ctl[AG].waitSession(s.name, (x) => x.state === 'Active');
  assertSchema('ControlSession', m);
  assert.equal(m.idleTimeout, 3);
  assert.equal(m.canExtend, true);
  assert.equal(s.status.effectiveDuration, '1h');
  is(await c.alice.post(sessPath(s.name, 'terminate'), {}), 200);
});

test('2802 claimDeadline: nobody connects within 3s -> Expired by airlock, reason claim_deadline', async () => {
  const s = await create('claim');
  assert.equal(s.status.idleEndsAt, null);
  const done = await waitState(c.alice, s.name, (x) => x.status.state !== 'Active', { timeout: 8000 });
  assert.equal(done.status.state, 'Expired');
  assert.equal(done.status.message, 'nobody connected within 3s');
  const at = (await events(s.name)).find((e) => e.type === 'expired');
  assert.deepEqual([at.actor, at.data], ['airlock', { reason: 'claim_deadline' }]);
  const d = secs(at.at, s.status.startsAt);
  assert.ok(d >= 3 && d <= 5, `expired ${d}s after activation`);
  await ctl[AG].waitSession(s.name, (x) => x.state === 'Expired', { timeout: 3000 });
});

test('2803 a ticket is ticket_issued, not a join; a connection is connected/disconnected with presence', async () => {
  const s = await create('claim');
  const j = is(await c.alice.post(sessPath(s.name, 'join'), { sshPublicKey: sshKey('a').pub }), 200);
  const owner = j.session.status.participants.find((p) => p.user === 'alice');
  assert.deepEqual([owner.connections, owner.connectedSince, owner.firstConnectedAt], [0, null, null], 'a ticket alone is not a connection');
  const since = iso();
  report(s.name, [{ id: 'c1', user: 'alice', role: 'owner', since }]);
  const on = await waitState(c.alice, s.name, (x) => x.status.participants[0].connections === 1);
  const p = on.status.participants[0];
  assert.equal(p.connectedSince, since);
  assert.equal(p.firstConnectedAt, since);
  // connected in time: the claim deadline no longer applies
  await sleep(3500); // past the 3s claimDeadline: the session must stay Active (nothing to poll for)
  report(s.name, []);
  const off = await waitState(c.alice, s.name, (x) => x.status.participants[0].connections === 0);
  assert.equal(off.status.state, 'Active', 'someone connected before the claim deadline');
  assert.equal(off.status.participants[0].connectedSince, null);
  assert.equal(off.status.participants[0].firstConnectedAt, since, 'the first connection stays recorded');
  const ev = await events(s.name);
  const types = ev.map((e) => e.type);
  assert.ok(!types.includes('joined'), types.join(','));
  const t = ev.find((e) => e.type === 'ticket_issued');
  assert.deepEqual([t.actor, t.data.role], ['alice', 'owner']);
  const up = ev.find((e) => e.type === 'connected');
  assert.deepEqual([up.actor, up.data], ['alice', { role: 'owner', conn: 'c1' }]);
  const down = ev.find((e) => e.type === 'disconnected');
  assert.deepEqual([down.actor, down.data.role, down.data.conn], ['alice', 'owner', 'c1']);
  assert.ok(down.data.seconds >= 3 && down.data.seconds <= 8, `seconds ${down.data.seconds}`);
  assert.ok(types.indexOf('ticket_issued') < types.indexOf('connected') && types.indexOf('connected') < types.indexOf('disconnected'));
  // a report repeated unchanged records nothing new
  report(s.name, []);
  report(s.name, [{ id: 'c2', user: 'alice', role: 'owner', since: iso() }]);
  await waitEvents(s.name, (e) => e.filter((x) => x.type === 'connected').length === 2);
  is(await c.alice.post(sessPath(s.name, 'terminate'), {}), 200);
  // the end closes out what was live: a disconnected event for c2
  const end = await waitEvents(s.name, (e) => e.filter((x) => x.type === 'disconnected').length === 2);
  assert.equal(end.filter((x) => x.type === 'disconnected')[1].data.conn, 'c2');
});

test('2804 clockStartsAt firstConnect: expiresAt is the claim deadline until the first connection', async () => {
  const s = await create('first');
  assert.equal(secs(s.status.expiresAt, s.status.startsAt), 60, 'bounded by claimDeadline');
  await sleep(1100); // so that the first connection is a visibly later second than activation
  const since = iso();
  report(s.name, [{ id: 'f1', user: 'alice', role: 'owner', since }]);
  const on = await waitState(c.alice, s.name, (x) => x.status.startsAt === since);
  assert.equal(secs(on.status.expiresAt, since), 3600, 'the hour counts from the first connection');
  assert.equal(on.status.effectiveDuration, '1h');
  await ctl[AG].waitSession(s.name, (x) => x.expiresAt === on.status.expiresAt, { timeout: 3000 });
  // a second connection later does not move the clock again
  report(s.name, [{ id: 'f1', user: 'alice', role: 'owner', since }, { id: 'f2', user: 'alice', role: 'owner', since: iso(Date.now() + 2000) }]);
  const two = await waitState(c.alice, s.name, (x) => x.status.participants[0].connections === 2);
  assert.equal(two.status.startsAt, since);
  is(await c.alice.post(sessPath(s.name, 'terminate'), {}), 200);
});

test('2805 idleTimeout: input keeps it alive, no input for 3s ends it (reason idle)', async () => {
  const s = await create('idle');
  const conn = { id: 'i1', user: 'alice', role: 'owner', since: iso() };
  const stop = Date.now() + 5000;
  while (Date.now() < stop) { // type for 5 s, longer than the 3 s idle timeout
    report(s.name, [{ ...conn, lastInputAt: iso() }], iso());
    await sleep(700); // the typing cadence: well inside the idle timeout
  }
  const mid = is(await c.alice.get(sessPath(s.name)), 200);
  assert.equal(mid.status.state, 'Active', 'input within idleTimeout keeps the session');
  assert.ok(mid.status.idleEndsAt, 'idleEndsAt is shown');
  assert.equal(mid.status.participants[0].lastInputAt !== null, true);
  const last = Date.parse(mid.status.participants[0].lastInputAt);
  const done = await waitState(c.alice, s.name, (x) => x.status.state !== 'Active', { timeout: 8000 });
  assert.equal(done.status.state, 'Expired');
  assert.equal(done.status.message, 'no input for 3s');
  const ev = await events(s.name);
  const x = ev.find((e) => e.type === 'expired');
  assert.deepEqual([x.actor, x.data], ['airlock', { reason: 'idle' }]);
  const d = (Date.parse(x.at) - last) / 1000;
  assert.ok(d >= 3 && d <= 5, `ended ${d}s after the last input`);
  assert.ok(ev.some((e) => e.type === 'disconnected' && e.data.conn === 'i1'), 'the live connection is closed out');
});

test('2806 autoExtend: typing extends by step up to maxTotal (renewed by airlock, auto), then it expires', async () => {
  const s = await create('auto');
  const start = Date.parse(s.status.startsAt);
  const conn = { id: 'x1', user: 'alice', role: 'owner', since: iso() };
  let last = s;
  while (Date.now() < start + 12000 && last.status.state === 'Active') { // type until past the 10s cap
    report(s.name, [{ ...conn, lastInputAt: iso() }], iso());
    await sleep(700); // the typing cadence: inside the 3s step
    last = is(await c.alice.get(sessPath(s.name)), 200);
  }
  const done = await waitState(c.alice, s.name, (x) => x.status.state !== 'Active', { timeout: 6000 });
  assert.equal(done.status.state, 'Expired');
  assert.equal(secs(done.status.expiresAt, done.status.startsAt), 10, 'never past startsAt + maxTotal');
  assert.equal(done.status.effectiveDuration, '10s');
  assert.equal(done.status.renewalCount, 0, 'auto-extensions do not count against maxRenewals');
  const ev = await events(s.name);
  const ren = ev.filter((e) => e.type === 'renewed');
  assert.ok(ren.length >= 2, `renewed ${ren.length} times`);
  for (const r of ren) assert.deepEqual([r.actor, r.data.by, r.data.auto], ['airlock', 'airlock', true]);
  assert.deepEqual(ev.find((e) => e.type === 'expired').data, { reason: 'duration' });
});

test('2807 autoExtend without input: no extension, it expires at the requested duration', async () => {
  const s = await create('auto');
  report(s.name, [{ id: 'q1', user: 'alice', role: 'owner', since: iso() }]);
  const done = await waitState(c.alice, s.name, (x) => x.status.state !== 'Active', { timeout: 8000 });
  assert.equal(secs(done.status.expiresAt, done.status.startsAt), 4);
  assert.ok(!(await events(s.name)).some((e) => e.type === 'renewed'));
});

test('2808 bad activity reports change nothing and the server keeps serving', async () => {
  const s = await create('claim');
  report(s.name, [{ id: 'z1', user: 'mallory', role: 'owner', since: iso() }]);
  report(s.name, [{ id: 'z2', user: 'alice', role: 'emperor', since: iso() }]);
  report(s.name, [{ id: 'z3', user: 'alice', role: 'owner', since: 'yesterday' }]);
  report(s.name, [{ id: 'x'.repeat(65), user: 'alice', role: 'owner', since: iso() }]);
  report(s.name, 'many');
  ctl[AG].send({ type: 'activity' });
  // the session of another agent cannot be reported on
  report(s.name, [{ id: 'o1', user: 'alice', role: 'owner', since: iso() }], null, 'lab/rules-2');
  // then a good one: it is applied, and it is the only connection recorded
  report(s.name, [{ id: 'g1', user: 'alice', role: 'owner', since: iso() }]);
  const ok = await waitState(c.alice, s.name, (x) => x.status.participants[0].connections === 1);
  assert.equal(ok.status.state, 'Active');
  const up = (await events(s.name)).filter((e) => e.type === 'connected');
  assert.deepEqual(up.map((e) => e.data.conn), ['g1']);
  is(await c.alice.post(sessPath(s.name, 'terminate'), {}), 200);
});

test('2809 agent offline: offlineSince and failsAt (offlineSince + agentGracePeriod), cleared on return', async () => {
  const AG2 = 'lab/rules-2';
  const s = is(await c.alice.post('/api/v1/debug-sessions', { template: 'open', agent: AG2 }), 201);
  await waitState(c.alice, s.name, (x) => x.status.state === 'Active');
  await ctl[AG2].close();
  const off = await waitState(c.alice, s.name, (x) => x.status.agent.online === false);
  assert.ok(off.status.agent.offlineSince);
  assert.equal(secs(off.status.agent.failsAt, off.status.agent.offlineSince), GRACE);
  ctl[AG2] = await agentOnline(env.srv, AG2, reg[AG2].credential);
  const on = await waitState(c.alice, s.name, (x) => x.status.agent.online === true);
  assert.deepEqual([on.status.agent.offlineSince, on.status.agent.failsAt], [null, null]);
  is(await c.alice.post(sessPath(s.name, 'terminate'), {}), 200);
});

test('2810 wait --timeout is recorded as airlock ending it (reason wait_timeout), not a resume by the owner', async () => {
  const s = await create('open');
  const from = ctl[AG].messages.length;
  ctl[AG].send({ type: 'resume', id: 't1', session: s.name, user: 'alice', reason: 'wait_timeout', timeout: '10m' });
  const rep = await ctl[AG].waitFor((m) => m.type === 'reply' && m.id === 't1', { from });
  assert.equal(rep.ok, true, JSON.stringify(rep));
  const done = is(await c.alice.get(sessPath(s.name)), 200);
  assert.equal(done.status.state, 'Terminated');
  assert.equal(done.status.message, 'terminated by airlock wait: nobody connected within 10m');
  const t = (await events(s.name)).find((e) => e.type === 'terminated');
  assert.deepEqual([t.actor, t.data], ['airlock', { reason: 'wait_timeout', timeout: '10m' }]);
});
