// 1000: who the caller is (/me) and which templates they see, with real provider tokens.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import * as jose from 'jose';

import { is, setup, TEMPLATES } from './lib.mjs';

let env;
before(async () => { env = await setup(); });
after(async () => { await env?.close(); });

test('1001 the provider issues RS256 at+jwt access tokens with a kid (fixture sanity)', async () => {
  const t = await env.token('alice');
  const h = jose.decodeProtectedHeader(t);
  assert.equal(h.alg, 'RS256');
  assert.equal(h.typ, 'at+jwt');
  assert.equal(h.kid, 'rsa-1');
  const c = jose.decodeJwt(t);
  assert.equal(c.iss, env.oidc.issuer);
  assert.equal(c.aud, 'airlock');
});

test('1002 GET /me: username, email, display name, groups from the configured claims', async () => {
  const me = is(await (await env.client('alice')).get('/api/v1/me'), 200);
  assert.deepEqual(me, { user: 'alice', email: 'alice@example.com', displayName: 'Alice Liddell', groups: ['developers'], admin: false });
});

test('1003 GET /me: admin is true for the admins group only', async () => {
  assert.equal(is(await (await env.client('dave')).get('/api/v1/me'), 200).admin, true);
  assert.equal(is(await (await env.client('carol')).get('/api/v1/me'), 200).admin, false);
});

test('1004 GET /me without a token is 401', async () => {
  is(await env.anon.get('/api/v1/me'), 401);
});

test('1005 templates: a developer sees exactly the templates allowing developers, with approvalRequired for them', async () => {
  const j = is(await (await env.client('alice')).get('/api/v1/debug-session-templates'), 200);
  const expected = TEMPLATES.filter((t) => t.allowed.groups.includes('developers')).map((t) => t.name).sort();
  assert.deepEqual(j.templates.map((t) => t.name).sort(), expected);
  assert.equal(j.total, expected.length);
  const by = Object.fromEntries(j.templates.map((t) => [t.name, t]));
  assert.equal(by['ci-debug'].approvalRequired, true);
  assert.equal(by.strict.approvalRequired, true);
  assert.equal(by.open.approvalRequired, false, 'no approvers: auto-approve');
});

test('1006 templates: approvalRequired is false for a member of autoApproveFor.groups', async () => {
  const j = is(await (await env.client('asmith')).get('/api/v1/debug-session-templates/ci-debug'), 200);
  assert.equal(j.approvalRequired, false, 'asmith is in sre-leads, which ci-debug auto-approves');
  const k = is(await (await env.client('asmith')).get('/api/v1/debug-session-templates/strict'), 200);
  assert.equal(k.approvalRequired, true);
});

test('1007 GET template: every field as configured (durations canonical)', async () => {
  const t = is(await (await env.client('alice')).get('/api/v1/debug-session-templates/ci-debug'), 200);
  assert.equal(t.name, 'ci-debug');
  assert.equal(t.displayName, 'CI job debug');
  assert.equal(t.description, 'Shell into a failed CI job');
  assert.deepEqual(t.allowed, { groups: ['developers'], users: [], agents: ['lab/*', 'gh/acme/*'] });
  assert.deepEqual(t.approvers, { groups: ['sre-leads'], users: [], autoApproveFor: { groups: ['sre-leads'], users: [], agents: ['gh/acme/sandbox/*'] } });
  assert.equal(t.constraints.maxDuration, '4h');
  assert.equal(t.constraints.defaultDuration, '1h');
  assert.equal(t.constraints.allowRenewal, true);
  assert.equal(t.constraints.maxRenewals, 2);
  assert.ok(t.constraints.minDuration == null);
  assert.deepEqual(t.terminalSharing, { enabled: true, provider: 'tmux', maxParticipants: 5, readOnlyParticipants: false, browser: true });
  assert.deepEqual(t.allowedOperations, { shell: true, exec: true, sftp: true, portForward: false });
  assert.deepEqual(t.requestReason, { mandatory: true, minLength: 10, maxLength: 200 });
  assert.deepEqual(t.approvalReason, { mandatoryForRejection: true });
  const b = is(await (await env.client('alice')).get('/api/v1/debug-session-templates/bounded'), 200);
  assert.equal(b.constraints.minDuration, '10m');
  assert.equal(b.constraints.maxDuration, '1h');
  assert.equal(b.constraints.defaultDuration, '30m');
});

test('1008 GET template the caller may not use, or that does not exist: 404', async () => {
  const alice = await env.client('alice');
  is(await alice.get('/api/v1/debug-session-templates/sre-only'), 404);
  is(await alice.get('/api/v1/debug-session-templates/nope'), 404);
});

test('1009 templates: an admin sees them all; someone in no group sees none', async () => {
  const d = is(await (await env.client('dave')).get('/api/v1/debug-session-templates'), 200);
  assert.equal(d.total, TEMPLATES.length);
  const f = is(await (await env.client('frank')).get('/api/v1/debug-session-templates'), 200);
  assert.deepEqual(f, { templates: [], total: 0 });
});
