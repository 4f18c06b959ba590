// 2700: how templates match people and agents: users by username or e-mail (case-insensitive),
// group globs (case-insensitive), approvers by user, autoApproveFor.users, agent globs where
// `*` crosses `/` and case matters.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { is, registerAgent, sessPath, setup, TEMPLATES, tmpl } from './lib.mjs';

const EXTRA = [
  tmpl('frank-only', { allowed: { groups: [], users: ['Frank@Example.COM'], agents: ['lab/*'] } }),
  tmpl('glob-groups', { allowed: { groups: ['DEV*'], users: [], agents: ['lab/*'] } }),
  tmpl('user-approver', {
    allowed: { groups: ['developers'], users: [], agents: ['lab/*'] },
    approvers: { groups: [], users: ['ERIN@example.com'], autoApproveFor: { groups: [], users: [], agents: [] } },
  }),
  tmpl('auto-bob', {
    allowed: { groups: ['developers'], users: [], agents: ['lab/*'] },
    approvers: { groups: ['sre-leads'], users: [], autoApproveFor: { groups: [], users: ['BOB'], agents: [] } },
  }),
  tmpl('case-agents', { allowed: { groups: ['developers'], users: [], agents: ['Lab/Upper/*'] } }),
];

let env;
const c = {};
const create = (who, template, agent = 'lab/pm/a') => c[who].post('/api/v1/debug-sessions', { template, agent });

before(async () => {
  env = await setup({ templates: [...TEMPLATES, ...EXTRA] });
  for (const u of ['alice', 'bob', 'carol', 'erin', 'frank']) c[u] = await env.client(u);
  await registerAgent(c.erin, 'lab/pm/a');
  await registerAgent(c.erin, 'lab/upper/x');
  await registerAgent(c.erin, 'Lab/Upper/y');
});
after(async () => { await env?.close(); });

test('2701 allowed.users matches the e-mail case-insensitively', async () => {
  is(await create('frank', 'frank-only'), 201);
  is(await create('alice', 'frank-only'), 403);
  const t = is(await c.frank.get('/api/v1/debug-session-templates'), 200);
  assert.deepEqual(t.templates.map((x) => x.name), ['frank-only']);
});

test('2702 group globs match case-insensitively', async () => {
  is(await create('alice', 'glob-groups'), 201, '"developers" matches DEV*');
  is(await create('carol', 'glob-groups'), 403, '"sre-leads" does not');
});

test('2703 approvers.users by e-mail: that user sees, may approve, and is the only approver', async () => {
  const s = is(await create('alice', 'user-approver'), 201);
  assert.equal(s.status.state, 'PendingApproval');
  const e = is(await c.erin.get(sessPath(s.name)), 200, 'the approver sees it');
  assert.equal(e.canApprove, true);
  is(await c.carol.post(sessPath(s.name, 'approve'), {}), 404, 'sre-leads are not approvers of this template');
  const a = is(await c.erin.post(sessPath(s.name, 'approve'), {}), 200);
  assert.equal(a.status.approval.approvedBy, 'erin');
});

test('2704 autoApproveFor.users (username, any case)', async () => {
  const b = is(await create('bob', 'auto-bob'), 201);
  assert.equal(b.status.approval.required, false);
  const a = is(await create('alice', 'auto-bob'), 201);
  assert.equal(a.status.approval.required, true);
  assert.equal(a.status.state, 'PendingApproval');
});

test('2705 agent globs are case-sensitive', async () => {
  is(await create('alice', 'case-agents', 'Lab/Upper/y'), 201);
  is(await create('alice', 'case-agents', 'lab/upper/x'), 403);
});
