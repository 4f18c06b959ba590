// 3300: notifications. Every audit event a webhook subscribes to is POSTed as JSON to a real
// HTTP receiver on loopback; a receiver that fails gets the event again later (outbox, back-off).
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';

import { freePort, is, REASON, sessPath, setup, sshKey, until } from './lib.mjs';

let env, hook, hookPort;
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
  is(await c.erin.post('/api/v1/agents', { name: 'lab/hook', hostKeys: [sshKey('h').pub] }), 201);
});
after(async () => { await env?.close(); hook?.close(); });

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
