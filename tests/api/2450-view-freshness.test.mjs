// 2450: the session view cache never serves a stale reply. Each test first reads the session
// (GET and the list) so its rendered view is cached, changes it by one route, and then expects
// GET /debug-sessions/{name} and the list to show the change at once (no sleeping), with the
// can* flags computed for each caller and visibility checked per caller on a view cached by
// someone else. 2462 races many writes against readers that keep reloading views (a view read
// before a commit must never be cached after it). The time-driven changes (expiry, approval timeout, agent gone, deletion after
// retention) run against a second airlockd with short limits; there the test waits for a sign
// that does not come from the cache (the agent's control message, or the events endpoint).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  agentOnline, agentPath, client, is, REASON, registerAgent, secs, sessPath, setup, sleep, sshKey, startAirlock,
} from './lib.mjs';

let env;
let ctl;
let s2; // the second airlockd, with short limits (2463-2466)
const c = {};
const AG = 'lab/fresh/main';
const key = () => sshKey().pub;

before(async () => {
  env = await setup();
  for (const u of ['alice', 'asmith', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace']) c[u] = await env.client(u);
  const reg = await registerAgent(c.erin, AG);
  ctl = await agentOnline(env.srv, AG, reg.credential);
});
after(async () => {
  await ctl?.close();
  try {
    await s2?.stop();
  } finally {
    await env?.close();
  }
});

const list = async (cl, q = '') => is(await cl.get(`/api/v1/debug-sessions?limit=500${q ? '&' + q : ''}`), 200, `list ?${q}`);
const listed = async (cl, name, q = '') => (await list(cl, q)).sessions.find((x) => x.name === name);

/**
 * The session as cl sees it, through the list (first) and GET; both must agree exactly.
 * Returns the GET reply.
 */
async function view(cl, name, what = '') {
  const entry = await listed(cl, name);
  const g = is(await cl.get(sessPath(name)), 200, `GET ${name} ${what}`);
  assert.ok(entry, `${what}: ${name} is in the caller's list`);
  assert.deepEqual(entry, g, `${what}: the list entry and GET of ${name} differ`);
  return g;
}

/** GET and list for each caller, so the view is cached before the change. */
async function prime(name, whos) {
  const out = {};
  for (const w of whos) out[w] = await view(c[w], name, `${w} before`);
  return out;
}

const part = (s, user) => s.status.participants.find((p) => p.user === user);
const flags = (s) => ({ canApprove: s.canApprove, canReject: s.canReject, canJoin: s.canJoin, canRenew: s.canRenew, canTerminate: s.canTerminate });
const lower = (l) => l.map((u) => u.toLowerCase());

async function create(who, body, agent = AG) {
  return is(await c[who].post('/api/v1/debug-sessions', { agent, ...body }), 201, `${who} creates`);
}
/** A session on the online agent, approved by carol if needed, once the agent has it Active. */
async function active(who, body) {
  const s = await create(who, body);
  if (s.status.state === 'PendingApproval') is(await c.carol.post(sessPath(s.name, 'approve'), {}), 200, 'carol approves');
  await ctl.waitSession(s.name, (x) => x.state === 'Active');
  const g = is(await c[who].get(sessPath(s.name)), 200);
  assert.equal(g.status.state, 'Active');
  return g;
}

test('2451 two callers of one cached view get their own can* flags (GET and list)', async () => {
  const s = await create('alice', { template: 'ci-debug', reason: REASON, invitedParticipants: ['bob'] });
  assert.equal(s.status.state, 'PendingApproval');
  // the owner reads first and caches the view; the approvers, an invitee, an admin and alice's
  // e-mail twin (an approver, but the requester by e-mail) then read the same view
  const a1 = await view(c.alice, s.name, 'alice first');
  assert.deepEqual(flags(a1), { canApprove: false, canReject: false, canJoin: false, canRenew: false, canTerminate: true });
  const cr = await view(c.carol, s.name, 'carol');
  assert.deepEqual(flags(cr), { canApprove: true, canReject: true, canJoin: false, canRenew: false, canTerminate: true });
  const gr = await view(c.grace, s.name, 'grace');
  assert.equal(gr.canApprove, true);
  assert.equal(gr.canReject, true);
  const b = await view(c.bob, s.name, 'bob');
  assert.deepEqual(flags(b), { canApprove: false, canReject: false, canJoin: false, canRenew: false, canTerminate: false });
  const d = await view(c.dave, s.name, 'dave');
  assert.equal(d.canTerminate, true, 'an admin may terminate');
  const sm = await view(c.asmith, s.name, 'asmith');
  assert.equal(sm.canApprove, false, 'nobody approves their own request (same e-mail), even from a cached view');
  assert.equal(sm.canReject, false);
  // and back: the approver's read did not leave its flags in the view
  const a2 = await view(c.alice, s.name, 'alice again');
  assert.deepEqual(flags(a2), flags(a1));
  const { canApprove, canReject, canJoin, canRenew, canTerminate, ...restA } = a2;
  const { canApprove: x1, canReject: x2, canJoin: x3, canRenew: x4, canTerminate: x5, ...restC } = cr;
  assert.deepEqual(restA, restC, 'apart from the flags, everyone gets the same session');
});

test('2452 a caller who may not see the session gets 404 though the view is cached by another', async () => {
  const s = await create('alice', { template: 'open' });
  await view(c.alice, s.name, 'alice caches it');
  for (const w of ['frank', 'bob', 'grace', 'erin']) {
    is(await c[w].get(sessPath(s.name)), 404, `${w} GET`);
    assert.equal(await listed(c[w], s.name), undefined, `${w}'s list`);
    is(await c[w].get(sessPath(s.name, 'events')), 404, `${w} events`);
  }
  is(await c.frank.post(sessPath(s.name, 'renew'), { extendBy: '5m' }), 404, 'frank renew');
  is(await c.frank.post(sessPath(s.name, 'terminate'), {}), 404, 'frank terminate');
  // the other way round: an outsider's GET (404) loads the view first, the owner then gets it
  const t = await create('alice', { template: 'open' });
  is(await c.frank.get(sessPath(t.name)), 404, 'frank first');
  const a = await view(c.alice, t.name, 'alice after frank');
  assert.equal(a.spec.requestedBy, 'alice');
  is(await c.frank.get(sessPath(t.name)), 404, 'frank again, now from the cache');
  // admins see everything
  assert.equal((await view(c.dave, t.name, 'admin')).name, t.name);
});

test('2453 approve: approval.approvedBy, state and the approvers\' flags change at once', async () => {
  const s = await create('alice', { template: 'ci-debug', reason: REASON });
  const p = await prime(s.name, ['alice', 'carol', 'grace']);
  assert.equal(p.alice.status.state, 'PendingApproval');
  assert.equal(p.alice.status.approval.approvedBy, null);
  assert.equal(p.carol.canApprove, true);
  assert.equal(p.grace.canApprove, true);
  const r = is(await c.carol.post(sessPath(s.name, 'approve'), { reason: 'looks fine' }), 200);
  assert.ok(['Pending', 'Active'].includes(r.status.state), r.status.state);
  const a = await view(c.alice, s.name, 'alice after approve');
  assert.equal(a.status.approval.approvedBy, 'carol');
  assert.equal(a.status.approval.approvedAt, r.status.approval.approvedAt);
  assert.ok(a.status.approval.approvedAt);
  assert.equal(a.status.approval.reason, 'looks fine');
  assert.equal(a.status.state, r.status.state);
  assert.notEqual(a.status.state, 'PendingApproval');
  const g = await view(c.grace, s.name, 'grace after approve');
  assert.equal(g.canApprove, false, 'decided: another approver can no longer approve');
  assert.equal(g.canReject, false);
  const cr = await view(c.carol, s.name, 'carol after approve');
  assert.equal(cr.canApprove, false);
  // the agent is online: once it is told Active, GET says Active too
  await ctl.waitSession(s.name, (x) => x.state === 'Active');
  const act = await view(c.alice, s.name, 'alice once Active');
  assert.equal(act.status.state, 'Active');
  assert.ok(act.status.startsAt && act.status.expiresAt);
  assert.equal(act.canJoin, true);
  assert.equal(act.canRenew, true);
  is(await c.grace.post(sessPath(s.name, 'approve'), {}), 409, 'a second decision');
});

test('2454 reject: Terminated, approval.rejectedBy, flags off for everyone at once', async () => {
  const s = await create('alice', { template: 'strict' });
  const p = await prime(s.name, ['alice', 'carol', 'grace']);
  assert.equal(p.alice.status.state, 'PendingApproval');
  assert.equal(p.alice.canTerminate, true);
  assert.ok(await listed(c.alice, s.name, 'state=PendingApproval'));
  const r = is(await c.carol.post(sessPath(s.name, 'reject'), { reason: 'not now' }), 200);
  assert.equal(r.status.state, 'Terminated');
  const a = await view(c.alice, s.name, 'alice after reject');
  assert.equal(a.status.state, 'Terminated');
  assert.equal(a.status.approval.rejectedBy, 'carol');
  assert.ok(a.status.approval.rejectedAt);
  assert.equal(a.status.approval.approvedBy, null);
  assert.equal(a.status.approval.reason, 'not now');
  assert.equal(a.canTerminate, false);
  const g = await view(c.grace, s.name, 'grace after reject');
  assert.deepEqual(flags(g), { canApprove: false, canReject: false, canJoin: false, canRenew: false, canTerminate: false });
  assert.equal(await listed(c.alice, s.name, 'state=PendingApproval'), undefined, 'gone from ?state=PendingApproval');
  assert.equal((await listed(c.alice, s.name, 'state=Terminated'))?.status.state, 'Terminated');
});

test('2455 join: the participant appears, the joiner may renew, a full session is no longer joinable', async () => {
  const s = await active('alice', { template: 'tiny', invitedParticipants: ['bob', 'erin'] }); // maxParticipants 2
  is(await c.alice.post(sessPath(s.name, 'join'), { sshPublicKey: key() }), 200, 'alice joins');
  const p = await prime(s.name, ['alice', 'bob', 'erin']);
  assert.equal(part(p.alice, 'bob'), undefined);
  assert.equal(p.bob.canJoin, true);
  assert.equal(p.bob.canRenew, false, 'an invitee who has not joined may not renew');
  assert.equal(p.erin.canJoin, true);
  const j = is(await c.bob.post(sessPath(s.name, 'join'), { sshPublicKey: key() }), 200, 'bob joins');
  assert.equal(j.role, 'participant');
  const a = await view(c.alice, s.name, 'alice after bob joined');
  const bp = part(a, 'bob');
  assert.ok(bp, `bob is a participant: ${JSON.stringify(a.status.participants)}`);
  assert.equal(bp.role, 'participant');
  assert.equal(bp.leftAt, null);
  assert.ok(bp.joinedAt);
  assert.equal(part(a, 'alice')?.role, 'owner');
  const b = await view(c.bob, s.name, 'bob after joining');
  assert.equal(b.canRenew, true, 'a joined participant may renew');
  const e = await view(c.erin, s.name, 'erin after bob joined');
  assert.equal(e.canJoin, false, 'maxParticipants 2 reached');
  is(await c.erin.post(sessPath(s.name, 'join'), { sshPublicKey: key() }), 409, 'erin cannot join: full');
});

test('2456 leave: leftAt is set, the leaver may no longer renew, the seat is free again', async () => {
  const s = await active('alice', { template: 'tiny', invitedParticipants: ['bob', 'erin'] });
  is(await c.alice.post(sessPath(s.name, 'join'), { sshPublicKey: key() }), 200);
  is(await c.bob.post(sessPath(s.name, 'join'), { sshPublicKey: key() }), 200);
  const p = await prime(s.name, ['alice', 'bob', 'erin']);
  assert.equal(part(p.alice, 'bob').leftAt, null);
  assert.equal(p.bob.canRenew, true);
  assert.equal(p.erin.canJoin, false);
  is(await c.bob.post(sessPath(s.name, 'leave')), 200, 'bob leaves');
  const a = await view(c.alice, s.name, 'alice after bob left');
  assert.ok(part(a, 'bob')?.leftAt, `bob's leftAt is set: ${JSON.stringify(a.status.participants)}`);
  assert.equal(part(a, 'alice').leftAt, null);
  const b = await view(c.bob, s.name, 'bob after leaving');
  assert.equal(b.canRenew, false, 'left: no renewing');
  assert.equal(b.canJoin, true, 'but may join again');
  const e = await view(c.erin, s.name, 'erin after bob left');
  assert.equal(e.canJoin, true, 'a seat is free');
  // and erin takes it: full again for bob
  is(await c.erin.post(sessPath(s.name, 'join'), { sshPublicKey: key() }), 200, 'erin joins');
  const b2 = await view(c.bob, s.name, 'bob after erin joined');
  assert.equal(b2.canJoin, false);
  assert.equal(part(await view(c.alice, s.name, 'alice after erin joined'), 'erin')?.leftAt, null);
});

test('2457 renew: renewalCount, expiresAt and, at maxRenewals, canRenew change at once', async () => {
  const s = await active('alice', { template: 'ci-debug', reason: REASON }); // maxRenewals 2
  const p = await prime(s.name, ['alice', 'carol']);
  assert.equal(p.alice.status.renewalCount, 0);
  assert.equal(p.alice.canRenew, true);
  const r1 = is(await c.alice.post(sessPath(s.name, 'renew'), { extendBy: '10m' }), 200);
  const a1 = await view(c.alice, s.name, 'after the first renewal');
  assert.equal(a1.status.renewalCount, 1);
  assert.equal(a1.status.expiresAt, r1.status.expiresAt);
  assert.equal(secs(a1.status.expiresAt, p.alice.status.expiresAt), 600);
  assert.equal(a1.canRenew, true);
  assert.equal((await view(c.carol, s.name, 'carol after the first renewal')).status.renewalCount, 1);
  const r2 = is(await c.alice.post(sessPath(s.name, 'renew'), { extendBy: '5m' }), 200);
  const a2 = await view(c.alice, s.name, 'after the second renewal');
  assert.equal(a2.status.renewalCount, 2);
  assert.equal(a2.status.expiresAt, r2.status.expiresAt);
  assert.equal(secs(a2.status.expiresAt, p.alice.status.expiresAt), 900);
  assert.equal(a2.canRenew, false, 'maxRenewals reached');
  assert.equal(a2.status.startsAt, p.alice.status.startsAt);
});

test('2458 invite: spec.invitedParticipants grows and the invitee sees the session at once', async () => {
  const s = await active('alice', { template: 'open' });
  const p = await prime(s.name, ['alice']);
  assert.deepEqual(p.alice.spec.invitedParticipants, []);
  // the outsiders' 404s read the same cached view
  is(await c.frank.get(sessPath(s.name)), 404, 'frank before');
  is(await c.grace.get(sessPath(s.name)), 404, 'grace before');
  assert.equal(await listed(c.frank, s.name), undefined);
  assert.equal(await listed(c.frank, s.name, 'mine=true'), undefined);
  is(await c.alice.post(sessPath(s.name, 'invite'), { users: ['frank'], role: 'participant' }), 200, 'invite frank');
  const a = await view(c.alice, s.name, 'alice after inviting frank');
  assert.deepEqual(lower(a.spec.invitedParticipants), ['frank']);
  const f = await view(c.frank, s.name, 'frank after the invitation');
  assert.equal(f.canJoin, true);
  assert.ok(await listed(c.frank, s.name, 'mine=true'), 'in frank\'s ?mine=true');
  is(await c.grace.get(sessPath(s.name)), 404, 'grace still not invited');
  is(await c.alice.post(sessPath(s.name, 'invite'), { users: ['GRACE@example.com'], role: 'viewer' }), 200, 'invite grace');
  const a2 = await view(c.alice, s.name, 'alice after inviting grace');
  assert.deepEqual(lower(a2.spec.invitedParticipants).sort(), ['frank', 'grace@example.com']);
  const g = await view(c.grace, s.name, 'grace after the invitation');
  assert.equal(g.canJoin, true);
  assert.equal(is(await c.grace.post(sessPath(s.name, 'join'), { sshPublicKey: key() }), 200).role, 'viewer');
  assert.equal(part(await view(c.frank, s.name, 'frank after grace joined'), 'grace')?.role, 'viewer');
});

test('2459 terminate: Active → Terminated, and a withdrawn request, seen at once by everyone', async () => {
  const s = await active('alice', { template: 'ci-debug', reason: REASON, invitedParticipants: ['bob'] });
  is(await c.bob.post(sessPath(s.name, 'join'), { sshPublicKey: key() }), 200);
  const p = await prime(s.name, ['alice', 'bob', 'carol']);
  assert.equal(p.bob.canRenew, true);
  assert.equal(p.carol.canTerminate, true);
  assert.ok(await listed(c.alice, s.name, 'state=Active'));
  const from = ctl.messages.length;
  const r = is(await c.alice.post(sessPath(s.name, 'terminate'), { reason: 'done' }), 200);
  assert.equal(r.status.state, 'Terminated');
  const a = await view(c.alice, s.name, 'alice after terminate');
  assert.equal(a.status.state, 'Terminated');
  assert.equal(a.canTerminate, false);
  assert.equal(a.canRenew, false);
  const b = await view(c.bob, s.name, 'bob after terminate');
  assert.deepEqual(flags(b), { canApprove: false, canReject: false, canJoin: false, canRenew: false, canTerminate: false });
  assert.equal((await view(c.carol, s.name, 'carol after terminate')).canTerminate, false);
  assert.equal(await listed(c.alice, s.name, 'state=Active'), undefined, 'gone from ?state=Active');
  assert.equal((await listed(c.bob, s.name, 'state=Terminated'))?.status.state, 'Terminated');
  await ctl.waitSession(s.name, (x) => x.state === 'Terminated', { from });
  // withdrawing a pending request
  const w = await create('alice', { template: 'ci-debug', reason: REASON });
  const pw = await prime(w.name, ['alice', 'carol']);
  assert.equal(pw.carol.canApprove, true);
  is(await c.alice.post(sessPath(w.name, 'terminate'), {}), 200, 'withdraw');
  const aw = await view(c.alice, w.name, 'alice after withdrawing');
  assert.equal(aw.status.state, 'Terminated');
  const cw = await view(c.carol, w.name, 'carol after the withdrawal');
  assert.equal(cw.canApprove, false);
  assert.equal(cw.canReject, false);
  is(await c.carol.post(sessPath(w.name, 'approve'), {}), 409);
});

test('2460 the agent comes online and goes offline (control WebSocket): status.agent.online flips both ways', async () => {
  const AGF = 'lab/fresh/flip';
  const reg = await registerAgent(c.erin, AGF);
  const s = await create('alice', { template: 'open' }, AGF);
  const p = await prime(s.name, ['alice']);
  assert.equal(p.alice.status.state, 'Pending');
  assert.equal(p.alice.status.message, 'waiting for agent');
  assert.equal(p.alice.status.agent.online, false);
  let ag;
  try {
    for (let round = 1; round <= 2; round++) {
      await view(c.alice, s.name, `round ${round}: cache while offline`);
      ag = await agentOnline(env.srv, AGF, reg.credential, { hostKeys: [reg.key.pub] });
      // the server marks the agent online (and activates) before it sends the desired state
      await ag.waitSession(s.name, (x) => x.state === 'Active');
      const on = await view(c.alice, s.name, `round ${round}: after the agent connected`);
      assert.equal(on.status.agent.online, true, `round ${round}: online`);
      assert.equal(on.status.state, 'Active');
      assert.ok(on.status.startsAt);
      assert.equal(on.canJoin, true);
      // offline: wait until the agent's own record (not served from the view cache) says so
      await ag.close();
      ag = null;
      const until = Date.now() + 5000;
      for (;;) {
        const a = is(await c.alice.get(agentPath(AGF)), 200);
        if (!a.online) break;
        if (Date.now() > until) assert.fail('the agent record never went offline');
        await sleep(50); // the poll interval of this wait for the event
      }
      const off = await view(c.alice, s.name, `round ${round}: after the agent disconnected`);
      assert.equal(off.status.agent.online, false, `round ${round}: GET still says online after GET /agents says offline`);
      assert.equal(off.status.state, 'Active', 'within the grace period');
    }
  } finally {
    await ag?.close();
  }
});

test('2461 agent re-registration with new host keys: status.agent.hostKeyFingerprints changes at once', async () => {
  const AGK = 'lab/fresh/rekey';
  const k1 = sshKey('host-1');
  const k2 = sshKey('host-2');
  const k3 = sshKey('host-3');
  await registerAgent(c.erin, AGK, { key: k1 });
  const s = await create('alice', { template: 'open' }, AGK);
  const p = await prime(s.name, ['alice', 'dave']);
  assert.deepEqual(p.alice.status.agent.hostKeyFingerprints, [k1.fp]);
  const r2 = await registerAgent(c.erin, AGK, { key: k2, body: { hostKeys: [k2.pub, k3.pub] } });
  const a = await view(c.alice, s.name, 'alice after re-registration');
  assert.deepEqual(a.status.agent.hostKeyFingerprints, [k2.fp, k3.fp]);
  assert.deepEqual((await view(c.dave, s.name, 'dave after re-registration')).status.agent.hostKeyFingerprints, [k2.fp, k3.fp]);
  // with the new credential the agent comes online; a join pins the new keys
  const ag = await agentOnline(env.srv, AGK, r2.credential, { hostKeys: [k2.pub, k3.pub] });
  try {
    await ag.waitSession(s.name, (x) => x.state === 'Active');
    const on = await view(c.alice, s.name, 'alice once the re-registered agent is online');
    assert.equal(on.status.agent.online, true);
    assert.deepEqual(on.status.agent.hostKeyFingerprints, [k2.fp, k3.fp]);
    const j = is(await c.alice.post(sessPath(s.name, 'join'), { sshPublicKey: key() }), 200);
    assert.deepEqual(j.attach.hostKeyFingerprints, [k2.fp, k3.fp]);
    assert.equal(part(await view(c.alice, s.name, 'alice after joining'), 'alice')?.role, 'owner');
    // re-registering an online agent is refused and changes nothing
    is(await c.erin.post('/api/v1/agents', { name: AGK, hostKeys: [k1.pub], version: '0.0.0-test' }), 409);
    assert.deepEqual((await view(c.alice, s.name, 'after the refused re-registration')).status.agent.hostKeyFingerprints, [k2.fp, k3.fp]);
  } finally {
    await ag.close();
  }
});

test('2462 concurrent joins and leaves while others keep listing: afterwards every view is fresh', async () => {
  // a view read before a commit must never be cached after it. Many writes land while readers
  // keep (re)loading views: the list loads the views it misses under the lock and renders and
  // caches them after; newer filler sessions put ours last in the admin's list, where that
  // window is widest.
  const mine = [];
  for (let i = 0; i < 12; i++) mine.push((await active('alice', { template: 'open', invitedParticipants: ['bob'] })).name);
  await registerAgent(c.erin, 'lab/fresh/filler');
  for (let i = 0; i < 150; i++) await create('alice', { template: 'open' }, 'lab/fresh/filler');
  let stop = false;
  const reader = async (who) => {
    while (!stop) await list(c[who]);
  };
  const readers = [reader('dave'), reader('dave'), reader('alice'), reader('dave')];
  try {
    for (let round = 0; round < 8; round++) {
      await Promise.all(mine.map(async (n) => is(await c.bob.post(sessPath(n, 'join'), { sshPublicKey: key() }), 200, `join ${n}`)));
      for (const n of mine) {
        const v = await view(c.alice, n, `round ${round}: after the joins`);
        assert.equal(part(v, 'bob')?.leftAt, null, `round ${round}: ${n} shows bob in`);
      }
      await Promise.all(mine.map(async (n) => is(await c.bob.post(sessPath(n, 'leave')), 200, `leave ${n}`)));
      for (const n of mine) {
        const v = await view(c.alice, n, `round ${round}: after the leaves`);
        assert.ok(part(v, 'bob')?.leftAt, `round ${round}: ${n} shows bob gone`);
      }
    }
  } finally {
    stop = true;
    await Promise.all(readers);
  }
});

// ---------------------------------------------------------------------------------------------
// Time-driven changes, on a server with short limits

const c2 = {};
const AGX = 'lab/reap/expiry';
const AGG = 'lab/reap/gone';
const AGO = 'lab/reap/offline';
const reg2 = {};

/** Polls the events endpoint (read from the database, not the view cache) until pred(events). */
async function eventsUntil(cl, name, pred, timeout, what) {
  const end = Date.now() + timeout;
  for (;;) {
    const r = await cl.get(sessPath(name, 'events'));
    if (pred(r)) return r;
    if (Date.now() > end) assert.fail(`${name}: ${what} not seen in ${timeout} ms; last events: ${r.status} ${r.text.slice(0, 600)}`);
    await sleep(100); // the poll interval of this wait for the event
  }
}
const hasEvent = (type) => (r) => r.status === 200 && r.json.events.some((e) => e.type === type);

test('2463 (short limits) approval timeout: Failed shows at once, the approvers\' flags go off', async () => {
  s2 = await startAirlock({ oidc: env.oidc, ci: env.ci, extra: { approvalTimeout: '3s', agentGracePeriod: '2s', retention: '3s' } });
  for (const u of ['alice', 'carol', 'erin']) c2[u] = client(s2, await env.token(u));
  for (const n of [AGX, AGG, AGO]) reg2[n] = await registerAgent(c2.erin, n);
  const s = is(await c2.alice.post('/api/v1/debug-sessions', { template: 'strict', agent: AGO }), 201);
  assert.equal(s.status.state, 'PendingApproval');
  assert.equal((await view(c2.carol, s.name, 'carol before')).canApprove, true);
  await view(c2.alice, s.name, 'alice before');
  await eventsUntil(c2.alice, s.name, hasEvent('failed'), 10000, 'the failed event');
  const a = await view(c2.alice, s.name, 'alice after the timeout');
  assert.equal(a.status.state, 'Failed');
  const cr = await view(c2.carol, s.name, 'carol after the timeout');
  assert.equal(cr.canApprove, false);
  assert.equal(cr.canReject, false);
});

test('2464 (short limits) expiry: once the agent is told Expired, GET and the list say so', async () => {
  assert.ok(s2, 'the short-limits server runs (2463)');
  const ag = await agentOnline(s2, AGX, reg2[AGX].credential);
  try {
    const s = is(await c2.alice.post('/api/v1/debug-sessions', { template: 'quick', agent: AGX, requestedDuration: '3s' }), 201);
    await ag.waitSession(s.name, (x) => x.state === 'Active');
    const b = await view(c2.alice, s.name, 'alice while Active');
    assert.equal(b.status.state, 'Active');
    assert.equal(b.canRenew, true);
    await ag.waitSession(s.name, (x) => x.state === 'Expired', { timeout: 8000 });
    const a = await view(c2.alice, s.name, 'alice once Expired');
    assert.equal(a.status.state, 'Expired');
    assert.equal(a.canRenew, false);
    assert.equal(a.canJoin, false);
    assert.equal(a.canTerminate, false);
  } finally {
    await ag.close();
  }
});

test('2465 (short limits) agent gone past the grace period: Failed and offline at once', async () => {
  assert.ok(s2, 'the short-limits server runs (2463)');
  const ag = await agentOnline(s2, AGG, reg2[AGG].credential);
  const s = is(await c2.alice.post('/api/v1/debug-sessions', { template: 'open', agent: AGG }), 201);
  await ag.waitSession(s.name, (x) => x.state === 'Active');
  const b = await view(c2.alice, s.name, 'alice while Active');
  assert.equal(b.status.agent.online, true);
  await ag.close();
  await eventsUntil(c2.alice, s.name, hasEvent('failed'), 12000, 'the failed event');
  const a = await view(c2.alice, s.name, 'alice after the agent was gone');
  assert.equal(a.status.state, 'Failed');
  assert.match(a.status.message ?? '', /agent gone/i);
  assert.equal(a.status.agent.online, false);
});

test('2466 (short limits) a session deleted after retention: 404 and off the list at once; its rowid reused by a new one', async () => {
  assert.ok(s2, 'the short-limits server runs (2463)');
  const keep = is(await c2.alice.post('/api/v1/debug-sessions', { template: 'open', agent: AGO }), 201);
  // the newest row: a session created after its deletion gets the same rowid
  const doomed = is(await c2.alice.post('/api/v1/debug-sessions', { template: 'open', agent: AGO }), 201);
  await view(c2.alice, keep.name, 'keep');
  await view(c2.alice, doomed.name, 'doomed before');
  // the cursor of a one-item page is opaque; decoded it shows whether the rowid was reused
  const newestCursor = async () => is(await c2.alice.get('/api/v1/debug-sessions?limit=1'), 200).nextCursor;
  const before = await newestCursor();
  is(await c2.alice.post(sessPath(doomed.name, 'terminate'), {}), 200);
  assert.equal((await view(c2.alice, doomed.name, 'doomed, Terminated')).status.state, 'Terminated');
  await eventsUntil(c2.alice, doomed.name, (r) => r.status === 404, 15000, 'deletion (events 404)');
  is(await c2.alice.get(sessPath(doomed.name)), 404, 'GET of the deleted session');
  const l = await list(c2.alice);
  assert.ok(!l.sessions.some((x) => x.name === doomed.name), 'the deleted session is off the list');
  assert.ok(l.sessions.some((x) => x.name === keep.name), 'the live one stays');
  assert.deepEqual(await view(c2.alice, keep.name, 'keep after the deletion'), await view(c2.alice, keep.name, 'keep again'));
  const fresh = is(await c2.alice.post('/api/v1/debug-sessions', { template: 'open', agent: AGO, reason: 'the one after' }), 201);
  const reused = (await newestCursor()) === before;
  console.log(`the new session ${reused ? 'reuses' : 'does not reuse'} the deleted session's rowid (cursor ${before})`);
  const f = await view(c2.alice, fresh.name, 'the new session');
  assert.equal(f.name, fresh.name);
  assert.equal(f.spec.reason, 'the one after');
  assert.equal(f.status.state, 'Pending');
  const l2 = await list(c2.alice);
  const names = l2.sessions.map((x) => x.name);
  assert.equal(new Set(names).size, names.length, `no session listed twice: ${names}`);
  assert.ok(!names.includes(doomed.name), 'the deleted session does not come back under a reused rowid');
  const entry = l2.sessions.find((x) => x.name === fresh.name);
  assert.deepEqual(entry, f);
  is(await c2.alice.get(sessPath(doomed.name)), 404, 'still 404');
});
