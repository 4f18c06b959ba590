// 2400: visibility (404 and absent from lists for outsiders) and GET /api/v1/debug-sessions
// filters (state, mine, agent, user), paging (limit, nextCursor, newest first) and total.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { is, REASON, registerAgent, sessPath, setup } from './lib.mjs';

let env;
const c = {};
const made = { alice: [], bob: [] };
const all = [];
const list = async (who, q = '') => is(await c[who].get(`/api/v1/debug-sessions${q ? '?' + q : ''}`), 200, `${who} ?${q}`);
const names = (l) => l.sessions.map((s) => s.name);

before(async () => {
  env = await setup();
  for (const u of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace']) c[u] = await env.client(u);
  await registerAgent(c.erin, 'lab/list-a');
  await registerAgent(c.erin, 'lab/list-b');
  const mk = async (who, body) => {
    const s = is(await c[who].post('/api/v1/debug-sessions', { agent: 'lab/list-a', ...body }), 201);
    made[who].push(s.name);
    all.push(s.name);
    return s;
  };
  // alice: 3 ci-debug (PendingApproval), 1 open on list-b (Pending), 1 open terminated
  for (let i = 0; i < 3; i++) await mk('alice', { template: 'ci-debug', reason: REASON });
  await mk('alice', { template: 'open', agent: 'lab/list-b' });
  const t = await mk('alice', { template: 'open' });
  is(await c.alice.post(sessPath(t.name, 'terminate'), {}), 200);
  // bob: one inviting alice (by e-mail), one private
  await mk('bob', { template: 'open', invitedParticipants: ['Alice@Example.com'] });
  await mk('bob', { template: 'open' });
});
after(async () => { await env?.close(); });

test('2401 outsiders: 404 on GET and events, absent from lists, total 0', async () => {
  for (const n of all) {
    is(await c.frank.get(sessPath(n)), 404, `frank GET ${n}`);
    is(await c.frank.get(sessPath(n, 'events')), 404, `frank events ${n}`);
  }
  const f = await list('frank');
  assert.deepEqual(f, { sessions: [], total: 0, nextCursor: null });
  const e = await list('erin');
  assert.equal(e.total, 0, 'registering the agent does not make its sessions visible');
});

test('2402 bob sees his own two, not alice\'s; alice sees hers and the one she is invited to', async () => {
  const b = await list('bob');
  assert.deepEqual(names(b).sort(), [...made.bob].sort());
  assert.equal(b.total, 2);
  for (const n of made.alice) is(await c.bob.get(sessPath(n)), 404);
  const a = await list('alice');
  assert.deepEqual(names(a).sort(), [...made.alice, made.bob[0]].sort());
  assert.equal(a.total, 6);
  is(await c.alice.get(sessPath(made.bob[1])), 404, 'not invited to bob\'s second');
});

test('2403 mine=true: requested, participating or invited', async () => {
  const a = await list('alice', 'mine=true');
  assert.deepEqual(names(a).sort(), [...made.alice, made.bob[0]].sort());
  assert.equal(a.total, 6);
  const cm = await list('carol', 'mine=true');
  assert.equal(cm.total, 0, 'approving is not "mine"');
});

test('2404 approvers see the sessions they approve; admins see everything', async () => {
  const g = await list('grace');
  assert.deepEqual(names(g).sort(), made.alice.slice(0, 3).sort(), 'grace approves ci-debug only (open has no approvers)');
  const d = await list('dave');
  assert.equal(d.total, all.length);
  assert.deepEqual(names(d).sort(), [...all].sort());
});

test('2405 state filter: one state, several states', async () => {
  const p = await list('alice', 'state=PendingApproval');
  assert.deepEqual(names(p).sort(), made.alice.slice(0, 3).sort());
  assert.equal(p.total, 3);
  const q = await list('alice', 'state=Pending,Terminated');
  assert.equal(q.total, 3, names(q).join(','));
  assert.ok(q.sessions.every((s) => ['Pending', 'Terminated'].includes(s.status.state)));
  const none = await list('alice', 'state=Active');
  assert.deepEqual(none, { sessions: [], total: 0, nextCursor: null });
});

test('2406 agent filter (a name with "/" in the query string)', async () => {
  const b = await list('dave', `agent=${encodeURIComponent('lab/list-b')}`);
  assert.deepEqual(names(b), [made.alice[3]]);
  assert.equal(b.total, 1);
  assert.equal((await list('dave', 'agent=lab%2Fnope')).total, 0);
});

test('2407 user filter: sessions requested by that user (username or e-mail, any case)', async () => {
  const b = await list('dave', 'user=bob');
  assert.deepEqual(names(b).sort(), [...made.bob].sort());
  const e = await list('dave', `user=${encodeURIComponent('BOB@example.com')}`);
  assert.equal(e.total, 2);
  const combo = await list('dave', 'user=alice&state=PendingApproval&agent=lab%2Flist-a');
  assert.equal(combo.total, 3);
  const alicesView = await list('alice', 'user=bob');
  assert.deepEqual(names(alicesView), [made.bob[0]], 'filters never widen visibility');
});

test('2408 paging: limit + nextCursor walks the set newest first, without gaps or repeats; total counts the whole set', async () => {
  const full = await list('dave', 'limit=500');
  assert.equal(full.nextCursor, null);
  for (let i = 1; i < full.sessions.length; i++) {
    assert.ok(Date.parse(full.sessions[i - 1].createdAt) >= Date.parse(full.sessions[i].createdAt), 'newest first');
  }
  // creation order is known: the last created comes first
  assert.equal(full.sessions[0].name, all[all.length - 1]);
  assert.equal(full.sessions[full.sessions.length - 1].name, all[0]);
  const seen = [];
  let cursor = null;
  let pages = 0;
  do {
    const l = await list('dave', `limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    assert.ok(l.sessions.length <= 2);
    assert.equal(l.total, all.length, 'total is the whole filtered set on every page');
    seen.push(...names(l));
    cursor = l.nextCursor;
    pages++;
    assert.ok(pages < 10, 'paging terminates');
  } while (cursor);
  assert.equal(pages, Math.ceil(all.length / 2));
  assert.deepEqual(seen, names(full));
  // a filtered walk
  const p1 = await list('alice', 'state=PendingApproval&limit=2');
  assert.equal(p1.sessions.length, 2);
  assert.equal(p1.total, 3);
  assert.ok(p1.nextCursor);
  const p2 = await list('alice', `state=PendingApproval&limit=2&cursor=${encodeURIComponent(p1.nextCursor)}`);
  assert.equal(p2.sessions.length, 1);
  assert.equal(p2.nextCursor, null);
  assert.deepEqual([...names(p1), ...names(p2)].sort(), made.alice.slice(0, 3).sort());
});

test('2409 default limit is 50', async () => {
  // make 52 more sessions for dave to see
  for (let i = 0; i < 45; i++) is(await c.bob.post('/api/v1/debug-sessions', { template: 'open', agent: 'lab/list-a' }), 201);
  const d = await list('dave');
  assert.equal(d.total, all.length + 45);
  assert.equal(d.sessions.length, 50);
  assert.ok(d.nextCursor);
  const rest = await list('dave', `cursor=${encodeURIComponent(d.nextCursor)}`);
  assert.equal(rest.sessions.length, all.length + 45 - 50);
  assert.equal(rest.nextCursor, null);
});

test('2410 agents: listed for those whose templates allow them, 404 for others', async () => {
  const a = is(await c.alice.get('/api/v1/agents'), 200);
  assert.deepEqual(a.agents.map((x) => x.name).sort(), ['lab/list-a', 'lab/list-b']);
  const f = is(await c.frank.get('/api/v1/agents'), 200);
  assert.deepEqual(f.agents, []);
  is(await c.frank.get('/api/v1/agents/lab%2Flist-a'), 404);
  is(await c.alice.get('/api/v1/agents/lab%2Fnope'), 404);
  const one = is(await c.alice.get('/api/v1/agents/lab%2Flist-b'), 200);
  assert.deepEqual(one.sessions, [made.alice[3]], 'the agent\'s live sessions the caller can see');
});
