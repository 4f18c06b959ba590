// 2600: webhooks from the outbox: each configured endpoint gets the events it asked for, as JSON
// POSTs {type, session, actor, at, data}; a failed delivery is retried.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';

import { is, registerAgent, sessPath, setup, sleep } from './lib.mjs';

let env;
let hook;
const got = { some: [], all: [], flaky: [] };
let flakyFailures = 0;
const c = {};

before(async () => {
  hook = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const key = req.url.slice(1);
      let j;
      try { j = JSON.parse(body); } catch { j = { unparsable: body }; }
      if (key === 'flaky' && flakyFailures < 1) {
        flakyFailures++;
        res.writeHead(500).end('try again');
        return;
      }
      (got[key] ||= []).push({ method: req.method, ctype: req.headers['content-type'], body: j });
      res.writeHead(204).end();
    });
  });
  await new Promise((r) => hook.listen(0, '127.0.0.1', r));
  const u = `http://127.0.0.1:${hook.address().port}`;
  env = await setup({
    extra: {
      notifications: {
        webhooks: [
          { url: `${u}/some`, events: ['created', 'approved', 'terminated'] },
          { url: `${u}/all` },
          { url: `${u}/flaky`, events: ['created'] },
        ],
      },
    },
  });
  for (const x of ['alice', 'carol', 'erin']) c[x] = await env.client(x);
  await registerAgent(c.erin, 'lab/hooks');
});
after(async () => {
  await env?.close();
  hook?.closeAllConnections?.();
  await new Promise((r) => hook?.close(r));
});

async function waitFor(pred, ms, what) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}: ${JSON.stringify(got).slice(0, 1500)}`);
    await sleep(100); // the poll interval of this wait for the event
  }
}

test('2601 each webhook receives the events it subscribed to, in order, as JSON', async () => {
  const s = is(await c.alice.post('/api/v1/debug-sessions', { template: 'strict', agent: 'lab/hooks' }), 201);
  is(await c.carol.post(sessPath(s.name, 'approve'), {}), 200);
  is(await c.alice.post(sessPath(s.name, 'terminate'), {}), 200);
  const mine = (k) => got[k].filter((e) => e.body.session === s.name || e.body.session?.name === s.name);
  await waitFor(() => mine('some').length >= 3, 8000, '3 events on /some');
  await sleep(500); // a timer is right: no fourth event (a duplicate) may follow
  const some = mine('some');
  assert.deepEqual(some.map((e) => e.body.type), ['created', 'approved', 'terminated']);
  for (const e of some) {
    assert.equal(e.method, 'POST');
    assert.match(e.ctype || '', /^application\/json/);
    assert.ok(Date.parse(e.body.at) > 0, 'at is a time');
  }
  assert.equal(some[0].body.actor, 'alice');
  assert.equal(some[1].body.actor, 'carol');
  await waitFor(() => mine('all').some((e) => e.body.type === 'terminated'), 8000, 'terminated on /all');
  const all = mine('all').map((e) => e.body.type);
  assert.ok(all.includes('approval_required'), `the unfiltered hook gets every event: ${all}`);
});

test('2602 a failed delivery (HTTP 500) is retried until it succeeds', async () => {
  await waitFor(() => got.flaky.length >= 1, 20000, 'a retried delivery on /flaky');
  assert.equal(flakyFailures, 1);
  assert.equal(got.flaky[0].body.type, 'created');
});
