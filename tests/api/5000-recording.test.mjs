// 5000: session recordings at the server (docs/recording.md): chunk uploads with the agent's
// credential, refusals of a wrong sequence or digest (noted in the audit events), the hash chain,
// the size cap, a required recording that fails, playback access and verification.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { agentOnline, agentPath, is, registerAgent, sessPath, setup, TEMPLATES, tmpl, waitState } from './lib.mjs';

let env;
let ctl;
let cred;
const c = {};
const AGENT = 'lab/rec';
const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');
const chainNext = (prev, b) => {
  const h = crypto.createHash('sha256');
  if (prev) h.update(Buffer.from(prev, 'hex'));
  return h.update(b).digest('hex');
};

function put(name, seq, body, { digest, final, token } = {}) {
  return c.anon.req('PUT', `${agentPath(AGENT)}/recordings/${name}/chunks/${seq}`, {
    raw: body,
    token: token ?? cred,
    headers: {
      'Content-Type': 'application/x-asciicast',
      'X-Chunk-SHA256': digest ?? sha(body),
      ...(final ? { 'X-Recording-Final': '1' } : {}),
    },
  });
}

async function active(template) {
  const s = is(await c.alice.post('/api/v1/debug-sessions', { template, agent: AGENT }), 201);
  await ctl.waitSession(s.name, (x) => x.state === 'Active');
  return s.name;
}

const events = async (name) => is(await c.alice.get(sessPath(name, 'events')), 200).events;
const header = '{"version": 2, "width": 80, "height": 24, "timestamp": 1, "title": "t", "env": {"TERM": "xterm"}}\n';

before(async () => {
  env = await setup({
    templates: [
      ...TEMPLATES,
      tmpl('rec', { allowed: { groups: ['developers'], users: [], agents: ['lab/*'] }, recording: { enabled: true, required: false } }),
      tmpl('rec-req', { allowed: { groups: ['developers'], users: [], agents: ['lab/*'] }, recording: { enabled: true, required: true, maxMiB: 1 } }),
    ],
  });
  for (const u of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank']) c[u] = await env.client(u);
  c.anon = env.anon;
  const reg = await registerAgent(c.erin, AGENT);
  cred = reg.credential;
  ctl = await agentOnline(env.srv, AGENT, cred);
});
after(async () => {
  await ctl?.close();
  await env?.close();
});

test('5001 the template and the agent\'s desired state say the session is recorded', async () => {
  const t = is(await c.alice.get('/api/v1/debug-session-templates/rec'), 200);
  assert.deepEqual(t.recording, { enabled: true, required: false, maxMiB: 256 });
  const open = is(await c.alice.get('/api/v1/debug-session-templates/open'), 200);
  assert.equal(open.recording.enabled, false);
  const s = is(await c.alice.post('/api/v1/debug-sessions', { template: 'rec', agent: AGENT }), 201);
  const d = await ctl.waitSession(s.name, (x) => x.state === 'Active');
  assert.deepEqual(d.recording, { enabled: true, required: false });
  const g = is(await c.alice.get(sessPath(s.name)), 200);
  assert.equal(g.status.recording.state, 'pending');
  assert.equal(g.status.recording.enabled, true);
});

test('5002 chunks in order are stored, chained, finished with the digest in the audit events', async () => {
  const name = await active('rec');
  const chunks = [header + '[0.1, "o", "$ "]\n', '[0.5, "o", "echo hi\\r\\n"]\n', '[0.9, "o", "hi\\r\\n"]\n'];
  let chain = '';
  for (let i = 0; i < chunks.length; i++) {
    const j = is(await put(name, i, chunks[i], { final: i === chunks.length - 1 }), 200, `chunk ${i}`);
    chain = chainNext(chain, Buffer.from(chunks[i]));
    assert.equal(j.sha256, chain, `chain after chunk ${i}`);
  }
  const file = path.join(env.srv.dir, 'recordings', `${name}.cast`);
  assert.equal(fs.readFileSync(file, 'utf8'), chunks.join(''));
  assert.equal(fs.statSync(file).mode & 0o777, 0o600, 'the file is 0600');
  const ev = await events(name);
  const fin = ev.find((e) => e.type === 'recording_finished');
  assert.ok(ev.some((e) => e.type === 'recording_started'), 'recording_started');
  assert.deepEqual({ sha256: fin.data.sha256, bytes: fin.data.bytes, chunks: fin.data.chunks },
    { sha256: chain, bytes: Buffer.byteLength(chunks.join('')), chunks: 3 });
  const g = await waitState(c.alice, name, (s) => s.status.recording.state === 'finished');
  assert.equal(g.status.recording.sha256, chain);
  // playback: the .cast for those who may see the session, 404 otherwise
  const r = await c.alice.get(sessPath(name, 'recording'));
  is(r, 200);
  assert.match(r.headers['content-type'], /^application\/x-asciicast/);
  assert.equal(r.text, chunks.join(''));
  is(await c.carol.get(sessPath(name, 'recording')), 404, 'carol approves nothing of "rec"');
  is(await c.frank.get(sessPath(name, 'recording')), 404);
  is(await c.dave.get(sessPath(name, 'recording')), 200, 'an admin');
  // a finished recording takes no more chunks
  is(await put(name, 3, '[1.0, "o", "x"]\n'), 409);
  // verification: intact, then one flipped byte is "altered" at the chunk that holds it
  assert.equal(is(await c.alice.get(sessPath(name, 'recording/verify')), 200).integrity, 'intact');
  const buf = fs.readFileSync(file);
  buf[buf.length - 5] ^= 1;
  fs.writeFileSync(file, buf);
  const v = is(await c.alice.get(sessPath(name, 'recording/verify')), 200);
  assert.equal(v.integrity, 'altered');
  assert.equal(v.firstBadChunk, 2);
  const g2 = is(await c.alice.get(sessPath(name)), 200);
  assert.equal(g2.status.recording.integrity, 'altered', 'the session says so too');
});

test('5003 a wrong sequence or digest is refused and noted; a repeated chunk is accepted once', async () => {
  const name = await active('rec');
  is(await put(name, 0, header), 200);
  const dup = is(await put(name, 0, header), 200, 'the same chunk again');
  assert.equal(dup.duplicate, true);
  const gap = await put(name, 2, '[1, "o", "x"]\n');
  is(gap, 409, 'chunk 2 before chunk 1');
  assert.match(gap.json.error, /expected chunk 1, got 2/);
  const bad = await put(name, 1, '[1, "o", "x"]\n', { digest: sha('something else') });
  is(bad, 400, 'wrong digest');
  assert.match(bad.json.error, /SHA-256/);
  is(await put(name, 1, '[1, "o", "x"]\n', { digest: 'nothex' }), 400, 'malformed digest');
  is(await put(name, 'x', '[1, "o", "x"]\n'), 400, 'chunk number not a number');
  is(await put(name, 0, 'other\n'), 409, 'chunk 0 again with other bytes');
  const notes = (await events(name)).filter((e) => e.type === 'recording_rejected');
  assert.equal(notes.length, 3, JSON.stringify(notes));
  assert.match(notes[0].data.reason, /expected chunk 1/);
  is(await put(name, 1, '[1, "o", "x"]\n'), 200, 'the right chunk still goes in');
  const g = await waitState(c.alice, name, (s) => s.status.recording.chunks === 2);
  assert.equal(g.status.recording.bytes, Buffer.byteLength(header + '[1, "o", "x"]\n'));
});

test('5004 the agent credential: another agent\'s or none is 401; a session not recorded is 409', async () => {
  const name = await active('rec');
  is(await put(name, 0, header, { token: 'not-a-credential' }), 401);
  is(await put(name, 0, header, { token: '' }), 401, 'no credential');
  const plain = await active('open');
  is(await put(plain, 0, header), 409, 'template "open" does not record');
  is(await put('ds-aaaaaaaaaa', 0, header), 404);
  is(await c.alice.get(sessPath(plain, 'recording')), 404, 'no recording');
  // a chunk may be up to 1 MiB (JSON bodies stay at 64 KiB); one byte more is 413
  const line = (n) => '[0.1, "o", "' + 'y'.repeat(n - 15) + '"]\n'; // n bytes
  is(await put(name, 0, line(1024 * 1024)), 200, 'a chunk of exactly 1 MiB');
  is(await put(name, 1, line(1024 * 1024 + 1)), 413, 'a chunk of 1 MiB + 1');
});

test('5005 the size cap stops the recording; a required one ends the session with the reason', async () => {
  const name = await active('rec-req');
  const big = '[0.1, "o", "' + 'x'.repeat(60000) + '"]\n';
  let seq = 0;
  let r;
  for (; seq < 40; seq++) {
    r = await put(name, seq, big);
    if (r.status !== 200) break;
  }
  is(r, 413, 'past maxMiB: 1');
  assert.equal(seq, 17, 'seventeen chunks of 60 KB fit in 1 MiB');
  const g = await waitState(c.alice, name, (s) => s.status.state === 'Failed');
  assert.match(g.status.message, /required recording stopped: size cap of 1 MiB reached/);
  assert.equal(g.status.recording.state, 'stopped');
  const ev = await events(name);
  assert.ok(ev.some((e) => e.type === 'recording_stopped'), JSON.stringify(ev.map((e) => e.type)));
  await ctl.waitSession(name, (x) => x.state === 'Failed');
});

test('5006 an agent that cannot record a required recording ends the session', async () => {
  const name = await active('rec-req');
  is(await c.anon.req('POST', `${agentPath(AGENT)}/recordings/${name}/failure`, { body: { reason: 'tmux pipe-pane failed' }, token: cred }), 200);
  const g = await waitState(c.alice, name, (s) => s.status.state === 'Failed');
  assert.match(g.status.message, /tmux pipe-pane failed/);
  const bad = await c.anon.req('POST', `${agentPath(AGENT)}/recordings/${name}/failure`, { body: { reason: 'x', extra: 1 }, token: cred });
  is(bad, 400);
});
