// 0100: health, readiness, metrics, public config, and config-file errors.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import YAML from 'yaml';

import { agentOnline, assertSchema, client, configYaml, is, REASON, registerAgent, runAirlockdExpectExit, setup, startAirlock, USERS, whenClosed } from './lib.mjs';

let env;
before(async () => { env = await setup(); });
after(async () => { await env?.close(); });

test('0101 GET /healthz is 200 without a token', async () => {
  const r = await env.anon.get('/healthz');
  is(r, 200);
});

test('0102 GET /readyz is 200 without a token (database writable)', async () => {
  is(await env.anon.get('/readyz'), 200);
});

test('0103 GET /api/v1/config needs no token and names the people issuer and UI client', async () => {
  const r = await env.anon.get('/api/v1/config');
  const c = is(r, 200);
  assert.equal(c.dev, false);
  assert.equal(c.publicUrl.replace(/\/$/, ''), env.base);
  assert.equal(c.oidc.issuer, env.oidc.issuer);
  assert.equal(c.oidc.clientId, 'airlock-ui');
  assert.deepEqual(c.oidc.scopes, ['openid', 'profile', 'email'], 'no uiScopes: the default scopes');
  assert.ok(c.version.length > 0);
});

test('0104 GET /metrics is Prometheus text with sessions by state and a request latency histogram', async () => {
  // make something to count: a session waiting for approval
  const erin = await env.client('erin');
  await registerAgent(erin, 'lab/metrics');
  const alice = await env.client('alice');
  is(await alice.post('/api/v1/debug-sessions', { template: 'ci-debug', agent: 'lab/metrics', reason: REASON }), 201);
  const r = await env.anon.get('/metrics');
  is(r, 200);
  assert.match(r.headers['content-type'], /^text\/plain/);
  const lines = r.text.split('\n').filter((l) => l && !l.startsWith('#'));
  const sample = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? [-+]?([0-9.eE+-]+|NaN|\+Inf|-Inf)( [0-9]+)?$/;
  for (const l of lines) assert.match(l, sample, `not a Prometheus sample line: ${l}`);
  assert.ok(r.text.split('\n').some((l) => /^# TYPE \S+ (counter|gauge|histogram|summary)$/.test(l)), 'has # TYPE lines');
  const pending = lines.find((l) => /state="PendingApproval"/.test(l));
  assert.ok(pending, 'a metric with state="PendingApproval"');
  assert.ok(Number(pending.split(' ')[1]) >= 1, `PendingApproval count >= 1: ${pending}`);
  assert.ok(lines.some((l) => /_bucket\{.*le="/.test(l)), 'a latency histogram (_bucket{...le=...})');
  assert.ok(lines.some((l) => /status="201"/.test(l)), 'API requests counted by status');
});

test('0105 an unknown API path is 404 with the error envelope', async () => {
  const alice = await env.client('alice');
  const r = await alice.get('/api/v1/no-such-thing', { validate: false });
  assert.equal(r.status, 404);
  assertSchema('ErrorNotFound', r.json, 'body');
});

test('0106 the config is not readable without the file: unknown keys are refused, naming key and line', async () => {
  const text = configYaml({ publicUrl: 'http://127.0.0.1:1', oidc: env.oidc, ci: env.ci }).replace(/^approvalTimeout:/m, 'approvalTimout:');
  const line = text.split('\n').findIndex((l) => l.startsWith('approvalTimout:')) + 1;
  const r = await runAirlockdExpectExit(text);
  assert.notEqual(r.code, 0, `airlockd should exit non-zero, got ${r.code}/${r.signal}: ${r.output}`);
  assert.ok(r.code !== null, `airlockd should exit on its own: ${r.output}`);
  assert.match(r.output, /approvalTimout/, 'names the key');
  assert.match(r.output, new RegExp(`\\b${line}\\b`), `names the line ${line}: ${r.output}`);
});

test('0107 an unknown key inside a template is refused too', async () => {
  const text = configYaml({ publicUrl: 'http://127.0.0.1:1', oidc: env.oidc, ci: env.ci }).replace(/maxRenewals:/, 'maxRenewalz:');
  const r = await runAirlockdExpectExit(text);
  assert.ok(r.code !== null && r.code !== 0, `exit non-zero: ${r.code}/${r.signal} ${r.output}`);
  assert.match(r.output, /maxRenewalz/);
});

test('0108 an http:// issuer off loopback is refused; a bad duration is refused', async () => {
  const bad = configYaml({ publicUrl: 'http://127.0.0.1:1', oidc: { issuer: 'http://idp.example.com/realms/x' } });
  const r = await runAirlockdExpectExit(bad);
  assert.ok(r.code !== null && r.code !== 0, `exit non-zero: ${r.code}/${r.signal} ${r.output}`);
  assert.match(r.output, /issuer/i);
  const dur = configYaml({ publicUrl: 'http://127.0.0.1:1', oidc: env.oidc }).replace(/^approvalTimeout: .*$/m, 'approvalTimeout: 0s');
  const r2 = await runAirlockdExpectExit(dur);
  assert.ok(r2.code !== null && r2.code !== 0, `0s approvalTimeout refused: ${r2.code}/${r2.signal} ${r2.output}`);
  assert.match(r2.output, /approvalTimeout/);
});

test('0109 each test user authenticates (sanity of the fixture)', async () => {
  for (const u of Object.keys(USERS)) {
    const c = await env.client(u);
    const me = is(await c.get('/api/v1/me'), 200, u);
    assert.equal(me.user, USERS[u].preferred_username);
  }
});

test('0110 POST /api/v1/dev/token is 404 when dev mode is off', async () => {
  const r = await env.anon.post('/api/v1/dev/token', { user: 'mallory', groups: ['airlock-admins'] });
  is(r, 404);
});

test('0111 SIGTERM drains: open control channels are closed and the process exits 0 within 5 s', async () => {
  const s2 = await startAirlock({ oidc: env.oidc, ci: env.ci });
  try {
    const erin = client(s2, await env.token('erin'));
    const reg = await registerAgent(erin, 'lab/drain');
    const ctl = await agentOnline(s2, 'lab/drain', reg.credential);
    const t0 = Date.now();
    const exited = new Promise((r) => s2.proc.once('exit', (code, signal) => r({ code, signal })));
    s2.expectedExit = true;
    process.kill(s2.proc.pid, 'SIGTERM');
    const { code, signal } = await exited;
    assert.equal(signal, null, `killed by ${signal}`);
    assert.equal(code, 0, 'exit code');
    assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
    assert.equal(await whenClosed(ctl), true, 'the control socket was closed');
  } finally {
    await s2.stop();
  }
});

/** The fixture's config with uiScopes set on the people issuer (the one with uiClientId). */
function withUiScopes(scopes, publicUrl = 'http://127.0.0.1:1') {
  const cfg = YAML.parse(configYaml({ publicUrl, oidc: env.oidc, ci: env.ci }));
  const people = cfg.auth.issuers.find((i) => i.uiClientId);
  people.uiScopes = scopes;
  return YAML.stringify(cfg);
}

test('0112 GET /api/v1/config returns the issuer\'s uiScopes as oidc.scopes, in order', async () => {
  const scopes = ['openid', 'groups', 'profile', 'email', 'offline_access'];
  const s2 = await startAirlock({ configText: withUiScopes(scopes) });
  try {
    const c = is(await client(s2, null).get('/api/v1/config'), 200);
    assert.deepEqual(c.oidc.scopes, scopes);
    assert.equal(c.oidc.clientId, 'airlock-ui');
    assert.equal(c.oidc.issuer, env.oidc.issuer);
  } finally {
    await s2.stop();
  }
});

test('0113 bad uiScopes are refused at start, naming the key and line', async () => {
  // YAML.stringify writes the list as a block under "uiScopes:", one item per line; a list-wide
  // error points at the list (its first item), an item's error at that item.
  for (const [scopes, why, item] of [
    [['profile', 'groups'], /key 'auth\.issuers\[0\]\.uiScopes': must include openid/, 0],
    [['openid', 'profile email'], /key 'auth\.issuers\[0\]\.uiScopes\[1\]': scope 'profile email' contains a space/, 1],
    [['openid', 'groups', 'groups'], /key 'auth\.issuers\[0\]\.uiScopes\[2\]': duplicate scope 'groups'/, 2],
  ]) {
    const text = withUiScopes(scopes);
    const line = text.split('\n').findIndex((l) => /^\s*uiScopes:$/.test(l)) + 1 + 1 + item;
    const r = await runAirlockdExpectExit(text);
    assert.ok(r.code !== null && r.code !== 0, `exit non-zero for ${scopes}: ${r.code}/${r.signal} ${r.output}`);
    assert.match(r.output, why);
    assert.match(r.output, new RegExp(`airlock\\.yaml:${line}: `), `names line ${line}: ${r.output}`);
  }
});
