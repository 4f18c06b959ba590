// 2350: the owner rule. From the moment a session is Active its requester is listed in
// status.participants as `owner` with joinedAt = startsAt (before any join), and the agent's
// desired state lists the owner's role with no keys until the owner joins with one.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { agentOnline, is, registerAgent, sessPath, setup, sshKey } from './lib.mjs';

let env;
let ctl;
const c = {};
const AG = 'lab/owner';

before(async () => {
  env = await setup();
  for (const u of ['alice', 'bob', 'carol', 'erin']) c[u] = await env.client(u);
  const reg = await registerAgent(c.erin, AG);
  ctl = await agentOnline(env.srv, AG, reg.credential);
});
after(async () => {
  await ctl?.close();
  await env?.close();
});

const owner = (s) => s.status.participants.filter((p) => p.user === 'alice');

test('2351 Active at creation: alice is listed as owner with joinedAt = startsAt, and the agent knows her role', async () => {
  const from = ctl.messages.length;
  const s = is(await c.alice.post('/api/v1/debug-sessions', { template: 'open', agent: AG }), 201);
  assert.equal(s.status.state, 'Active');
  assert.deepEqual(owner(s), [{ user: 'alice', email: 'alice@example.com', displayName: s.spec.requestedByDisplayName,
    role: 'owner', joinedAt: s.status.startsAt, leftAt: null,
    // presence (issue 12): listed, not connected
    connections: 0, connectedSince: null, lastInputAt: null, firstConnectedAt: null }], 'the creation reply lists the owner');
  const g = is(await c.alice.get(sessPath(s.name)), 200);
  assert.deepEqual(g.status.participants, s.status.participants, 'GET agrees');
  const m = await ctl.waitSession(s.name, (x) => x.state === 'Active', { from });
  assert.deepEqual(m.participants, [{ user: 'alice', role: 'owner', keys: [] }]);
});

test('2352 Active after approval: the owner appears at activation, not before', async () => {
  const s = is(await c.alice.post('/api/v1/debug-sessions', { template: 'ci-debug', agent: AG, reason: 'the owner rule, after approval' }), 201);
  assert.equal(s.status.state, 'PendingApproval');
  assert.deepEqual(s.status.participants, [], 'not Active yet: nobody listed');
  const from = ctl.messages.length;
  const a = is(await c.carol.post(sessPath(s.name, 'approve'), {}), 200);
  assert.equal(a.status.state, 'Active');
  assert.equal(owner(a).length, 1);
  assert.equal(owner(a)[0].role, 'owner');
  assert.equal(owner(a)[0].joinedAt, a.status.startsAt);
  const m = await ctl.waitSession(s.name, (x) => x.state === 'Active', { from });
  assert.deepEqual(m.participants, [{ user: 'alice', role: 'owner', keys: [] }]);
});

test('2353 the owner joins: the same row gets her key and keeps joinedAt; others see her as in', async () => {
  const s = is(await c.alice.post('/api/v1/debug-sessions', { template: 'open', agent: AG, invitedParticipants: ['bob'] }), 201);
  const key = sshKey('alice').pub;
  const from = ctl.messages.length;
  const j = is(await c.alice.post(sessPath(s.name, 'join'), { sshPublicKey: key }), 200);
  assert.equal(j.role, 'owner');
  assert.deepEqual(owner(j.session), owner(s), 'one row for alice, joinedAt still startsAt');
  const m = await ctl.waitSession(s.name, (x) => x.participants.some((p) => p.user === 'alice' && p.keys.length === 1), { from });
  assert.deepEqual(m.participants, [{ user: 'alice', role: 'owner', keys: [key] }]);
  const b = is(await c.bob.get(sessPath(s.name)), 200);
  assert.equal(owner(b).length, 1, 'bob sees alice listed');
});

test('2354 the owner leaves and joins again: leftAt, then a new joinedAt', async () => {
  const s = is(await c.alice.post('/api/v1/debug-sessions', { template: 'open', agent: AG }), 201);
  const from = ctl.messages.length;
  const l = is(await c.alice.post(sessPath(s.name, 'leave'), {}), 200);
  assert.ok(owner(l)[0].leftAt, 'leftAt is set');
  const m = await ctl.waitSession(s.name, (x) => !x.participants.some((p) => p.user === 'alice'), { from });
  assert.deepEqual(m.participants, [], 'the agent no longer lists her');
  const j = is(await c.alice.post(sessPath(s.name, 'join'), { sshPublicKey: sshKey('alice').pub }), 200);
  assert.equal(owner(j.session)[0].leftAt, null);
  assert.ok(Date.parse(owner(j.session)[0].joinedAt) >= Date.parse(s.status.startsAt));
});
