// 2500: time-driven transitions with short limits: expiry at expiresAt, approval timeout,
// agent gone past agentGracePeriod (and a short agent restart changing nothing).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { agentOnline, is, registerAgent, sessPath, setup, sleep, TEMPLATES } from './lib.mjs';

let env;
const c = {};
const reg = {};

before(async () => {
  env = await setup({ extra: { approvalTimeout: '3s', agentGracePeriod: '3s' }, templates: TEMPLATES });
  for (const u of ['alice', 'carol', 'erin']) c[u] = await env.client(u);
  for (const n of ['lab/reap-1', 'lab/reap-2', 'lab/reap-3']) reg[n] = await registerAgent(c.erin, n);
});
after(async () => { await env?.close(); });

/** Polls until the session's state is in `states`; returns [session, Date.now() when seen]. */
async function until(name, states, timeout) {
  const end = Date.now() + timeout;
  for (;;) {
    const r = await c.alice.get(sessPath(name));
    if (states.includes(r.json?.status?.state)) return [r.json, Date.now()];
    if (Date.now() > end) assert.fail(`${name} not ${states} after ${timeout} ms: ${JSON.stringify(r.json?.status)}`);
    await sleep(100); // the poll interval of this wait for the state
  }
}

test('2501 a 3s session moves to Expired within ~2 s of expiresAt, not before; the agent is told', async () => {
  const ctl = await agentOnline(env.srv, 'lab/reap-1', reg['lab/reap-1'].credential);
  try {
    const s = is(await c.alice.post('/api/v1/debug-sessions', { template: 'quick', agent: 'lab/reap-1', requestedDuration: '3s' }), 201);
    const act = await until(s.name, ['Active'], 3000);
    const exp = Date.parse(act[0].status.expiresAt);
    assert.equal(exp - Date.parse(act[0].status.startsAt), 3000);
    const [done, seenAt] = await until(s.name, ['Expired', 'Terminated', 'Failed'], 9000);
    assert.equal(done.status.state, 'Expired');
    // expiresAt is whole seconds and we poll every 100 ms
    console.log(`Expired seen ${seenAt - exp} ms after expiresAt`);
    assert.ok(seenAt <= exp + 2200, `seen Expired ${seenAt - exp} ms after expiresAt`);
    assert.ok(seenAt >= exp - 1000, `expired ${exp - seenAt} ms early`);
    await ctl.waitSession(s.name, (x) => x.state === 'Expired', { timeout: 2000 });
    const ev = is(await c.alice.get(sessPath(s.name, 'events')), 200).events;
    assert.equal(ev.filter((e) => e.type === 'expired').length, 1);
    is(await c.alice.post(sessPath(s.name, 'renew'), { extendBy: '10s' }), 409, 'renew an Expired session');
  } finally { await ctl.close(); }
});

test('2502 approval timeout: PendingApproval becomes Failed; approving afterwards is 409', async () => {
  const s = is(await c.alice.post('/api/v1/debug-sessions', { template: 'strict', agent: 'lab/reap-2' }), 201);
  assert.equal(s.status.state, 'PendingApproval');
  const [f] = await until(s.name, ['Failed', 'Terminated', 'Expired'], 8000);
  assert.equal(f.status.state, 'Failed');
  is(await c.carol.post(sessPath(s.name, 'approve'), {}), 409);
  const ev = is(await c.alice.get(sessPath(s.name, 'events')), 200).events;
  assert.ok(ev.some((e) => e.type === 'failed'), ev.map((e) => e.type).join(','));
});

test('2503 approve right at the timeout is refused too (checked at approve time)', async () => {
  const s = is(await c.alice.post('/api/v1/debug-sessions', { template: 'strict', agent: 'lab/reap-2' }), 201);
  await sleep(3300); // a timer is right: the approval timeout (3 s) must have passed, whether or not the reaper has acted
  const r = await c.carol.post(sessPath(s.name, 'approve'), {});
  is(r, 409);
  const g = is(await c.alice.get(sessPath(s.name)), 200);
  assert.equal(g.status.state, 'Failed');
});

test('2504 an agent restart shorter than the grace period changes nothing', async () => {
  const cred = reg['lab/reap-3'].credential;
  let ctl = await agentOnline(env.srv, 'lab/reap-3', cred);
  const s = is(await c.alice.post('/api/v1/debug-sessions', { template: 'open', agent: 'lab/reap-3' }), 201);
  await until(s.name, ['Active'], 3000);
  await ctl.close();
  await sleep(1000); // a timer is right: the outage itself, shorter than the 3 s grace
  ctl = await agentOnline(env.srv, 'lab/reap-3', cred);
  await ctl.waitSession(s.name, (x) => x.state === 'Active', { timeout: 3000 });
  await sleep(3500); // a timer is right: nothing must happen past the end of the 3 s grace
  const g = is(await c.alice.get(sessPath(s.name)), 200);
  assert.equal(g.status.state, 'Active', 'still Active after the reconnect');
  assert.equal(g.status.agent.online, true);
  // now gone for good: Failed with "agent gone" after the grace period
  await ctl.close();
  const closedAt = Date.now();
  const off = is(await c.alice.get(sessPath(s.name)), 200);
  assert.equal(off.status.state, 'Active', 'not failed at once');
  const [f, seenAt] = await until(s.name, ['Failed', 'Expired', 'Terminated'], 10000);
  assert.equal(f.status.state, 'Failed');
  assert.match(f.status.message ?? '', /agent gone/i);
  // times are whole seconds on the server: "offline since" may be rounded down by up to 1 s
  assert.ok(seenAt - closedAt >= 1900, `failed ${seenAt - closedAt} ms after the agent left: before the 3s grace period`);
  assert.ok(seenAt - closedAt <= 3000 + 47000, 'within the 45 s ping timeout plus grace at most');
});

test('2505 ended sessions are deleted after retention, with their events', async () => {
  const { startAirlock, client: mk } = await import('./lib.mjs');
  const s2 = await startAirlock({ oidc: env.oidc, ci: env.ci, extra: { retention: '2s' } });
  try {
    const alice = mk(s2, await env.token('alice'));
    const erin = mk(s2, await env.token('erin'));
    await registerAgent(erin, 'lab/ret');
    const s = is(await alice.post('/api/v1/debug-sessions', { template: 'open', agent: 'lab/ret' }), 201);
    const keep = is(await alice.post('/api/v1/debug-sessions', { template: 'open', agent: 'lab/ret' }), 201);
    is(await alice.post(sessPath(s.name, 'terminate'), {}), 200);
    const end = Date.now() + 12000;
    let r;
    for (;;) {
      r = await alice.get(sessPath(s.name));
      if (r.status === 404 || Date.now() > end) break;
      await sleep(250); // the poll interval of this wait for the deletion
    }
    assert.equal(r.status, 404, 'the ended session is gone after retention');
    is(await alice.get(sessPath(s.name, 'events')), 404);
    const l = is(await alice.get('/api/v1/debug-sessions'), 200);
    assert.deepEqual(l.sessions.map((x) => x.name), [keep.name], 'the live one stays');
  } finally { await s2.stop(); }
});
