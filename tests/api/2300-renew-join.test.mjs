// 2300: renewals (limits → 403, wrong state → 409), joining (roles, escalation, maxParticipants),
// invitations and who may terminate an Active session.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { agentOnline, is, openWs, REASON, registerAgent, secs, sessPath, setup, sshKey } from './lib.mjs';

let env;
let ctl;
const c = {};
const key = () => sshKey().pub;
async function active(who, body) {
  const s = is(await c[who].post('/api/v1/debug-sessions', { agent: 'lab/rj', ...body }), 201);
  if (s.status.state === 'PendingApproval') is(await c.carol.post(sessPath(s.name, 'approve'), {}), 200);
  const a = await ctl.waitSession(s.name, (x) => x.state === 'Active').catch(() => null);
  const g = is(await c[who].get(sessPath(s.name)), 200);
  assert.equal(g.status.state, 'Active', `session should be Active (agent message: ${JSON.stringify(a)})`);
  return g;
}

before(async () => {
  env = await setup();
  for (const u of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace']) c[u] = await env.client(u);
  const reg = await registerAgent(c.erin, 'lab/rj');
  ctl = await agentOnline(env.srv, 'lab/rj', reg.credential);
});
after(async () => {
  await ctl?.close();
  await env?.close();
});

test('2301 renew up to maxRenewals, then 403 (ci-debug: maxRenewals 2)', async () => {
  const s = await active('alice', { template: 'ci-debug', reason: REASON, requestedDuration: '1h' });
  assert.equal(s.status.maxRenewals, 2);
  const r1 = is(await c.alice.post(sessPath(s.name, 'renew'), { extendBy: '10m' }), 200);
  const r2 = is(await c.alice.post(sessPath(s.name, 'renew'), { extendBy: '10m' }), 200);
  assert.equal(r2.status.renewalCount, 2);
  assert.equal(secs(r2.status.expiresAt, r1.status.expiresAt), 600);
  const r3 = await c.alice.post(sessPath(s.name, 'renew'), { extendBy: '10m' });
  is(r3, 403, 'third renewal');
  assert.match(r3.json.error, /renewal/i);
  const after = is(await c.alice.get(sessPath(s.name)), 200);
  assert.equal(after.status.expiresAt, r2.status.expiresAt, 'a refused renewal changes nothing');
  assert.equal(after.status.renewalCount, 2);
  assert.equal(after.canRenew, false);
});

test('2302 renew past startsAt + maxDuration: 403; up to it exactly: 200', async () => {
  const s = await active('alice', { template: 'ci-debug', reason: REASON, requestedDuration: '3h' });
  is(await c.alice.post(sessPath(s.name, 'renew'), { extendBy: '1h1m' }), 403, 'past 4h');
  const ok = is(await c.alice.post(sessPath(s.name, 'renew'), { extendBy: '1h' }), 200, 'exactly to 4h');
  assert.equal(secs(ok.status.expiresAt, ok.status.startsAt), 4 * 3600);
  is(await c.alice.post(sessPath(s.name, 'renew'), { extendBy: '1s' }), 403, 'one second more');
});

test('2303 extendBy unparsable or above maxDuration: 400', async () => {
  const s = await active('alice', { template: 'open' });
  for (const d of ['later', '0s', '-5m', '5h']) {
    is(await c.alice.post(sessPath(s.name, 'renew'), { extendBy: d }), 400, `extendBy ${d}`);
  }
});

test('2304 renewals off in the template: 403', async () => {
  const s = await active('alice', { template: 'no-renew' });
  assert.equal(s.canRenew, false);
  is(await c.alice.post(sessPath(s.name, 'renew'), { extendBy: '5m' }), 403);
});

test('2305 who may renew: owner and joined participants; not viewers, approvers, invitees who have not joined, admins', async () => {
  const s = await active('alice', { template: 'ci-debug', reason: REASON, invitedParticipants: ['bob'] });
  is(await c.bob.post(sessPath(s.name, 'renew'), { extendBy: '1m' }), 403, 'invited, not joined');
  is(await c.carol.post(sessPath(s.name, 'renew'), { extendBy: '1m' }), 403, 'approver');
  is(await c.dave.post(sessPath(s.name, 'renew'), { extendBy: '1m' }), 403, 'admin');
  is(await c.carol.post(sessPath(s.name, 'join'), { sshPublicKey: key() }), 200, 'approver joins as viewer');
  is(await c.carol.post(sessPath(s.name, 'renew'), { extendBy: '1m' }), 403, 'viewer');
  is(await c.bob.post(sessPath(s.name, 'join'), { sshPublicKey: key() }), 200);
  is(await c.bob.post(sessPath(s.name, 'renew'), { extendBy: '1m' }), 200, 'joined participant');
  is(await c.alice.post(sessPath(s.name, 'renew'), { extendBy: '1m' }), 200, 'owner (without joining)');
});

test('2306 join roles: approver and admin as viewer, no escalation; an outsider cannot join', async () => {
  const s = await active('alice', { template: 'ci-debug', reason: REASON, invitedParticipants: ['bob'] });
  const cj = is(await c.carol.post(sessPath(s.name, 'join'), { sshPublicKey: key() }), 200);
  assert.equal(cj.role, 'viewer');
  is(await c.carol.post(sessPath(s.name, 'join'), { sshPublicKey: key(), role: 'participant' }), 403, 'approver asking participant');
  const dj = is(await c.dave.post(sessPath(s.name, 'join'), { sshPublicKey: key() }), 200);
  assert.equal(dj.role, 'viewer');
  is(await c.dave.post(sessPath(s.name, 'join'), { sshPublicKey: key(), role: 'owner' }), 403, 'admin asking owner');
  is(await c.bob.post(sessPath(s.name, 'join'), { sshPublicKey: key(), role: 'owner' }), 403, 'participant asking owner');
  const bv = is(await c.bob.post(sessPath(s.name, 'join'), { sshPublicKey: key(), role: 'viewer' }), 200, 'lowering is fine');
  assert.equal(bv.role, 'viewer');
  is(await c.frank.post(sessPath(s.name, 'join'), { sshPublicKey: key() }), 404, 'outsider: invisible');
  is(await c.grace.post(sessPath(s.name, 'join'), { sshPublicKey: key() }), 200, 'another approver of the template may watch');
});

test('2307 the agent learns roles: viewers are sent as viewer', async () => {
  const s = await active('alice', { template: 'open', invitedParticipants: ['bob'] });
  const from = ctl.messages.length;
  is(await c.bob.post(sessPath(s.name, 'join'), { sshPublicKey: key(), role: 'viewer' }), 200);
  const m = await ctl.waitSession(s.name, (x) => x.participants.some((p) => p.user === 'bob'), { from });
  assert.equal(m.participants.find((p) => p.user === 'bob').role, 'viewer');
});

test('2308 readOnlyParticipants: invitees join as viewer and cannot ask for participant', async () => {
  const s = await active('alice', { template: 'readonly', invitedParticipants: ['bob'] });
  is(await c.bob.post(sessPath(s.name, 'join'), { sshPublicKey: key(), role: 'participant' }), 403);
  const j = is(await c.bob.post(sessPath(s.name, 'join'), { sshPublicKey: key() }), 200);
  assert.equal(j.role, 'viewer');
  const o = is(await c.alice.post(sessPath(s.name, 'join'), { sshPublicKey: key() }), 200);
  assert.equal(o.role, 'owner', 'the owner stays owner');
});

test('2309 invited as viewer: joins as viewer, cannot escalate', async () => {
  const s = await active('alice', { template: 'open' });
  is(await c.alice.post(sessPath(s.name, 'invite'), { users: ['bob'], role: 'viewer' }), 200);
  is(await c.bob.post(sessPath(s.name, 'join'), { sshPublicKey: key(), role: 'participant' }), 403);
  assert.equal(is(await c.bob.post(sessPath(s.name, 'join'), { sshPublicKey: key() }), 200).role, 'viewer');
});

test('2310 maxParticipants counts every active participant, owner and viewers included; leaving frees a seat', async () => {
  const s = await active('alice', { template: 'tiny', invitedParticipants: ['bob', 'erin'] });
  is(await c.alice.post(sessPath(s.name, 'join'), { sshPublicKey: key() }), 200);
  is(await c.bob.post(sessPath(s.name, 'join'), { sshPublicKey: key(), role: 'viewer' }), 200);
  const full = await c.erin.post(sessPath(s.name, 'join'), { sshPublicKey: key() });
  is(full, 409, 'third of maxParticipants 2');
  is(await c.bob.post(sessPath(s.name, 'leave')), 200);
  is(await c.erin.post(sessPath(s.name, 'join'), { sshPublicKey: key() }), 200, 'seat freed');
  is(await c.bob.post(sessPath(s.name, 'join'), { sshPublicKey: key() }), 409, 'full again');
  // rejoining while already in does not take a second seat
  is(await c.alice.post(sessPath(s.name, 'join'), { sshPublicKey: key() }), 200, 'owner joins again (same seat)');
});

test('2311 invitations: owner only, usernames or e-mails, case-insensitive; the invitee then sees the session', async () => {
  const s = await active('alice', { template: 'open' });
  is(await c.bob.post(sessPath(s.name, 'invite'), { users: ['bob'], role: 'participant' }), 404, 'bob cannot see it yet');
  is(await c.alice.post(sessPath(s.name, 'invite'), { users: ['BOB@EXAMPLE.COM'], role: 'participant' }), 200);
  const b = is(await c.bob.get(sessPath(s.name)), 200);
  assert.equal(b.canJoin, true);
  is(await c.bob.post(sessPath(s.name, 'invite'), { users: ['erin'], role: 'participant' }), 403, 'a participant may not invite');
  is(await c.dave.post(sessPath(s.name, 'invite'), { users: ['erin'], role: 'participant' }), 403, 'an admin is not the owner');
  assert.equal(is(await c.bob.post(sessPath(s.name, 'join'), { sshPublicKey: key() }), 200).role, 'participant');
  const ev = is(await c.alice.get(sessPath(s.name, 'events')), 200).events;
  assert.ok(ev.some((e) => e.type === 'invited' && e.actor === 'alice'));
});

test('2312 wrong state: join/renew/leave before Active, and on ended sessions: 409', async () => {
  const p = is(await c.alice.post('/api/v1/debug-sessions', { template: 'ci-debug', agent: 'lab/rj', reason: REASON }), 201);
  assert.equal(p.status.state, 'PendingApproval');
  is(await c.alice.post(sessPath(p.name, 'join'), { sshPublicKey: key() }), 409, 'join PendingApproval');
  is(await c.alice.post(sessPath(p.name, 'renew'), { extendBy: '5m' }), 409, 'renew PendingApproval');
  is(await c.alice.post(sessPath(p.name, 'leave')), 409, 'leave without joining');
  const s = await active('alice', { template: 'open' });
  is(await c.alice.post(sessPath(s.name, 'terminate'), {}), 200);
  is(await c.alice.post(sessPath(s.name, 'join'), { sshPublicKey: key() }), 409, 'join Terminated');
  is(await c.alice.post(sessPath(s.name, 'invite'), { users: ['bob'], role: 'participant' }), 409, 'invite Terminated');
  is(await c.alice.post(sessPath(s.name, 'terminate'), {}), 409, 'terminate Terminated');
});

test('2313 terminate an Active session: participants may not, approver and admin may', async () => {
  const s = await active('alice', { template: 'ci-debug', reason: REASON, invitedParticipants: ['bob'] });
  is(await c.bob.post(sessPath(s.name, 'join'), { sshPublicKey: key() }), 200);
  is(await c.bob.post(sessPath(s.name, 'terminate'), {}), 403, 'participant');
  const t = is(await c.grace.post(sessPath(s.name, 'terminate'), { reason: 'enough' }), 200, 'an approver of the template');
  assert.equal(t.status.state, 'Terminated');
  const s2 = await active('alice', { template: 'open' });
  is(await c.dave.post(sessPath(s2.name, 'terminate'), {}), 200, 'admin');
});

test('2314 leaving kills the join ticket: the connect endpoint refuses it', async () => {
  const s = await active('alice', { template: 'open' });
  const j = is(await c.alice.post(sessPath(s.name, 'join'), { sshPublicKey: key() }), 200);
  is(await c.alice.post(sessPath(s.name, 'leave')), 200);
  const r = await openWs(env.srv, `${sessPath(s.name, 'connect')}?ticket=${j.attach.ticket}`);
  assert.equal(r.ok, false, 'a dead ticket must not connect');
  assert.ok([401, 403].includes(r.status), `status ${r.status}`);
});
