// 2200: approvals. Nobody approves their own request (by username or e-mail, case-insensitive,
// even inside the approver group); a decision is final; approver-less templates auto-approve.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { is, REASON, registerAgent, sessPath, setup } from './lib.mjs';

let env;
const c = {};
const create = (who, body) => c[who].post('/api/v1/debug-sessions', { agent: 'lab/appr', ...body });

before(async () => {
  env = await setup();
  for (const u of ['alice', 'bob', 'carol', 'grace', 'dave', 'asmith', 'aliceupper', 'frank', 'erin']) c[u] = await env.client(u);
  await registerAgent(c.erin, 'lab/appr');
});
after(async () => { await env?.close(); });

test('2201 an approver cannot approve or reject their own request (username)', async () => {
  const s = is(await create('carol', { template: 'strict' }), 201);
  assert.equal(s.status.state, 'PendingApproval', 'strict has no autoApproveFor');
  assert.equal(s.canApprove, false);
  is(await c.carol.post(sessPath(s.name, 'approve'), {}), 403, 'self-approve');
  is(await c.carol.post(sessPath(s.name, 'reject'), { reason: 'x' }), 403, 'self-reject');
  const g = is(await c.grace.get(sessPath(s.name)), 200);
  assert.equal(g.canApprove, true);
  const ok = is(await c.grace.post(sessPath(s.name, 'approve'), {}), 200, 'another approver');
  assert.equal(ok.status.approval.approvedBy, 'grace');
});

test('2202 self-approval refused by e-mail, case-insensitive, under another username in the approver group', async () => {
  const s = is(await create('alice', { template: 'strict' }), 201);
  const a = is(await c.asmith.get(sessPath(s.name)), 200, 'asmith sees it as an approver');
  assert.equal(a.canApprove, false, 'ALICE@Example.COM is alice@example.com');
  is(await c.asmith.post(sessPath(s.name, 'approve'), {}), 403);
  is(await c.asmith.post(sessPath(s.name, 'reject'), {}), 403);
  assert.equal(is(await c.carol.get(sessPath(s.name)), 200).status.state, 'PendingApproval', 'still undecided');
});

test('2203 self-approval refused by username in another case', async () => {
  const s = is(await create('alice', { template: 'strict' }), 201);
  is(await c.aliceupper.post(sessPath(s.name, 'approve'), {}), 403, '"ALICE" is alice');
  is(await c.carol.post(sessPath(s.name, 'approve'), {}), 200);
});

test('2204 a decision is final: approve twice, approve after reject, reject after approve: 409', async () => {
  const s = is(await create('alice', { template: 'strict' }), 201);
  is(await c.carol.post(sessPath(s.name, 'approve'), {}), 200);
  is(await c.carol.post(sessPath(s.name, 'approve'), {}), 409, 'same approver again');
  is(await c.grace.post(sessPath(s.name, 'approve'), {}), 409, 'second approver');
  is(await c.grace.post(sessPath(s.name, 'reject'), { reason: 'no' }), 409, 'reject after approve');
  const r = is(await create('alice', { template: 'strict' }), 201);
  const rej = is(await c.carol.post(sessPath(r.name, 'reject'), { reason: 'not today' }), 200);
  assert.equal(rej.status.state, 'Terminated');
  assert.equal(rej.status.approval.rejectedBy, 'carol');
  assert.equal(rej.status.approval.reason, 'not today');
  assert.ok(rej.status.approval.rejectedAt);
  assert.equal(rej.status.approval.approvedBy, null);
  is(await c.grace.post(sessPath(r.name, 'approve'), {}), 409, 'approve after reject');
  is(await c.carol.post(sessPath(r.name, 'reject'), { reason: 'again' }), 409, 'reject twice');
  const ev = is(await c.alice.get(sessPath(r.name, 'events')), 200).events.map((e) => e.type);
  assert.ok(ev.includes('rejected'), ev.join(','));
});

test('2205 people who are not approvers cannot decide; they get 403 when they can see the session', async () => {
  const s = is(await create('alice', { template: 'strict', invitedParticipants: ['bob'] }), 201);
  is(await c.bob.post(sessPath(s.name, 'approve'), {}), 403, 'invitee');
  is(await c.frank.post(sessPath(s.name, 'approve'), {}), 404, 'outsider: invisible');
  is(await c.erin.post(sessPath(s.name, 'reject'), {}), 404, 'outsider: invisible');
});

test('2206 approver-less template auto-approves: no approval needed, nobody can approve', async () => {
  const s = is(await create('alice', { template: 'open' }), 201);
  assert.equal(s.status.approval.required, false);
  assert.equal(s.status.state, 'Pending');
  assert.equal(s.status.message, 'waiting for agent');
  const r = await c.carol.post(sessPath(s.name, 'approve'), {});
  assert.ok([403, 404, 409].includes(r.status), `approve on an auto-approved session must fail, got ${r.status}`);
  const d = await c.dave.post(sessPath(s.name, 'approve'), {});
  assert.ok([403, 409].includes(d.status), `even an admin cannot approve it, got ${d.status}`);
  const ev = is(await c.alice.get(sessPath(s.name, 'events')), 200).events.map((e) => e.type);
  assert.ok(!ev.includes('approval_required'), ev.join(','));
});

test('2207 autoApproveFor.groups: an sre-lead\'s own ci-debug request is auto-approved', async () => {
  const s = is(await create('asmith', { template: 'ci-debug', reason: REASON }), 201);
  assert.equal(s.status.approval.required, false);
  assert.notEqual(s.status.state, 'PendingApproval');
});

test('2208 the requester may withdraw a PendingApproval request; approvers and admins may terminate it', async () => {
  const s = is(await create('alice', { template: 'strict' }), 201);
  const w = is(await c.alice.post(sessPath(s.name, 'terminate'), {}), 200);
  assert.equal(w.status.state, 'Terminated');
  is(await c.carol.post(sessPath(s.name, 'approve'), {}), 409, 'approve a withdrawn request');
  const s2 = is(await create('alice', { template: 'strict', invitedParticipants: ['bob'] }), 201);
  is(await c.bob.post(sessPath(s2.name, 'terminate'), {}), 403, 'an invitee may not');
  is(await c.carol.post(sessPath(s2.name, 'terminate'), {}), 200, 'an approver may');
  const s3 = is(await create('alice', { template: 'strict' }), 201);
  is(await c.dave.post(sessPath(s3.name, 'terminate'), {}), 200, 'an admin may');
});

test('2209 approvers see requests waiting for them in the list', async () => {
  const s = is(await create('bob', { template: 'strict' }), 201);
  const l = is(await c.grace.get('/api/v1/debug-sessions?state=PendingApproval'), 200);
  assert.ok(l.sessions.some((x) => x.name === s.name));
  assert.ok(l.sessions.every((x) => x.status.state === 'PendingApproval'));
});
