// 2100: request validation on POST /api/v1/debug-sessions and the action endpoints:
// 400 naming the field, 413 over 64 KiB, unknown template/agent 400, not allowed 403,
// and the order of checks (401 → 400 → 404 → 403 → 409).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { agentOnline, is, namesField, REASON, registerAgent, sessPath, setup, sshKey } from './lib.mjs';

let env;
let alice; let carol; let frank; let erin;
let host;
const create = (c, body, o) => c.post('/api/v1/debug-sessions', body, o);
const base = () => ({ template: 'ci-debug', agent: 'lab/val', reason: REASON });

before(async () => {
  env = await setup();
  [alice, carol, frank, erin] = await Promise.all(['alice', 'carol', 'frank', 'erin'].map((u) => env.client(u)));
  host = await registerAgent(erin, 'lab/val');
  await registerAgent(erin, 'lab/allowed-1');
  await registerAgent(erin, 'other/box');
});
after(async () => { await env?.close(); });

test('2101 a valid request is 201 (control for the cases below)', async () => {
  is(await create(alice, base()), 201);
});

test('2102 unknown template or agent: 400 naming it', async () => {
  const r = await create(alice, { ...base(), template: 'no-such-template' });
  is(r, 400);
  namesField(r, 'template');
  const r2 = await create(alice, { ...base(), agent: 'lab/no-such-agent' });
  is(r2, 400);
  namesField(r2, 'agent');
});

test('2102b an unknown template or agent: "did you mean" in details, only names the caller may use', async () => {
  const r = await create(alice, { ...base(), template: 'ci-debg' });
  is(r, 400);
  assert.deepEqual(r.json.details, { field: 'template', value: 'ci-debg', suggestions: ['ci-debug'] });
  const r2 = await create(alice, { ...base(), template: 'sre-onyl' }); // alice may not use sre-only
  is(r2, 400);
  assert.deepEqual(r2.json.details.suggestions, [], `a template alice may not use was suggested: ${JSON.stringify(r2.json)}`);
  const r3 = await create(alice, { ...base(), agent: 'lab/va' });
  is(r3, 400);
  assert.equal(r3.json.details.field, 'agent');
  assert.equal(r3.json.details.suggestions[0], 'lab/val', JSON.stringify(r3.json));
  const r4 = await create(alice, { ...base(), template: 'lab-only', agent: 'other/bx' }); // lab-only allows lab/allowed-* only
  is(r4, 400);
  assert.deepEqual(r4.json.details.suggestions, [], `an agent the template does not allow was suggested: ${JSON.stringify(r4.json)}`);
});

test('2103 a template the caller may not use, or an agent the template does not allow: 403', async () => {
  is(await create(alice, { ...base(), template: 'sre-only' }), 403, 'template not allowed');
  is(await create(alice, { ...base(), template: 'lab-only', agent: 'lab/val' }), 403, 'agent outside allowed.agents');
  is(await create(alice, { ...base(), template: 'lab-only', agent: 'lab/allowed-1' }), 201, 'agent inside allowed.agents');
  is(await create(alice, { ...base(), agent: 'other/box' }), 403, 'agent matched by no glob of ci-debug');
  is(await create(frank, { template: 'open', agent: 'lab/val' }), 403, 'frank is in no allowed group');
});

test('2104 requestedDuration: unparsable, zero, negative, above maxDuration, below minDuration: 400', async () => {
  for (const d of ['soon', '1x', '0s', '-1h', '30m1h', '1.5h', '', '5h', '4h1s', '366d']) {
    const r = await create(alice, { ...base(), requestedDuration: d });
    is(r, 400, `requestedDuration ${JSON.stringify(d)}`);
    namesField(r, 'requestedDuration');
  }
  is(await create(alice, { ...base(), requestedDuration: '4h' }), 201, 'exactly maxDuration');
  is(await create(alice, { ...base(), requestedDuration: '90s' }), 201, 'no minimum unless the template sets one');
  is(await create(alice, { template: 'bounded', agent: 'lab/val', requestedDuration: '5m' }), 400, 'below minDuration 10m');
  is(await create(alice, { template: 'bounded', agent: 'lab/val', requestedDuration: '10m' }), 201, 'exactly minDuration');
});

test('2105 durations are echoed in canonical form; the default is the template\'s', async () => {
  const s = is(await create(alice, { ...base(), requestedDuration: '90m' }), 201);
  assert.equal(s.spec.requestedDuration, '1h30m');
  const d = is(await create(alice, base()), 201);
  assert.equal(d.spec.requestedDuration, '1h');
  const b = is(await create(alice, { template: 'bounded', agent: 'lab/val' }), 201);
  assert.equal(b.spec.requestedDuration, '30m');
});

test('2106 reason: mandatory, minLength, maxLength per the template', async () => {
  const { reason, ...noReason } = base();
  let r = await create(alice, noReason);
  is(r, 400, 'missing');
  namesField(r, 'reason');
  r = await create(alice, { ...base(), reason: 'short' });
  is(r, 400, 'under minLength 10');
  namesField(r, 'reason');
  r = await create(alice, { ...base(), reason: 'x'.repeat(201) });
  is(r, 400, 'over maxLength 200');
  namesField(r, 'reason');
  is(await create(alice, { ...base(), reason: 'x'.repeat(200) }), 201, 'exactly maxLength');
  is(await create(alice, { template: 'open', agent: 'lab/val' }), 201, 'optional where not mandatory');
});

test('2107 strict JSON: unknown field, wrong types, null, trailing data, non-JSON, non-object', async () => {
  let r = await create(alice, { ...base(), colour: 'red' });
  is(r, 400, 'unknown field');
  namesField(r, 'colour');
  r = await create(alice, { ...base(), template: 5 });
  is(r, 400, 'template: number');
  namesField(r, 'template');
  r = await create(alice, { ...base(), invitedParticipants: 'bob' });
  is(r, 400, 'invitedParticipants: string');
  namesField(r, 'invitedParticipants');
  r = await create(alice, { ...base(), invitedParticipants: ['bob', 7] });
  is(r, 400, 'invitedParticipants: a number inside');
  namesField(r, 'invitedParticipants');
  r = await create(alice, { ...base(), requestedDuration: 3600 });
  is(r, 400, 'requestedDuration: number');
  namesField(r, 'requestedDuration');
  r = await create(alice, { ...base(), agent: null });
  is(r, 400, 'agent: null');
  namesField(r, 'agent');
  const { agent, ...noAgent } = base();
  r = await create(alice, noAgent);
  is(r, 400, 'agent missing');
  namesField(r, 'agent');
  is(await create(alice, undefined, { raw: JSON.stringify(base()) + ' {}' }), 400, 'trailing data');
  is(await create(alice, undefined, { raw: JSON.stringify(base()) + 'x' }), 400, 'trailing garbage');
  is(await create(alice, undefined, { raw: 'hello' }), 400, 'not JSON');
  is(await create(alice, undefined, { raw: '{"template": "ci-debug",' }), 400, 'truncated JSON');
  is(await create(alice, undefined, { raw: '[]' }), 400, 'an array');
  is(await create(alice, undefined, { raw: '' }), 400, 'empty body');
});

test('2108 body over 64 KiB: 413; just under: accepted by the parser', async () => {
  const big = JSON.stringify({ ...base(), reason: 'x'.repeat(70 * 1024) });
  const r = await create(alice, undefined, { raw: big });
  is(r, 413);
  // 60 KiB body: parsed (then refused by the reason policy as too long, 400, not 413)
  const ok = JSON.stringify({ ...base(), reason: 'x'.repeat(60 * 1024) });
  is(await create(alice, undefined, { raw: ok }), 400);
  is(await carol.post(sessPath('ds-aaaaaaaaaa', 'approve'), undefined, { raw: JSON.stringify({ reason: 'y'.repeat(65 * 1024) }) }), 413, '413 before 404');
});

test('2109 check order: 401 before 400, 400 before 404, 404 before 403, 403 before 409', async () => {
  is(await env.anon.post('/api/v1/debug-sessions', undefined, { raw: 'not json' }), 401, 'no token + bad body');
  is(await carol.post(sessPath('ds-aaaaaaaaaa', 'approve'), { bogus: 1 }), 400, 'bad body on an unknown session');
  is(await carol.post(sessPath('ds-aaaaaaaaaa', 'approve'), {}), 404, 'unknown session');
  const s = is(await create(alice, base()), 201);
  is(await frank.post(sessPath(s.name, 'approve'), {}), 404, 'invisible session: 404, not 403');
  is(await alice.post(sessPath(s.name, 'approve'), {}), 403, 'own request');
  is(await alice.post(sessPath(s.name, 'renew'), { extendBy: 'soon' }), 400, 'bad extendBy on a PendingApproval session: 400 first');
  is(await alice.post(sessPath(s.name, 'renew'), { extendBy: '10m' }), 409, 'renew while PendingApproval: 409');
  is(await carol.post(sessPath(s.name, 'renew'), { extendBy: '10m' }), 403, 'approver (not a participant) renewing: 403 before 409');
});

test('2110 action bodies are strict too', async () => {
  const s = is(await create(alice, base()), 201);
  let r = await carol.post(sessPath(s.name, 'approve'), { reason: 'ok', extra: true });
  is(r, 400);
  namesField(r, 'extra');
  r = await carol.post(sessPath(s.name, 'approve'), { reason: 42 });
  is(r, 400);
  namesField(r, 'reason');
  r = await alice.post(sessPath(s.name, 'invite'), { users: 'bob', role: 'participant' });
  is(r, 400);
  namesField(r, 'users');
  r = await alice.post(sessPath(s.name, 'invite'), { users: ['bob'], role: 'owner' });
  is(r, 400, 'invite role owner');
  namesField(r, 'role');
  r = await alice.post(sessPath(s.name, 'join'), { sshPublicKey: 'not a key' });
  is(r, 400, 'join with a malformed key');
  namesField(r, 'sshPublicKey');
  r = await alice.post(sessPath(s.name, 'join'), {});
  is(r, 400, 'join without a key');
  namesField(r, 'sshPublicKey');
  r = await alice.post(sessPath(s.name, 'join'), { sshPublicKey: sshKey().pub, role: 'superuser' });
  is(r, 400, 'join with an unknown role');
  namesField(r, 'role');
  r = await alice.post(sessPath(s.name, 'leave'), { x: 1 });
  is(r, 400, 'leave with a body field');
  r = await alice.post(sessPath(s.name, 'renew'), {});
  is(r, 400, 'renew without extendBy');
  namesField(r, 'extendBy');
  r = await carol.post(sessPath(s.name, 'approve'));
  is(r, 200, 'approve with an empty body');
});

test('2111 rejection reason is mandatory where the template says so', async () => {
  const s = is(await create(alice, base()), 201);
  const r = await carol.post(sessPath(s.name, 'reject'), {});
  is(r, 400);
  namesField(r, 'reason');
  const j = is(await carol.post(sessPath(s.name, 'reject'), { reason: 'not now' }), 200);
  assert.equal(j.status.state, 'Terminated');
});

test('2115 limits: arrays over 100 entries and strings over 4 KiB are 400 naming the field', async () => {
  const many = Array.from({ length: 101 }, (_, i) => `user${i}`);
  let r = await create(alice, { template: 'open', agent: 'lab/val', invitedParticipants: many });
  is(r, 400, '101 invitees');
  namesField(r, 'invitedParticipants');
  r = await create(alice, { template: 'open', agent: 'x'.repeat(5000) });
  is(r, 400, 'a 5000-character agent name');
  namesField(r, 'agent');
});

test('2116 check order: no token and a body over 64 KiB is 401 (authenticate before reading the body)', async () => {
  const big = JSON.stringify({ ...base(), reason: 'x'.repeat(70 * 1024) });
  is(await env.anon.post('/api/v1/debug-sessions', undefined, { raw: big }), 401);
});

test('2112 list query parameters are validated', async () => {
  for (const q of ['limit=0', 'limit=501', 'limit=abc', 'limit=-1', 'state=Bogus', 'state=Active,', 'mine=maybe', 'cursor=not-a-cursor', 'cursor=%25%25garbage']) {
    is(await alice.get(`/api/v1/debug-sessions?${q}`), 400, q);
  }
  is(await alice.get('/api/v1/debug-sessions?limit=500'), 200);
});

test('2113 session names in paths: malformed names are 404', async () => {
  is(await alice.get(sessPath('ds-UPPERCASE1')), 404);
  is(await alice.get('/api/v1/debug-sessions/..%2F..%2Fetc'), 404);
  // keep the agent alive for the suite (nothing else)
  assert.ok(host.credential);
});

test('2114 an auto-approved session with its agent online is created Active', async () => {
  const ctl = await agentOnline(env.srv, 'lab/val', host.credential);
  try {
    const s = is(await create(alice, { template: 'open', agent: 'lab/val' }), 201);
    assert.equal(s.status.state, 'Active');
    assert.equal(s.status.approval.required, false);
    assert.ok(s.status.startsAt && s.status.expiresAt);
    await ctl.waitSession(s.name, (x) => x.state === 'Active');
  } finally { await ctl.close(); }
});
