// 3200: the browser terminal (issue 13): POST …/terminal-ticket and the …/terminal WebSocket,
// with a `ws` client playing the agent (the `terminal` control message, the dial-back, the
// splice). Who may type and who may only watch, single-use tickets, the template switch,
// read-only input refused at the server, and the stream closed at once on leave and end.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { agentOnline, agentPath, is, openWs, registerAgent, sessPath, setup, sshKey, TEMPLATES, tmpl, whenClosed } from './lib.mjs';

let env;
const c = {};
let reg;
let ctl;
const AG = 'lab/term/host';

before(async () => {
  env = await setup({
    templates: [...TEMPLATES,
      tmpl('no-browser', { terminalSharing: { enabled: true, provider: 'tmux', maxParticipants: 5, readOnlyParticipants: false, browser: false } }),
      tmpl('no-shell', { allowedOperations: { shell: false, exec: true, sftp: false, portForward: false } })],
  });
  for (const u of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank']) c[u] = await env.client(u);
  reg = await registerAgent(c.erin, AG);
  ctl = await agentOnline(env.srv, AG, reg.credential);
});
after(async () => {
  await ctl?.close();
  await env?.close();
});

/** An Active session of template (alice's), bob invited. */
async function active(template = 'open', body = {}) {
  const s = is(await c.alice.post('/api/v1/debug-sessions', { agent: AG, template, invitedParticipants: ['bob'], ...body }), 201);
  if (template === 'strict' || template === 'ci-debug') is(await c.carol.post(sessPath(s.name, 'approve'), {}), 200);
  await ctl.waitSession(s.name, (x) => x.state === 'Active');
  return s;
}
const ticket = (who, name, body = {}) => c[who].post(sessPath(name, 'terminal-ticket'), body);

/** Opens the browser's side and answers as the agent: { browser, agent, msg } */
async function openTerminal(name, { query = '', token } = {}) {
  const from = ctl.messages.length;
  const b = await openWs(env.srv, `${sessPath(name, 'terminal')}${query}`, { token });
  assert.ok(b.ok, `terminal refused: ${b.status} ${b.text}`);
  const msg = await ctl.waitFor((m) => m.type === 'terminal' && m.session === name, { from, what: 'terminal message' });
  const a = await openWs(env.srv, `${agentPath(AG)}/tunnel/${encodeURIComponent(msg.conn)}`, { token: reg.credential });
  assert.ok(a.ok, `dial-back refused: ${a.status} ${a.text}`);
  return { browser: b.conn, agent: a.conn, msg };
}
/** The next message on a raw socket: { data, binary } */
const next = (conn) => new Promise((resolve) => conn.ws.once('message', (data, binary) => resolve({ data: Buffer.from(data), binary })));

test('3201 owners may type, approvers watch, outsiders see nothing (404), asking too much is 403', async () => {
  const s = await active('strict');
  const own = is(await ticket('alice', s.name), 200);
  assert.equal(own.mode, 'rw');
  assert.match(own.ticket, /^[A-Za-z0-9_-]{43}$/);
  assert.ok(own.url.endsWith(`${sessPath(s.name, 'terminal')}?ticket=${own.ticket}`), own.url);
  assert.ok(own.url.startsWith('ws://'), own.url);
  assert.equal(is(await ticket('carol', s.name), 200).mode, 'ro', 'an approver watches');
  assert.equal(is(await ticket('dave', s.name), 200).mode, 'ro', 'an admin watches');
  assert.equal(is(await ticket('alice', s.name, { mode: 'ro' }), 200).mode, 'ro', 'an owner may choose to watch');
  const more = is(await ticket('carol', s.name, { mode: 'rw' }), 403);
  assert.match(more.error, /only active owners and participants may type/);
  is(await ticket('frank', s.name), 404);
  const ws = await openWs(env.srv, sessPath(s.name, 'terminal'), { token: await env.token('frank') });
  assert.equal(ws.status, 404, 'an outsider\'s upgrade is 404 like GET');
  is(await ticket('alice', s.name, { mode: 'x' }), 400);
  is(await ticket('alice', s.name, { size: 1 }), 400);
  // a template without a shell: even the owner only watches
  const ns = await active('no-shell');
  assert.equal(is(await ticket('alice', ns.name), 200).mode, 'ro');
});

test('3202 a ticket opens the stream once: bytes both ways, resize reaches the agent, reuse is 401', async () => {
  const s = await active();
  const t = is(await ticket('alice', s.name), 200);
  const { browser, agent, msg } = await openTerminal(s.name, { query: `?ticket=${t.ticket}&cols=100&rows=30` });
  assert.deepEqual({ mode: msg.mode, cols: msg.cols, rows: msg.rows }, { mode: 'rw', cols: 100, rows: 30 });
  const atAgent = next(agent);
  browser.ws.send(Buffer.from('ls\r'), { binary: true });
  assert.deepEqual(await atAgent, { data: Buffer.from('ls\r'), binary: true });
  const atBrowser = next(browser);
  agent.ws.send(Buffer.from('\x1b[1mREADME\x1b[0m\r\n'), { binary: true });
  assert.equal((await atBrowser).data.toString(), '\x1b[1mREADME\x1b[0m\r\n');
  const resize = next(agent);
  browser.ws.send(JSON.stringify({ type: 'resize', cols: 120, rows: 40 }));
  const r = await resize;
  assert.equal(r.binary, false);
  assert.deepEqual(JSON.parse(r.data.toString()), { type: 'resize', cols: 120, rows: 40 });
  const again = await openWs(env.srv, `${sessPath(s.name, 'terminal')}?ticket=${t.ticket}`);
  assert.equal(again.status, 401, 'a used ticket');
  const other = await active();
  const t2 = is(await ticket('alice', s.name), 200);
  assert.equal((await openWs(env.srv, `${sessPath(other.name, 'terminal')}?ticket=${t2.ticket}`)).status, 401, 'another session\'s ticket');
  assert.equal((await openWs(env.srv, `${sessPath(s.name, 'terminal')}?ticket=${t2.ticket}`)).status, 401, 'a ticket tried elsewhere is used up');
  assert.equal((await openWs(env.srv, sessPath(s.name, 'terminal'))).status, 401, 'no credential');
  const t3 = is(await ticket('alice', s.name), 200);
  assert.equal((await openWs(env.srv, `${sessPath(s.name, 'terminal')}?ticket=${t3.ticket}&cols=0`)).status, 400, 'cols out of range');
  await browser.close();
  await agent.close();
});

test('3203 a viewer\'s keystrokes are refused at the server (1008) and never reach the agent', async () => {
  const s = await active('strict');
  const t = is(await ticket('carol', s.name), 200);
  const { browser, agent, msg } = await openTerminal(s.name, { query: `?ticket=${t.ticket}` });
  assert.equal(msg.mode, 'ro');
  // output flows to the viewer, and a resize (text) is allowed
  const atBrowser = next(browser);
  agent.ws.send(Buffer.from('$ whoami\r\n'), { binary: true });
  assert.equal((await atBrowser).data.toString(), '$ whoami\r\n');
  const resize = next(agent);
  browser.ws.send(JSON.stringify({ type: 'resize', cols: 90, rows: 20 }));
  assert.equal((await resize).binary, false);
  const got = [];
  agent.ws.on('message', (d, bin) => { if (bin) got.push(Buffer.from(d).toString()); });
  const bClosed = whenClosed(browser, 3000);
  const aClosed = whenClosed(agent, 3000);
  browser.ws.send(Buffer.from('rm -rf /\r'), { binary: true });
  assert.ok(await bClosed, 'the viewer\'s stream is closed');
  assert.equal(browser.closeCode, 1008);
  assert.match(browser.closeReason, /read-only/);
  assert.ok(await aClosed, 'the agent side is closed too');
  assert.deepEqual(got, [], 'no keystroke reached the agent');
  // with a bearer, asking for rw as a viewer is refused before the upgrade
  const rw = await openWs(env.srv, `${sessPath(s.name, 'terminal')}?mode=rw`, { token: await env.token('carol') });
  assert.equal(rw.status, 403);
});

test('3204 terminalSharing.browser: false turns it off (403), and the session JSON says so', async () => {
  const s = await active('no-browser');
  const g = is(await c.alice.get(sessPath(s.name)), 200);
  assert.equal(g.status.terminalSharing.browser, false);
  const tp = is(await c.alice.get('/api/v1/debug-session-templates/no-browser'), 200);
  assert.equal(tp.terminalSharing.browser, false);
  const r = is(await ticket('alice', s.name), 403);
  assert.match(r.error, /turned off/);
  const ws = await openWs(env.srv, sessPath(s.name, 'terminal'), { token: await env.token('alice') });
  assert.equal(ws.status, 403);
});

test('3205 an ended session: no ticket (409), and an open stream closes within 1 s of the end', async () => {
  const s = await active();
  const { browser, agent } = await openTerminal(s.name, { token: await env.token('alice') });
  const closed = whenClosed(browser, 1000); // the 1 s the issue allows
  is(await c.alice.post(sessPath(s.name, 'terminate'), {}), 200);
  assert.ok(await closed, 'the stream closed within 1 s of the end (the agent is still online)');
  assert.equal(browser.closeCode, 1000);
  await agent.close();
  is(await ticket('alice', s.name), 409);
});

test('3206 a participant who leaves loses their stream within 1 s; the owner\'s stays', async () => {
  const s = await active();
  is(await c.bob.post(sessPath(s.name, 'join'), { sshPublicKey: sshKey().pub }), 200);
  const bt = is(await ticket('bob', s.name), 200);
  assert.equal(bt.mode, 'rw', 'an active participant may type');
  const bob = await openTerminal(s.name, { query: `?ticket=${bt.ticket}` });
  const alice = await openTerminal(s.name, { token: await env.token('alice') });
  const closed = whenClosed(bob.browser, 1000); // the 1 s the issue allows
  is(await c.bob.post(sessPath(s.name, 'leave'), {}), 200);
  assert.ok(await closed, 'bob\'s stream closed within 1 s');
  assert.match(bob.browser.closeReason, /left/);
  const atAlice = next(alice.browser);
  alice.agent.ws.send(Buffer.from('still here'), { binary: true });
  assert.equal((await atAlice).data.toString(), 'still here');
  // bob, no longer a participant, may still see the session as an invitee: only watch
  assert.equal(is(await ticket('bob', s.name), 200).mode, 'ro');
  for (const x of [bob.agent, alice.browser, alice.agent]) await x.close();
});

test('3207 expiry closes an open stream at once: within 2 s of expiresAt (whole seconds, a 1 s reaper tick)', async () => {
  const s = await active('quick');
  const g = is(await c.alice.get(sessPath(s.name)), 200);
  const { browser, agent } = await openTerminal(s.name, { token: await env.token('alice') });
  const ended = new Promise((resolve) => browser.ws.once('close', () => resolve(Date.now())));
  const at = await Promise.race([ended, new Promise((r) => setTimeout(() => r(null), 15000))]); // the deadline for the expiry
  assert.ok(at, 'the stream closed at expiry');
  const late = at - Date.parse(g.status.expiresAt);
  assert.ok(late < 1000 + 1000, `closed ${late} ms after expiresAt (the reaper runs every second, expiresAt has whole seconds)`);
  assert.equal(is(await c.alice.get(sessPath(s.name)), 200).status.state, 'Expired');
  await agent.close();
});
