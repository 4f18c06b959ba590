// 0200: development mode (DESIGN.md 7.3): the local issuer and POST /api/v1/dev/token.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import * as jose from 'jose';

import { client, configYaml, freePort, is, namesField, registerAgent, runAirlockdExpectExit, setup } from './lib.mjs';

let env;
before(async () => { env = await setup({ dev: true }); });
after(async () => { await env?.close(); });

async function devToken(body) {
  const r = await env.anon.post('/api/v1/dev/token', body);
  return r;
}

test('0201 /api/v1/config says dev: true', async () => {
  const c = is(await env.anon.get('/api/v1/config'), 200);
  assert.equal(c.dev, true);
});

test('0202 dev token for anyone, ES256, and /me reflects what was asked', async () => {
  const r = await devToken({ user: 'zoe', email: 'zoe@example.com', displayName: 'Zoe Dev', groups: ['developers', 'sre'] });
  const j = is(r, 200);
  const h = jose.decodeProtectedHeader(j.token);
  assert.equal(h.alg, 'ES256');
  const claims = jose.decodeJwt(j.token);
  assert.ok(Math.abs(claims.exp * 1000 - Date.parse(j.expiresAt)) < 1000, 'expiresAt is the token exp');
  assert.ok(Date.parse(j.expiresAt) > Date.now(), 'not expired');
  const me = is(await client(env.srv, j.token).get('/api/v1/me'), 200);
  assert.equal(me.user, 'zoe');
  assert.equal(me.email, 'zoe@example.com');
  assert.equal(me.displayName, 'Zoe Dev');
  assert.deepEqual([...me.groups].sort(), ['developers', 'sre']);
  assert.equal(me.admin, false);
});

test('0203 a dev token in airlock-admins is an admin; minimal body {user} works', async () => {
  const j = is(await devToken({ user: 'root', groups: ['airlock-admins'] }), 200);
  assert.equal(is(await client(env.srv, j.token).get('/api/v1/me'), 200).admin, true);
  const k = is(await devToken({ user: 'plain' }), 200);
  const me = is(await client(env.srv, k.token).get('/api/v1/me'), 200);
  assert.equal(me.user, 'plain');
  assert.deepEqual(me.groups, []);
});

test('0204 dev token bodies are strict: missing user, unknown field, wrong type', async () => {
  const r1 = await devToken({ email: 'x@example.com' });
  is(r1, 400);
  namesField(r1, 'user');
  const r2 = await devToken({ user: 'x', admin: true });
  is(r2, 400);
  namesField(r2, 'admin');
  const r3 = await devToken({ user: 'x', groups: 'developers' });
  is(r3, 400);
  namesField(r3, 'groups');
});

test('0205 dev tokens drive the whole API: a developer creates an auto-approved session', async () => {
  const ops = client(env.srv, is(await devToken({ user: 'opsy', groups: ['ops'] }), 200).token);
  await registerAgent(ops, 'lab/dev-host');
  const dev = client(env.srv, is(await devToken({ user: 'devy', email: 'devy@example.com', groups: ['developers'] }), 200).token);
  const s = is(await dev.post('/api/v1/debug-sessions', { template: 'open', agent: 'lab/dev-host' }), 201);
  assert.equal(s.spec.requestedBy, 'devy');
  assert.equal(s.spec.requestedByEmail, 'devy@example.com');
  assert.equal(s.status.state, 'Pending');
  assert.equal(s.status.message, 'waiting for agent');
});

test('0206 the configured OIDC issuer still works in dev mode', async () => {
  const alice = await env.client('alice');
  assert.equal(is(await alice.get('/api/v1/me'), 200).user, 'alice');
});

test('0207 a token signed by the dev key but with a foreign iss is refused', async () => {
  const j = is(await devToken({ user: 'eve' }), 200);
  const [h, p, sig] = j.token.split('.');
  const claims = JSON.parse(Buffer.from(p, 'base64url'));
  claims.iss = env.oidc.issuer;
  const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${sig}`;
  is(await client(env.srv, forged).get('/api/v1/me'), 401);
});

test('0208 dev mode refuses to listen off loopback without --dev-allow-remote', async () => {
  const port = await freePort();
  const text = configYaml({ publicUrl: `http://127.0.0.1:${port}`, oidc: env.oidc, dev: true });
  const r = await runAirlockdExpectExit(text, { args: ['--dev'], listen: `0.0.0.0:${port}`, timeout: 5000 });
  assert.ok(r.code !== null && r.code !== 0, `airlockd --dev --listen 0.0.0.0 must exit non-zero: ${r.code}/${r.signal} ${r.output}`);
});
