// 0400: SIGHUP reloads templates, issuers, webhooks and limits from the same file without
// dropping a connection (DESIGN.md 9, docs/configuration.md "Reloading"). Each reload waits
// for airlock_config_reloads_total to move (an event), never for a timer.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { after, before, test } from 'node:test';

import YAML from 'yaml';

import { agentOnline, client, is, REASON, registerAgent, sessPath, setup, sleep, startOidc, tail, TEMPLATES, tmpl, USERS } from './lib.mjs';

let env;
let ctl;
let second; // a third OIDC provider, added to the config by 0405
const c = {};
const AG = 'lab/reload/host';
const TEMPLATES_PATH = '/api/v1/debug-session-templates';

// one keep-alive connection, opened before the first reload and reused after the last
const keepAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
let keepPort;

function keepGet(p) {
  return new Promise((resolve, reject) => {
    const u = new URL(env.base);
    const r = http.get({ host: u.hostname, port: u.port, path: p, agent: keepAgent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, port: r.socket.localPort, reused: r.reusedSocket }));
    });
    r.on('error', reject);
  });
}

async function reloadCount(result) {
  const r = await env.anon.get('/metrics');
  const m = r.text.match(new RegExp(`^airlock_config_reloads_total\\{result="${result}"\\} (\\d+)$`, 'm'));
  assert.ok(m, `metrics lack airlock_config_reloads_total{result="${result}"}`);
  return Number(m[1]);
}

/** Writes text as the config file, sends SIGHUP and waits until a reload with result is counted. */
async function hup(text, result = 'ok') {
  const before = await reloadCount(result);
  fs.writeFileSync(env.srv.cfgPath, text);
  process.kill(env.srv.proc.pid, 'SIGHUP');
  const until = Date.now() + 20000;
  while ((await reloadCount(result)) === before) {
    assert.ok(Date.now() < until, `no ${result} reload counted; log:\n${tail(env.srv.logPath, 15)}`);
    await sleep(50);
  }
}

const cfgNow = () => YAML.parse(fs.readFileSync(env.srv.cfgPath, 'utf8'));
const names = async (who) => is(await c[who].get(TEMPLATES_PATH), 200).templates.map((t) => t.name);

before(async () => {
  env = await setup({ templates: [...TEMPLATES, tmpl('doomed')] });
  for (const u of ['alice', 'bob', 'erin']) c[u] = await env.client(u);
  const reg = await registerAgent(c.erin, AG);
  ctl = await agentOnline(env.srv, AG, reg.credential);
  const k = await keepGet('/healthz');
  assert.equal(k.status, 200);
  keepPort = k.port;
});
after(async () => {
  keepAgent.destroy();
  await ctl?.close();
  await second?.close();
  await env?.close();
});

test('0401 a template added to the file is listed after SIGHUP, and a restart-only key is reported', async () => {
  assert.ok(!(await names('alice')).includes('fresh'));
  const cfg = cfgNow();
  cfg.templates.push(tmpl('fresh', { displayName: 'Fresh one' }));
  cfg.uiDir = '/nonexistent/ui'; // needs a restart: kept, and said so
  await hup(YAML.stringify(cfg));
  const list = is(await c.alice.get(TEMPLATES_PATH), 200).templates;
  assert.equal(list.find((t) => t.name === 'fresh')?.displayName, 'Fresh one');
  const log = fs.readFileSync(env.srv.logPath, 'utf8');
  assert.match(log, /uiDir changed; that needs a restart/);
  assert.match(log, /reload: \d+ templates \(1 added, 0 removed, 0 changed\)/);
  is(await c.alice.post('/api/v1/debug-sessions', { template: 'fresh', agent: AG }), 201);
});

test('0402 a removed template is gone for new requests; a session made from it keeps working', async () => {
  const s = is(await c.alice.post('/api/v1/debug-sessions', { template: 'doomed', agent: AG }), 201);
  const act = await ctl.waitSession(s.name, (x) => x.state === 'Active');
  const cfg = cfgNow();
  cfg.templates = cfg.templates.filter((t) => t.name !== 'doomed');
  await hup(YAML.stringify(cfg));
  assert.ok(!(await names('alice')).includes('doomed'));
  is(await c.alice.get(`${TEMPLATES_PATH}/doomed`), 404);
  is(await c.alice.post('/api/v1/debug-sessions', { template: 'doomed', agent: AG }), 400);
  // the running session still follows its own snapshot: renewal allowed, seen by the agent
  assert.equal(is(await c.alice.get(sessPath(s.name)), 200).spec.template, 'doomed');
  const from = ctl.messages.length;
  const r = is(await c.alice.post(sessPath(s.name, 'renew'), { extendBy: '20m' }), 200);
  const ren = await ctl.waitSession(s.name, (x) => x.expiresAt === r.status.expiresAt, { from });
  assert.notEqual(ren.expiresAt, act.expiresAt);
});

test('0403 changed limits apply after SIGHUP (sessionsPerUser: 1 refuses a second open session)', async () => {
  is(await c.bob.post('/api/v1/debug-sessions', { template: 'open', agent: AG }), 201);
  const cfg = cfgNow();
  cfg.limits.sessionsPerUser = 1;
  await hup(YAML.stringify(cfg));
  assert.match(fs.readFileSync(env.srv.logPath, 'utf8'), /limits changed/);
  is(await c.bob.post('/api/v1/debug-sessions', { template: 'open', agent: AG }), 429);
  cfg.limits.sessionsPerUser = 0;
  await hup(YAML.stringify(cfg));
  is(await c.bob.post('/api/v1/debug-sessions', { template: 'open', agent: AG }), 201);
});

test('0404 a broken file keeps the running configuration and the log names FILE:LINE', async () => {
  const good = fs.readFileSync(env.srv.cfgPath, 'utf8');
  const lines = good.split('\n');
  const at = lines.findIndex((l) => l.startsWith('retention:'));
  lines.splice(at + 1, 0, 'retentionn: 1h'); // an unknown key on line at + 2
  const refusedBefore = (fs.readFileSync(env.srv.logPath, 'utf8').match(/reload refused/g) || []).length;
  await hup(lines.join('\n'), 'error');
  const log = fs.readFileSync(env.srv.logPath, 'utf8');
  const refused = log.split('\n').filter((l) => /reload refused/.test(l));
  assert.equal(refused.length, refusedBefore + 1, log.slice(-2000));
  assert.ok(refused.at(-1).includes(`${env.srv.cfgPath}:${at + 2}:`), `names FILE:LINE: ${refused.at(-1)}`);
  assert.ok(refused.at(-1).includes('retentionn'), refused.at(-1));
  is(await env.anon.get('/healthz'), 200);
  assert.ok((await names('alice')).includes('fresh'), 'the old templates are still served');
  fs.writeFileSync(env.srv.cfgPath, good);
});

test('0405 an issuer added to the file is accepted after SIGHUP (401 before)', async () => {
  second = await startOidc({ zed: { ...USERS.alice, preferred_username: 'zed', email: 'zed@example.com' } });
  const zed = client(env.srv, await second.token('zed'));
  is(await zed.get('/api/v1/me'), 401);
  const cfg = cfgNow();
  cfg.auth.issuers.push({ name: 'second', issuer: second.issuer, audience: 'airlock' });
  await hup(YAML.stringify(cfg));
  assert.equal(is(await zed.get('/api/v1/me'), 200).user, 'zed');
  // the first issuer's users are still accepted, with the keys fetched before the reloads
  // (the verified-token cache starts empty with each reload, so this verifies afresh)
  is(await c.alice.get('/api/v1/me'), 200);
  const fetched = fs.readFileSync(env.srv.logPath, 'utf8').match(/issuer test: \d+ signing keys loaded/g) || [];
  assert.equal(fetched.length, 1, 'issuer test kept its keys across reloads (one fetch)');
});

test('0406 the control WebSocket and the keep-alive connection survived every reload', async () => {
  assert.ok(!ctl.closed, `control channel closed (${ctl.closeCode} ${ctl.closeReason})`);
  const s = is(await c.alice.post('/api/v1/debug-sessions', { template: 'open', agent: AG }), 201);
  await ctl.waitSession(s.name, (x) => x.state === 'Active');
  const k = await keepGet('/healthz');
  assert.equal(k.status, 200);
  assert.ok(k.reused, 'the keep-alive socket was reused');
  assert.equal(k.port, keepPort, 'same client port: the same TCP connection');
  assert.ok((await reloadCount('ok')) >= 5);
  const loaded = (await env.anon.get('/metrics')).text.match(/^airlock_config_loaded_seconds (\d+)$/m);
  assert.ok(loaded && Number(loaded[1]) > 0, 'airlock_config_loaded_seconds is set');
});
