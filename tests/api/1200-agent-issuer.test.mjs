// 1200: tokens from the kind: agent issuer (CI jobs). They may register agents and nothing else;
// `require` globs filter which jobs are accepted at all.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { ciAgentName, is, REASON, sshKey } from './lib.mjs';
import { setup } from './lib.mjs';

let env;
before(async () => { env = await setup(); });
after(async () => { await env?.close(); });

test('1201 an agent-issuer token on a person\'s endpoints is 403', async () => {
  const ci = await env.client('ci-web');
  is(await ci.get('/api/v1/me'), 403, 'GET /me');
  is(await ci.get('/api/v1/debug-sessions'), 403, 'GET /debug-sessions');
  is(await ci.post('/api/v1/debug-sessions', { template: 'open', agent: ciAgentName('ci-web') }), 403, 'POST /debug-sessions');
  is(await ci.get('/api/v1/debug-session-templates'), 403, 'GET templates');
  is(await ci.get('/api/v1/agents'), 403, 'GET /agents');
});

test('1202 an agent-issuer token may POST /api/v1/agents; the name comes from its claims', async () => {
  const ci = await env.client('ci-web');
  const key = sshKey('ci-host');
  const r = await ci.post('/api/v1/agents', { labels: { repo: 'acme/web' }, hostKeys: [key.pub], version: '1.2.0' });
  const j = is(r, 201);
  assert.equal(j.agent.name, 'gh/acme/web/42-1');
  assert.deepEqual(j.agent.labels, { repo: 'acme/web' });
  assert.deepEqual(j.agent.hostKeyFingerprints, [key.fp]);
  assert.equal(j.agent.version, '1.2.0');
  assert.equal(j.agent.online, false, 'not online before its control channel connects');
  assert.equal(j.session, null);
  assert.ok(j.controlUrl.endsWith('/api/v1/agents/gh%2Facme%2Fweb%2F42-1/control'), j.controlUrl);
  assert.ok(j.controlUrl.startsWith(env.base.replace(/^http/, 'ws')), j.controlUrl);
});

test('1203 a CI token naming another agent is 403', async () => {
  const ci = await env.client('ci-web2');
  is(await ci.post('/api/v1/agents', { name: 'lab/prod-db', hostKeys: [sshKey().pub] }), 403);
  is(await ci.post('/api/v1/agents', { name: 'gh/acme/web/42-1', hostKeys: [sshKey().pub] }), 403, 'another job\'s name');
  // its own name, spelt out, is fine
  is(await ci.post('/api/v1/agents', { name: ciAgentName('ci-web2'), hostKeys: [sshKey().pub] }), 201);
});

test('1204 a CI token failing the issuer\'s require globs (repository_owner) is 401 everywhere', async () => {
  const evil = await env.client('ci-evil');
  is(await evil.post('/api/v1/agents', { hostKeys: [sshKey().pub] }), 401);
  is(await evil.get('/api/v1/me'), 401);
});

test('1205 a person outside agentRegistrars may not register agents; a registrar must name the agent', async () => {
  const alice = await env.client('alice');
  is(await alice.post('/api/v1/agents', { name: 'lab/alices-box', hostKeys: [sshKey().pub] }), 403);
  const erin = await env.client('erin');
  const r = await erin.post('/api/v1/agents', { hostKeys: [sshKey().pub] });
  is(r, 400, 'no name');
  const ok = is(await erin.post('/api/v1/agents', { name: 'lab/erins-box', hostKeys: [sshKey().pub] }), 201);
  assert.equal(ok.agent.registeredBy, 'erin');
});

test('1206 a CI job registers with a session: owned by the actor, needs approval per the template', async () => {
  const ci = await env.client('ci-web3');
  const r = await ci.post('/api/v1/agents', {
    hostKeys: [sshKey().pub],
    session: { template: 'ci-debug', requestedDuration: '30m', reason: REASON, invitedParticipants: ['alice'] },
  });
  const j = is(r, 201);
  assert.ok(j.session, 'session created');
  assert.equal(j.session.spec.agent, ciAgentName('ci-web3'));
  assert.equal(j.session.spec.requestedBy, 'bob', 'ownerClaim actor');
  assert.equal(j.session.spec.requestedDuration, '30m');
  assert.deepEqual(j.session.spec.invitedParticipants, ['alice']);
  assert.equal(j.session.status.state, 'PendingApproval');
  assert.equal(j.session.status.approval.required, true);
  const bob = await env.client('bob');
  const s = is(await bob.get(`/api/v1/debug-sessions/${j.session.name}`), 200, 'the actor sees it');
  assert.equal(s.canTerminate, true);
});

test('1207 the sandbox CI job is auto-approved by autoApproveFor.agents and waits for its agent', async () => {
  const ci = await env.client('ci-sandbox');
  const j = is(await ci.post('/api/v1/agents', { hostKeys: [sshKey().pub], session: { template: 'ci-debug', reason: REASON } }), 201);
  assert.equal(j.session.spec.agent, 'gh/acme/sandbox/7-1');
  assert.equal(j.session.status.approval.required, false);
  assert.equal(j.session.status.state, 'Pending');
  assert.equal(j.session.status.message, 'waiting for agent');
  assert.equal(j.session.spec.requestedDuration, '1h', 'template default');
});

test('1208 a CI registration\'s session follows the template rules: unknown template 400, agent not allowed 403', async () => {
  const ci = await env.client('ci-web2');
  const r = await ci.post('/api/v1/agents', { hostKeys: [sshKey().pub], session: { template: 'nope', reason: REASON } });
  is(r, 400, 'unknown template');
  // lab-only allows lab/allowed-* agents only: a gh/acme/... agent may not use it
  is(await ci.post('/api/v1/agents', { hostKeys: [sshKey().pub], session: { template: 'lab-only' } }), 403, 'agent not allowed by the template');
  is(await ci.post('/api/v1/agents', { hostKeys: [sshKey().pub], session: { template: 'ci-debug', requestedDuration: '9h', reason: REASON } }), 400, 'duration above maxDuration');
});
