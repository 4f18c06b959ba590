// 3300: notifications. Every audit event a webhook subscribes to is POSTed as JSON to a real
// HTTP receiver on loopback; a receiver that fails gets the event again later (outbox, back-off).
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';

import { agentOnline, freePort, is, REASON, sessPath, setup, sshKey, until } from './lib.mjs';

let env, hook, hookPort, ctl;
const c = {};
const got = [];        // bodies received by the healthy receiver
let failing = 0;       // the next N requests to /flaky answer 500
const flaky = [];      // bodies received by /flaky (including refused ones)

before(async () => {
  hookPort = await freePort();
  hook = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const j = JSON.parse(body);
      if (req.url === '/flaky') {
        flaky.push(j);
        if (failing > 0) { failing--; res.writeHead(500); res.end('no'); return; }
      } else {
        assert.equal(req.headers['content-type'], 'application/json');
        got.push(j);
      }
      res.writeHead(204); res.end();
    });
  });
  await new Promise((r) => hook.listen(hookPort, '127.0.0.1', r));
  env = await setup({
    extra: {
      notifications: {
        webhooks: [
          { url: `http://127.0.0.1:${hookPort}/all` },
          { url: `http://127.0.0.1:${hookPort}/flaky`, events: ['rejected'] },
        ],
      },
    },
  });
  for (const u of ['alice', 'carol', 'erin']) c[u] = await env.client(u);
  const reg = is(await c.erin.post('/api/v1/agents', { name: 'lab/hook', hostKeys: [sshKey('h').pub] }), 201);
  ctl = await agentOnline(env.srv, 'lab/hook', reg.credential); // sessions become Active (time left)
});
after(async () => { await ctl?.close(); await env?.close(); hook?.close(); });

const waitFor = (pred, ms, what) => until(pred, { timeout: ms, what: `waiting for ${what}` });

test('3301 created, approval_required and approved reach the webhook as JSON, in order', async () => {
  const s = is(await c.alice.post('/api/v1/debug-sessions', { template: 'ci-debug', agent: 'lab/hook', reason: REASON }), 201);
  is(await c.carol.post(sessPath(s.name, 'approve'), {}), 200);
  await waitFor(() => got.filter((e) => e.session === s.name).length >= 3, 5000, 'three events');
  const mine = got.filter((e) => e.session === s.name);
  assert.deepEqual(mine.slice(0, 3).map((e) => e.type), ['created', 'approval_required', 'approved']);
  assert.equal(mine[0].actor, 'alice');
  assert.equal(mine[2].actor, 'carol');
  assert.match(mine[0].at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.equal(mine[0].data.template, 'ci-debug');
});

test('3302 a receiver that fails gets the event again; only subscribed events are sent', async () => {
  failing = 1;
  const s = is(await c.alice.post('/api/v1/debug-sessions', { template: 'ci-debug', agent: 'lab/hook', reason: REASON }), 201);
  is(await c.carol.post(sessPath(s.name, 'reject'), { reason: 'not today' }), 200);
  // first attempt refused (500), the retry comes after the 5 s back-off
  await waitFor(() => flaky.filter((e) => e.session === s.name).length >= 2, 12000, 'a retried delivery');
  const mine = flaky.filter((e) => e.session === s.name);
  assert.ok(mine.every((e) => e.type === 'rejected'), 'only the subscribed event type');
  assert.equal(mine[1].data.reason, 'not today');
});

// Slack/Mattermost incoming webhooks take {"text": …} and ignore the rest, so each body carries a
// one-line `text` a person can act on: session, who, what, time left, the UI link.
const textOf = (name, type) => got.find((e) => e.session === name && e.type === type)?.text;
const uiLink = (name) => `${env.srv.base}/debug-sessions/${name}`;

test('3303 a request names who asks, who may approve and the approve link; once active the time left', async () => {
  const s = is(await c.alice.post('/api/v1/debug-sessions', { template: 'ci-debug', agent: 'lab/hook', reason: REASON }), 201);
  await waitFor(() => textOf(s.name, 'approval_required'), 5000, 'approval_required');
  const created = textOf(s.name, 'created');
  assert.ok(created.startsWith(`airlock ${s.name} (ci-debug on lab/hook, requested by alice): alice requested it.`), created);
  assert.ok(created.includes(`Reason: ${REASON}.`), created);
  assert.ok(created.endsWith(` ${uiLink(s.name)}`), created);
  const ask = textOf(s.name, 'approval_required');
  assert.match(ask, /asks for approval by group sre-leads\./);
  assert.ok(ask.endsWith(` Approve: ${uiLink(s.name)}`), ask);
  assert.ok(!/Time left/.test(ask), 'no time left before it starts');
  is(await c.carol.post(sessPath(s.name, 'approve'), {}), 200);
  await waitFor(() => textOf(s.name, 'activated'), 5000, 'activated');
  assert.match(textOf(s.name, 'approved'), /: carol approved it\. http/);
  assert.match(textOf(s.name, 'activated'), /: airlock: it is active\. Time left: (1h|59m)\. http/);
  is(await c.alice.post(sessPath(s.name, 'renew'), { extendBy: '30m' }), 200);
  await waitFor(() => textOf(s.name, 'renewed'), 5000, 'renewed');
  assert.match(textOf(s.name, 'renewed'), /: alice extended it by 30m\. Time left: (1h30m|1h29m)\./);
});

test('3304 names and reasons are escaped for Slack (&, <, >) and kept on one line', async () => {
  const reason = 'a <b>bold</b> & <!channel> ping\nsecond line';
  const s = is(await c.alice.post('/api/v1/debug-sessions', { template: 'ci-debug', agent: 'lab/hook', reason }), 201);
  await waitFor(() => textOf(s.name, 'created'), 5000, 'created');
  const t = textOf(s.name, 'created');
  assert.ok(t.includes('Reason: a &lt;b&gt;bold&lt;/b&gt; &amp; &lt;!channel&gt; ping second line.'), t);
  assert.ok(!/[<>\n]/.test(t), t);
});

test('3305 expiring carries timeLeft in seconds and its text says it', async () => {
  // 'quick' lasts 3 s, so it is within the 5-minute warning as soon as it starts
  const s = is(await c.alice.post('/api/v1/debug-sessions', { template: 'quick', agent: 'lab/hook' }), 201);
  await waitFor(() => textOf(s.name, 'expiring'), 5000, 'expiring');
  const e = got.find((x) => x.session === s.name && x.type === 'expiring');
  assert.ok(Number.isInteger(e.data.timeLeft) && e.data.timeLeft >= 1 && e.data.timeLeft <= 3, JSON.stringify(e.data));
  assert.ok(e.text.includes(`: airlock: it expires soon. Time left: ${e.data.timeLeft}s. ${uiLink(s.name)}`), e.text);
});
