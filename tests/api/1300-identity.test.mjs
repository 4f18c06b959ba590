// 1300: identity cannot be borrowed (DESIGN.md 5). A person is their username within their
// issuer, matched case-insensitively; an email claim identifies only when it is a valid address
// and verified (email_verified: true) or its issuer is trustEmail; two people-issuers never merge
// unless identityDomain maps them; self-approval is refused on every name the approver matches.
// Claims with control characters are refused; an unreachable issuer is 503 UNAVAILABLE.
//
// Issuers: "test" (USERS, emails verified), "partner" (another directory with its own alice),
// "trusting" (trustEmail: true), "mapped" (identityDomain: test, the same directory as "test"),
// "down" (nothing listens there).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import YAML from 'yaml';

import {
  agentOnline, AUDIENCE, client, configYaml, is, registerAgent, sessPath, sshKey, startAirlock,
  startOidc, USERS,
} from './lib.mjs';

const PARTNER = {
  alice: { preferred_username: 'alice', email: 'alice@partner.example', email_verified: true, groups: ['developers', 'sre-leads'] },
  ALICE: { preferred_username: 'ALICE', groups: ['developers'] },
  zed: { preferred_username: 'zed', email: 'zed@example.com', groups: ['developers'] },
  carol: { preferred_username: 'carol', groups: ['developers'] },
};
const TRUSTING = {
  zed: { preferred_username: 'zed', email: 'zed@example.com', groups: ['developers'] },
  bad: { preferred_username: 'bad', email: 'zed@example', groups: ['developers'] },
};
const MAPPED = {
  alice: { preferred_username: 'Alice', groups: ['developers'] },
};
const DOWN = 'http://127.0.0.1:1';

let oidc, partner, trusting, mapped, srv, ctl;
const c = {};
const sess = (name, action) => sessPath(name, action);
const other = (p, who) => p.token(who).then((t) => client(srv, t));
/** A token from the "test" issuer for subject sub with these claims (overriding USERS'). */
const signed = (claims, sub = 'frank') => oidc.sign({ ...claims }, { subject: sub });
const as = async (claims, sub) => client(srv, await signed(claims, sub));

async function active(who, body) {
  const s = is(await c[who].post('/api/v1/debug-sessions', { agent: 'lab/id', template: 'open', ...body }), 201);
  await ctl.waitSession(s.name, (x) => x.state === 'Active');
  return s;
}

before(async () => {
  oidc = await startOidc(USERS);
  partner = await startOidc(PARTNER);
  trusting = await startOidc(TRUSTING);
  mapped = await startOidc(MAPPED);
  const cfg = YAML.parse(configYaml({ publicUrl: 'http://127.0.0.1:1', oidc }));
  delete cfg.publicUrl;
  cfg.auth.issuers.push(
    { name: 'partner', issuer: partner.issuer, audience: AUDIENCE },
    { name: 'trusting', issuer: trusting.issuer, audience: AUDIENCE, trustEmail: true },
    { name: 'mapped', issuer: mapped.issuer, audience: AUDIENCE, identityDomain: 'test' },
    { name: 'down', issuer: DOWN, audience: AUDIENCE },
  );
  srv = await startAirlock({ configText: YAML.stringify(cfg) });
  for (const u of ['alice', 'bob', 'carol', 'erin', 'asmith']) c[u] = client(srv, await oidc.token(u));
  const reg = await registerAgent(c.erin, 'lab/id');
  ctl = await agentOnline(srv, 'lab/id', reg.credential);
});
after(async () => {
  await ctl?.close();
  await srv?.stop();
  for (const p of [oidc, partner, trusting, mapped]) await p?.close();
});

/** The caller's view: 404 (cannot see it), or the session with its can* flags. */
async function view(cl, name) {
  const r = await cl.get(sess(name));
  if (r.status === 404) return null;
  return is(r, 200);
}
const listed = async (cl, name) => is(await cl.get('/api/v1/debug-sessions?limit=100'), 200).sessions.some((s) => s.name === name);

test('1301 an unverified email claim is not an identity: mallory with alice\'s email sees nothing of alice\'s', async () => {
  const s = await active('alice');
  for (const [what, claims] of [
    ['no email_verified', { preferred_username: 'mallory', email: 'alice@example.com', email_verified: undefined }],
    ['email_verified false', { preferred_username: 'mallory', email: 'alice@example.com', email_verified: false }],
    ['email_verified "false"', { preferred_username: 'mallory', email: 'ALICE@EXAMPLE.COM', email_verified: 'false' }],
  ]) {
    const m = await as(claims);
    assert.equal(await view(m, s.name), null, `${what}: GET is 404`);
    assert.equal(await listed(m, s.name), false, `${what}: not listed`);
    is(await m.post(sess(s.name, 'join'), { sshPublicKey: sshKey().pub }), 404, `${what}: join`);
    is(await m.post(sess(s.name, 'terminate'), {}), 404, `${what}: terminate`);
    const me = is(await m.get('/api/v1/me'), 200);
    assert.equal(me.user, 'mallory');
    assert.equal(me.email, null, `${what}: /me shows no email it does not trust`);
  }
  assert.equal((await view(c.alice, s.name)).status.state, 'Active', 'alice still owns it');
});

test('1302 a verified email identifies its owner: invitations by email, and owner by email', async () => {
  const s = await active('alice', { invitedParticipants: ['Invitee@Example.com'] });
  const unverified = await as({ preferred_username: 'ivy', email: 'invitee@example.com', email_verified: undefined });
  assert.equal(await view(unverified, s.name), null, 'unverified: not the invitee');
  const verified = await as({ preferred_username: 'ivy', email: 'invitee@example.com', email_verified: true });
  const v = await view(verified, s.name);
  assert.ok(v, 'verified: the invitee sees it');
  assert.equal(v.canJoin, true);
  const j = is(await verified.post(sess(s.name, 'join'), { sshPublicKey: sshKey().pub }), 200);
  assert.equal(j.role, 'participant');
  // the requester's own verified email, under another username of the same issuer
  const alias = await as({ preferred_username: 'a.liddell', email: 'Alice@Example.com', email_verified: true });
  const a = await view(alias, s.name);
  assert.ok(a, 'alice by verified email sees her session');
  assert.equal(a.canTerminate, true, 'and is its owner');
});

test('1303 a malformed email never matches, verified or not', async () => {
  const s = await active('alice', { invitedParticipants: ['alice@example', 'x@example.com'] });
  for (const email of ['ALICE', 'alice@example', 'x@@example.com', 'x@example.com.', ' x@example.com', 'x@exa mple.com']) {
    const m = await as({ preferred_username: 'mallory', email, email_verified: true });
    assert.equal(await view(m, s.name), null, `email ${JSON.stringify(email)}`);
  }
});

test('1304 trustEmail: that issuer\'s valid emails count without email_verified, only valid ones', async () => {
  const s = await active('alice', { invitedParticipants: ['zed@example.com'] });
  const z = await other(trusting, 'zed');
  assert.ok(await view(z, s.name), 'trusting issuer: zed@example.com is the invitee');
  assert.equal(await listed(z, s.name), true, 'and the list shows it');
  is(await z.post(sess(s.name, 'join'), { sshPublicKey: sshKey().pub }), 200);
  assert.equal(await view(await other(trusting, 'bad'), s.name), null, 'an invalid address is not trusted');
  assert.equal(await view(await other(partner, 'zed'), s.name), null, 'without trustEmail, unverified');
});

test('1305 the same username from another people-issuer is another person', async () => {
  const s = await active('alice', { invitedParticipants: ['bob'] });
  for (const who of ['alice', 'ALICE']) {
    const pa = await other(partner, who);
    assert.equal(await view(pa, s.name), null, `partner ${who}: GET 404`);
    assert.equal(await listed(pa, s.name), false, `partner ${who}: not listed`);
    is(await pa.post(sess(s.name, 'join'), { sshPublicKey: sshKey().pub }), 404, `partner ${who}: join`);
    is(await pa.post(sess(s.name, 'terminate'), {}), 404, `partner ${who}: terminate`);
  }
  // the partner's alice owns her own sessions, and test's alice cannot see them
  const own = is(await (await other(partner, 'alice')).post('/api/v1/debug-sessions', { agent: 'lab/id', template: 'open' }), 201);
  assert.equal(await view(c.alice, own.name), null, 'test alice cannot see partner alice\'s session');
  assert.equal(await listed(c.alice, own.name), false);
  assert.equal((await view(await other(partner, 'alice'), own.name)).canTerminate, true);
});

test('1306 case variants of a username in the same issuer are the same person', async () => {
  const s = await active('alice');
  const upper = await as({ preferred_username: 'ALICE', email: undefined }, 'alice-2');
  const v = await view(upper, s.name);
  assert.ok(v, '"ALICE" of the same issuer is alice');
  assert.equal(v.canTerminate, true);
  // identityDomain maps "mapped" onto "test": its "Alice" is alice too
  const m = await view(await other(mapped, 'alice'), s.name);
  assert.ok(m, 'mapped issuer: Alice is alice');
  assert.equal(m.canTerminate, true);
});

test('1307 self-approval stays refused on every name the approver matches', async () => {
  const s = is(await c.alice.post('/api/v1/debug-sessions', { agent: 'lab/id', template: 'strict' }), 201);
  assert.equal(s.status.state, 'PendingApproval');
  // alice's verified email under another username, in the approver group
  is(await c.asmith.post(sess(s.name, 'approve'), {}), 403, 'verified email');
  // alice's username from another issuer, in the approver group: refused all the same
  const pa = await other(partner, 'alice');
  const pv = await view(pa, s.name);
  assert.equal(pv.canApprove, false);
  is(await pa.post(sess(s.name, 'approve'), {}), 403, 'same username, other issuer');
  // an approver whose unverified email is alice's is someone else: their decision stands
  const g = await as({ preferred_username: 'gina', email: 'alice@example.com', email_verified: false, groups: ['sre-leads'] }, 'grace');
  const r = is(await g.post(sess(s.name, 'approve'), {}), 200, 'gina is not alice');
  assert.equal(r.status.approval.approvedBy, 'gina');
});

test('1308 claims with control characters are refused with the envelope (people issuers too)', async () => {
  for (const [what, claims] of [
    ['newline in preferred_username', { preferred_username: 'eve\n2026-12-04T00:00:00Z info forged: admin' }],
    ['BEL in preferred_username', { preferred_username: 'eve\u0007' }],
    ['DEL in preferred_username', { preferred_username: 'eve\u007f' }],
    ['C1 in preferred_username', { preferred_username: 'eve\u009b31m' }],
    ['U+2028 in preferred_username', { preferred_username: 'eve\u2028x' }],
    ['ESC in name', { preferred_username: 'eve', name: 'Eve \u001b[2J' }],
    ['CR in a group', { preferred_username: 'eve', groups: ['developers', 'ops\rroot'] }],
    ['newline in email', { preferred_username: 'eve', email: 'eve@example.com\nx', email_verified: true }],
  ]) {
    const r = await (await as(claims)).get('/api/v1/me');
    is(r, 401, what);
    assert.equal(r.json.code, 'UNAUTHORIZED', what);
    assert.match(r.json.error, /control characters/, what);
  }
  const ok = is(await (await as({ preferred_username: 'élise', name: 'Élise Ünal' })).get('/api/v1/me'), 200);
  assert.equal(ok.user, 'élise', 'printable non-ASCII is fine');
});

test('1309 an unreachable issuer is 503 UNAVAILABLE with the envelope, not 500', async () => {
  const tok = await oidc.sign({ iss: DOWN });
  // openapi.yaml does not list 503 on every bearer path yet: the envelope is checked here
  const r = await client(srv, tok).get('/api/v1/me', { validate: false });
  is(r, 503, 'issuer down');
  assert.deepEqual(Object.keys(r.json).sort(), ['code', 'error']);
  assert.equal(r.json.code, 'UNAVAILABLE');
  assert.match(r.json.error, /issuer/);
  const again = await client(srv, tok).get('/api/v1/debug-sessions', { validate: false });
  is(again, 503, 'any bearer path');
  assert.equal(again.json.code, 'UNAVAILABLE');
  // a working issuer still answers
  is(await c.alice.get('/api/v1/me'), 200);
});

test('1310 an approver\'s decisions cannot be borrowed by the same username of another issuer', async () => {
  const s = is(await c.alice.post('/api/v1/debug-sessions', { agent: 'lab/id', template: 'strict' }), 201);
  is(await c.carol.post(sess(s.name, 'approve'), {}), 200, 'carol (test issuer) approves');
  await ctl.waitSession(s.name, (x) => x.state === 'Active');
  // carol without her approver group sees the session only as its decider, in her own issuer
  const decider = await as({ preferred_username: 'carol', email: undefined, groups: ['developers'] }, 'carol');
  assert.ok(await view(decider, s.name), 'the decider (test issuer) sees what she decided');
  assert.equal(await listed(decider, s.name), true, 'and the list shows it');
  // partner's carol is another person: neither GET nor the list lends her carol's decision
  const pc = await other(partner, 'carol');
  assert.equal(await view(pc, s.name), null, 'partner carol: GET 404');
  assert.equal(await listed(pc, s.name), false, 'partner carol: not listed');
  is(await pc.post(sess(s.name, 'join'), { sshPublicKey: sshKey().pub }), 404, 'partner carol: join');
});
