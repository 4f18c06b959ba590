// 2360: the owner manages people live. POST …/participants/{user} {role} changes a participant's
// (or an invitee's) role, DELETE removes them; only the owner or an admin may, the owner's own
// row cannot be touched, and the agent's desired state follows at once.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { agentOnline, is, registerAgent, sessPath, setup, sshKey } from './lib.mjs';

let env;
let ctl;
const c = {};
const AG = 'lab/people';

before(async () => {
  env = await setup();
  for (const u of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank']) c[u] = await env.client(u);
  const reg = await registerAgent(c.erin, AG);
  ctl = await agentOnline(env.srv, AG, reg.credential);
});
after(async () => {
  await ctl?.close();
  await env?.close();
});

const partPath = (name, user) => sessPath(name, `participants/${encodeURIComponent(user)}`);
const setRole = (cl, name, user, role) => cl.post(partPath(name, user), { role });
const remove = (cl, name, user) => cl.req('DELETE', partPath(name, user));
const part = (s, user) => s.status.participants.find((p) => p.user === user && p.leftAt === null);
const events = async (name, type) => is(await c.alice.get(sessPath(name, 'events')), 200).events.filter((e) => e.type === type);

/** An Active 'open' session of alice with bob joined as a viewer. */
async function withViewerBob() {
  const s = is(await c.alice.post('/api/v1/debug-sessions', { template: 'open', agent: AG }), 201);
  is(await c.alice.post(sessPath(s.name, 'invite'), { users: ['bob'], role: 'viewer' }), 200);
  const j = is(await c.bob.post(sessPath(s.name, 'join'), { sshPublicKey: sshKey('bob').pub }), 200);
  assert.equal(j.role, 'viewer');
  return s;
}

test('2361 the owner promotes a viewer and demotes them again; events and the agent follow', async () => {
  const s = await withViewerBob();
  let from = ctl.messages.length;
  const up = is(await setRole(c.alice, s.name, 'bob', 'participant'), 200);
  assert.equal(part(up, 'bob').role, 'participant');
  assert.equal(part(up, 'bob').joinedAt, part(is(await c.bob.get(sessPath(s.name)), 200), 'bob').joinedAt);
  let m = await ctl.waitSession(s.name, (x) => x.participants.some((p) => p.user === 'bob' && p.role === 'participant'), { from });
  assert.equal(m.participants.find((p) => p.user === 'bob').keys.length, 1, 'his key is kept');
  from = ctl.messages.length;
  const down = is(await setRole(c.alice, s.name, 'BOB@example.com', 'viewer'), 200);
  assert.equal(part(down, 'bob').role, 'viewer', 'the email names him too');
  m = await ctl.waitSession(s.name, (x) => x.participants.some((p) => p.user === 'bob' && p.role === 'viewer'), { from });
  const ev = await events(s.name, 'role_changed');
  assert.deepEqual(ev.map((e) => [e.actor, e.data]), [
    ['alice', { user: 'bob', from: 'viewer', to: 'participant' }],
    ['alice', { user: 'bob', from: 'participant', to: 'viewer' }],
  ]);
  is(await setRole(c.alice, s.name, 'bob', 'viewer'), 200, 'the same role again is fine');
  assert.equal((await events(s.name, 'role_changed')).length, 2, '... and records nothing');
});

test('2362 only the owner or an admin: no self-promotion, no outsider, not the owner', async () => {
  const s = await withViewerBob();
  const r = is(await setRole(c.bob, s.name, 'bob', 'participant'), 403, 'a viewer promoting himself');
  assert.match(r.error, /owner or an admin/);
  is(await remove(c.bob, s.name, 'alice'), 403, 'a viewer removing the owner');
  is(await setRole(c.carol, s.name, 'bob', 'participant'), 404, 'carol cannot even see the session');
  is(await setRole(c.frank, s.name, 'bob', 'participant'), 404, 'frank cannot even see the session');
  is(await setRole(c.alice, s.name, 'alice', 'viewer'), 409, 'the owner\'s own row');
  is(await remove(c.dave, s.name, 'alice'), 409, 'not even an admin removes the owner');
  is(await setRole(c.alice, s.name, 'bob', 'owner'), 400, 'nobody is made owner');
  is(await c.alice.post(partPath(s.name, 'bob'), { role: 'participant', extra: 1 }), 400, 'strict body');
  is(await c.alice.post(partPath(s.name, 'bob'), {}), 400, 'role is required');
  is(await setRole(c.alice, s.name, 'nobody', 'viewer'), 404, 'neither participant nor invited');
  const d = is(await setRole(c.dave, s.name, 'bob', 'participant'), 200, 'an admin may');
  assert.equal(part(d, 'bob').role, 'participant');
  const ro = is(await c.alice.post('/api/v1/debug-sessions', { template: 'readonly', agent: AG, invitedParticipants: ['bob'] }), 201);
  const no = is(await setRole(c.alice, ro.name, 'bob', 'participant'), 403);
  assert.match(no.error, /readOnlyParticipants/);
});

test('2363 an invitee\'s role changes before they join; they join with it', async () => {
  const s = is(await c.alice.post('/api/v1/debug-sessions', { template: 'open', agent: AG, invitedParticipants: ['bob'] }), 201);
  is(await setRole(c.alice, s.name, 'bob', 'viewer'), 200);
  const j = is(await c.bob.post(sessPath(s.name, 'join'), { sshPublicKey: sshKey('bob').pub }), 200);
  assert.equal(j.role, 'viewer');
  is(await c.bob.post(sessPath(s.name, 'join'), { sshPublicKey: sshKey('bob').pub, role: 'participant' }), 403, 'and cannot raise it');
});

test('2364 the owner removes a participant: left, uninvited, ticket dead, the agent forgets him', async () => {
  const s = await withViewerBob();
  const from = ctl.messages.length;
  const r = is(await remove(c.alice, s.name, 'bob'), 200);
  assert.equal(part(r, 'bob'), undefined, 'no longer an active participant');
  assert.ok(r.status.participants.find((p) => p.user === 'bob').leftAt, 'leftAt is set');
  assert.deepEqual(r.spec.invitedParticipants, [], 'his invitation is gone');
  await ctl.waitSession(s.name, (x) => !x.participants.some((p) => p.user === 'bob'), { from });
  const ev = await events(s.name, 'removed');
  assert.deepEqual(ev.map((e) => [e.actor, e.data]), [['alice', { user: 'bob', role: 'viewer' }]]);
  // a past participant still sees the session (visibility keeps everyone who joined), but may not join
  const j = is(await c.bob.post(sessPath(s.name, 'join'), { sshPublicKey: sshKey('bob').pub }), 403, 'he cannot join again');
  assert.match(j.error, /not invited|may not join/);
  is(await remove(c.alice, s.name, 'bob'), 404, 'removing him twice');
  is(await c.alice.post(sessPath(s.name, 'terminate'), {}), 200);
  is(await remove(c.alice, s.name, 'alice'), 409, 'the session has ended');
});
