// 2000: one whole session lifecycle with three people: alice requests, carol approves, bob is
// invited; erin's host agent is played by a WebSocket client on the control channel.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { agentOnline, is, registerAgent, secs, sessPath, setup, sshKey } from './lib.mjs';

let env;
let alice; let bob; let carol; let erin; let frank;
let agent; let ctl; let name;
const keys = { alice: sshKey('alice'), bob: sshKey('bob'), erin: sshKey('erin') };
const REASON = 'investigate the failing nightly build';

before(async () => {
  env = await setup();
  [alice, bob, carol, erin, frank] = await Promise.all(['alice', 'bob', 'carol', 'erin', 'frank'].map((u) => env.client(u)));
  agent = await registerAgent(erin, 'lab/life/host-1');
});
after(async () => {
  await ctl?.close();
  await env?.close();
});

test('2001 alice requests a session: PendingApproval, nothing started yet', async () => {
  const t0 = Date.now();
  const r = await alice.post('/api/v1/debug-sessions', {
    template: 'ci-debug', agent: 'lab/life/host-1', requestedDuration: '1h30m', reason: REASON, invitedParticipants: ['BOB'],
  });
  const s = is(r, 201);
  name = s.name;
  assert.match(name, /^ds-[0-9a-z]{10}$/);
  assert.ok(Math.abs(Date.parse(s.createdAt) - t0) < 5000, 'createdAt is now');
  assert.deepEqual({ ...s.spec, invitedParticipants: s.spec.invitedParticipants.map((u) => u.toLowerCase()) }, {
    template: 'ci-debug', agent: 'lab/life/host-1', requestedBy: 'alice', requestedByEmail: 'alice@example.com',
    requestedByDisplayName: 'Alice Liddell', requestedDuration: '1h30m', reason: REASON, invitedParticipants: ['bob'],
  });
  assert.equal(s.status.state, 'PendingApproval');
  assert.equal(s.status.startsAt, null);
  assert.equal(s.status.expiresAt, null);
  assert.equal(s.status.renewalCount, 0);
  assert.equal(s.status.maxRenewals, 2);
  assert.deepEqual(s.status.approval, { required: true, approvedBy: null, approvedAt: null, rejectedBy: null, rejectedAt: null, reason: null });
  assert.deepEqual(s.status.participants, []);
  assert.deepEqual(s.status.terminalSharing, { enabled: true, provider: 'tmux', maxParticipants: 5, browser: true });
  assert.deepEqual(s.status.allowedOperations, { shell: true, exec: true, sftp: true, portForward: false });
  assert.equal(s.status.agent.online, false);
  assert.deepEqual(s.status.agent.hostKeyFingerprints, [agent.key.fp]);
  assert.equal(s.canApprove, false, 'nobody approves their own request');
  assert.equal(s.canJoin, false);
  assert.equal(s.canRenew, false);
  assert.equal(s.canTerminate, true, 'the requester may withdraw');
});

test('2002 who sees it: invitee bob and approver carol yes (carol may approve), outsider frank 404', async () => {
  const b = is(await bob.get(sessPath(name)), 200);
  assert.equal(b.canApprove, false);
  assert.equal(b.canTerminate, false);
  const c = is(await carol.get(sessPath(name)), 200);
  assert.equal(c.canApprove, true);
  assert.equal(c.canReject, true);
  is(await frank.get(sessPath(name)), 404);
});

test('2003 carol approves while the agent is offline: Pending "waiting for agent", clock not started', async () => {
  const s = is(await carol.post(sessPath(name, 'approve'), { reason: 'go ahead' }), 200);
  assert.equal(s.status.state, 'Pending');
  assert.equal(s.status.message, 'waiting for agent');
  assert.equal(s.status.approval.approvedBy, 'carol');
  assert.ok(Math.abs(Date.parse(s.status.approval.approvedAt) - Date.now()) < 5000);
  assert.equal(s.status.approval.reason, 'go ahead');
  assert.equal(s.status.startsAt, null);
  assert.equal(s.status.expiresAt, null);
  assert.equal(s.canApprove, false, 'decided');
});

test('2004 the agent connects: it receives the session, which becomes Active with the clock started', async () => {
  const t0 = Date.now();
  ctl = await agentOnline(env.srv, 'lab/life/host-1', agent.credential, { hostKeys: [agent.key.pub] });
  const m = await ctl.waitSession(name, (x) => x.state === 'Active');
  const s = is(await alice.get(sessPath(name)), 200);
  assert.equal(s.status.state, 'Active');
  assert.ok(Math.abs(Date.parse(s.status.startsAt) - t0) < 5000, 'startsAt is when the agent came');
  assert.equal(secs(s.status.expiresAt, s.status.startsAt), 5400, 'expiresAt = startsAt + 1h30m');
  assert.equal(m.expiresAt, s.status.expiresAt, 'the agent is told the same end');
  assert.equal(s.status.agent.online, true);
  assert.equal(s.canJoin, true);
  assert.equal(s.canRenew, true);
  const a = is(await erin.get('/api/v1/agents/lab%2Flife%2Fhost-1'), 200);
  assert.equal(a.online, true);
  assert.ok(a.sessions.includes(name));
});

test('2005 bob joins as the invited participant and gets a pasteable attach command', async () => {
  const from = ctl.messages.length;
  const j = is(await bob.post(sessPath(name, 'join'), { sshPublicKey: keys.bob.pub }), 200);
  assert.equal(j.role, 'participant');
  assert.match(j.attach.ticket, /^[A-Za-z0-9_-]{43}$/);
  assert.ok(Date.parse(j.attach.ticketExpiresAt) > Date.now());
  assert.ok(j.attach.command.includes(name), 'command names the session');
  assert.match(j.attach.command, /^ssh /);
  assert.ok(j.attach.command.includes('ProxyCommand'), 'uses airlock proxy');
  assert.ok(j.attach.command.includes(j.attach.ticket), 'carries the ticket');
  assert.ok(j.attach.knownHostsLine.startsWith(`${name} `), `knownHostsLine names the session as host: ${j.attach.knownHostsLine}`);
  assert.ok(j.attach.knownHostsLine.includes(agent.key.blob), 'pins the agent host key');
  assert.deepEqual(j.attach.hostKeyFingerprints, [agent.key.fp]);
  assert.equal(j.attach.connectUrl, `${env.base.replace(/^http/, 'ws')}/api/v1/debug-sessions/${name}/connect`);
  const bp = j.session.status.participants.find((p) => p.user === 'bob');
  assert.equal(bp.role, 'participant');
  assert.equal(bp.leftAt, null);
  const m = await ctl.waitSession(name, (x) => x.participants.some((p) => p.user === 'bob'), { from });
  const mp = m.participants.find((p) => p.user === 'bob');
  assert.equal(mp.role, 'participant');
  assert.ok(mp.keys.some((k) => k.startsWith(`ssh-ed25519 ${keys.bob.blob}`)), 'the agent learns bob\'s key');
});

test('2006 alice joins as owner', async () => {
  const j = is(await alice.post(sessPath(name, 'join'), { sshPublicKey: keys.alice.pub }), 200);
  assert.equal(j.role, 'owner');
  const roles = Object.fromEntries(j.session.status.participants.map((p) => [p.user, p.role]));
  assert.deepEqual(roles, { alice: 'owner', bob: 'participant' });
});

test('2007 alice renews by 30m: expiresAt moves, renewalCount counts, the agent is told', async () => {
  const before = is(await alice.get(sessPath(name)), 200);
  const from = ctl.messages.length;
  const s = is(await alice.post(sessPath(name, 'renew'), { extendBy: '30m' }), 200);
  assert.equal(secs(s.status.expiresAt, before.status.expiresAt), 1800);
  assert.equal(s.status.renewalCount, 1);
  await ctl.waitSession(name, (x) => x.expiresAt === s.status.expiresAt, { from });
});

test('2008 bob (participant) may renew too', async () => {
  const s = is(await bob.post(sessPath(name, 'renew'), { extendBy: '15m' }), 200);
  assert.equal(s.status.renewalCount, 2);
  assert.equal(secs(s.status.expiresAt, s.status.startsAt), 5400 + 1800 + 900);
});

test('2009 alice invites erin as viewer; erin then sees the session and joins read-only', async () => {
  is(await erin.get(sessPath(name)), 404, 'not visible before the invitation');
  const s = is(await alice.post(sessPath(name, 'invite'), { users: ['erin@example.com'], role: 'viewer' }), 200);
  assert.ok(s.spec.invitedParticipants.map((u) => u.toLowerCase()).includes('erin@example.com'));
  const e = is(await erin.get(sessPath(name)), 200);
  assert.equal(e.canJoin, true);
  is(await erin.post(sessPath(name, 'join'), { sshPublicKey: keys.erin.pub, role: 'participant' }), 403, 'no raise above viewer');
  const j = is(await erin.post(sessPath(name, 'join'), { sshPublicKey: keys.erin.pub }), 200);
  assert.equal(j.role, 'viewer');
  is(await erin.post(sessPath(name, 'renew'), { extendBy: '1m' }), 403, 'viewers may not renew');
});

test('2010 bob leaves: leftAt set, the agent drops him; he can join again', async () => {
  const from = ctl.messages.length;
  const s = is(await bob.post(sessPath(name, 'leave')), 200);
  const bp = s.status.participants.find((p) => p.user === 'bob');
  assert.ok(bp.leftAt, 'leftAt set');
  await ctl.waitSession(name, (x) => !x.participants.some((p) => p.user === 'bob'), { from });
  is(await bob.post(sessPath(name, 'leave')), 409, 'leaving twice');
  is(await bob.post(sessPath(name, 'renew'), { extendBy: '1m' }), 403, 'a participant who left may not renew');
  const j = is(await bob.post(sessPath(name, 'join'), { sshPublicKey: keys.bob.pub }), 200);
  assert.equal(j.role, 'participant');
  assert.equal(j.session.status.participants.find((p) => p.user === 'bob').leftAt, null);
});

test('2011 events: the timeline in order, with actors', async () => {
  const ev = is(await carol.get(sessPath(name, 'events')), 200).events;
  const types = ev.map((e) => e.type);
  // a join request is a ticket, not a join (issue 12): `joined` is no longer recorded
  const want = ['created', 'approval_required', 'approved', 'activated', 'ticket_issued', 'ticket_issued', 'renewed', 'renewed', 'invited', 'ticket_issued', 'left', 'ticket_issued'];
  assert.ok(!types.includes('joined'), 'no joined event for a ticket');
  // every wanted event, in this order (others, e.g. agent_online, may be interleaved)
  let i = 0;
  for (const t of types) if (t === want[i]) i++;
  assert.equal(i, want.length, `timeline ${types.join(',')} should contain ${want.join(',')} in order`);
  const of = (t) => ev.filter((e) => e.type === t);
  assert.equal(of('created')[0].actor, 'alice');
  assert.equal(of('approved')[0].actor, 'carol');
  assert.deepEqual(of('renewed').map((e) => e.actor), ['alice', 'bob']);
  assert.deepEqual(of('renewed').map((e) => [e.data.by, e.data.auto]), [['alice', false], ['bob', false]]);
  for (const t of of('ticket_issued')) assert.ok(t.data.user === t.actor && ['owner', 'participant', 'viewer'].includes(t.data.role), JSON.stringify(t));
  assert.equal(of('left')[0].actor, 'bob');
  for (let k = 1; k < ev.length; k++) assert.ok(Date.parse(ev[k].at) >= Date.parse(ev[k - 1].at), 'oldest first');
  is(await frank.get(sessPath(name, 'events')), 404);
});

test('2012 alice terminates: Terminated at once, the agent is told, nothing more is possible', async () => {
  const from = ctl.messages.length;
  const s = is(await alice.post(sessPath(name, 'terminate'), { reason: 'found it' }), 200);
  assert.equal(s.status.state, 'Terminated');
  assert.equal(s.canJoin, false);
  assert.equal(s.canRenew, false);
  assert.equal(s.canTerminate, false);
  await ctl.waitSession(name, (x) => x.state === 'Terminated', { from, timeout: 2000 });
  is(await alice.post(sessPath(name, 'renew'), { extendBy: '1m' }), 409);
  is(await bob.post(sessPath(name, 'join'), { sshPublicKey: keys.bob.pub }), 409);
  is(await alice.post(sessPath(name, 'terminate')), 409);
  is(await carol.post(sessPath(name, 'approve')), 409);
  const ev = is(await alice.get(sessPath(name, 'events')), 200).events;
  const t = ev.filter((e) => e.type === 'terminated');
  assert.equal(t.length, 1);
  assert.equal(t[0].actor, 'alice');
  // still visible to its people after the end
  assert.equal(is(await bob.get(sessPath(name)), 200).status.state, 'Terminated');
  const a = is(await erin.get('/api/v1/agents/lab%2Flife%2Fhost-1'), 200);
  assert.ok(!a.sessions.includes(name), 'an ended session is no longer listed on the agent');
});
