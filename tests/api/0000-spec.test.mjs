// 0000: openapi/openapi.yaml itself: complete for DESIGN.md section 6, every $ref resolves,
// every response schema compiles, and every operation lists the error statuses it can give.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { spec, schema, specPath } from './lib.mjs';

const OPS = [
  ['get', '/healthz'], ['get', '/readyz'], ['get', '/metrics'],
  ['get', '/api/v1/config'], ['post', '/api/v1/dev/token'], ['get', '/api/v1/me'],
  ['get', '/api/v1/debug-sessions'], ['post', '/api/v1/debug-sessions'],
  ['get', '/api/v1/debug-sessions/{name}'],
  ['post', '/api/v1/debug-sessions/{name}/approve'], ['post', '/api/v1/debug-sessions/{name}/reject'],
  ['post', '/api/v1/debug-sessions/{name}/join'], ['post', '/api/v1/debug-sessions/{name}/leave'],
  ['post', '/api/v1/debug-sessions/{name}/renew'], ['post', '/api/v1/debug-sessions/{name}/terminate'],
  ['post', '/api/v1/debug-sessions/{name}/invite'], ['get', '/api/v1/debug-sessions/{name}/events'],
  ['post', '/api/v1/debug-sessions/{name}/participants/{user}'],
  ['delete', '/api/v1/debug-sessions/{name}/participants/{user}'],
  ['get', '/api/v1/debug-sessions/{name}/connect'],
  ['post', '/api/v1/debug-sessions/{name}/terminal-ticket'], ['get', '/api/v1/debug-sessions/{name}/terminal'],
  ['get', '/api/v1/debug-session-templates'], ['get', '/api/v1/debug-session-templates/{name}'],
  ['get', '/api/v1/agents'], ['post', '/api/v1/agents'], ['get', '/api/v1/agents/{name}'],
  ['get', '/api/v1/agents/{name}/control'], ['get', '/api/v1/agents/{name}/tunnel/{conn}'],
  // issue 10: the agent bundle and the CI snippets
  ['get', '/download/{file}'], ['get', '/api/v1/snippets/{ci}'],
  // recordings (docs/recording.md)
  ['get', '/api/v1/debug-sessions/{name}/recording'], ['get', '/api/v1/debug-sessions/{name}/recording/verify'],
  ['put', '/api/v1/agents/{name}/recordings/{session}/chunks/{seq}'],
  ['post', '/api/v1/agents/{name}/recordings/{session}/failure'],
];
const PUBLIC = new Set(['/healthz', '/readyz', '/metrics', '/api/v1/config', '/api/v1/dev/token', '/download/{file}']);
const WS = (p) => /\/(connect|control|terminal|tunnel\/\{conn\})$/.test(p);

function walk(node, visit, at = '#') {
  if (Array.isArray(node)) node.forEach((v, i) => walk(v, visit, `${at}/${i}`));
  else if (node && typeof node === 'object') {
    visit(node, at);
    for (const [k, v] of Object.entries(node)) walk(v, visit, `${at}/${k}`);
  }
}

test('0001 spec is OpenAPI 3.1 and lists every endpoint of DESIGN.md section 6, no more', () => {
  assert.match(spec.openapi, /^3\.1\./);
  for (const [m, p] of OPS) assert.ok(spec.paths[p]?.[m], `missing ${m.toUpperCase()} ${p}`);
  const listed = new Set(OPS.map(([m, p]) => `${m} ${p}`));
  for (const [p, item] of Object.entries(spec.paths)) {
    for (const m of ['get', 'post', 'put', 'patch', 'delete']) {
      if (item[m]) assert.ok(listed.has(`${m} ${p}`), `extra operation ${m} ${p}`);
    }
  }
});

test('0002 every $ref resolves', () => {
  walk(spec, (n, at) => {
    if (typeof n.$ref !== 'string') return;
    assert.match(n.$ref, /^#\//, `${at}: only local refs`);
    const target = n.$ref.slice(2).split('/').reduce((o, k) => o?.[k.replace(/~1/g, '/').replace(/~0/g, '~')], spec);
    assert.ok(target !== undefined, `${at}: dangling $ref ${n.$ref}`);
  });
});

test('0003 every component schema compiles', () => {
  for (const name of Object.keys(spec.components.schemas)) assert.equal(typeof schema(name), 'function', name);
});

test('0004 every operation documents its statuses', () => {
  for (const [m, p] of OPS) {
    const op = spec.paths[p][m];
    const codes = Object.keys(op.responses);
    const what = `${m.toUpperCase()} ${p}`;
    assert.ok(!codes.includes('default'), `${what}: no catch-all "default" response`);
    if (WS(p)) assert.ok(codes.includes('101') && codes.includes('401'), `${what}: 101 and 401`);
    else assert.ok(codes.some((c) => /^2/.test(c)), `${what}: a 2xx`);
    if (!PUBLIC.has(p)) {
      assert.ok(codes.includes('401'), `${what}: 401`);
      // the agent-credential routes (tunnel, recording uploads) answer 401, never 403
      if ((!WS(p) || p.endsWith('/connect')) && !p.includes('/recordings/')) assert.ok(codes.includes('403'), `${what}: 403`);
    }
    if (m === 'post') {
      assert.ok(codes.includes('400') && codes.includes('413'), `${what}: 400 and 413`);
      const body = op.requestBody?.content?.['application/json']?.schema;
      assert.ok(body, `${what}: request body schema`);
      const ref = body.$ref.split('/').pop();
      assert.equal(spec.components.schemas[ref].additionalProperties, false, `${what}: body rejects unknown fields`);
    }
    if (p.includes('{name}') && !p.includes('templates') && !p.includes('tunnel') && !p.endsWith('/control')) {
      assert.ok(codes.includes('404'), `${what}: 404`);
    }
    if (/\/(approve|reject|join|leave|renew|terminate|invite)$/.test(p)) assert.ok(codes.includes('409'), `${what}: 409`);
  }
});

test('0005 error schemas pin the code to the status', () => {
  const v = schema('ErrorConflict');
  assert.equal(v({ error: 'x', code: 'CONFLICT' }), true);
  assert.equal(v({ error: 'x', code: 'FORBIDDEN' }), false);
  assert.equal(v({ error: 'x', code: 'CONFLICT', extra: 1 }), false);
});

test('0006 scalar formats: durations, times, session names', () => {
  const d = schema('Duration');
  for (const ok of ['90s', '30m', '1h30m', '2d', '1d12h', '3s']) assert.equal(d(ok), true, ok);
  for (const bad of ['', '1', 'h', '30m1h', '1.5h', '-1h', ' 1h']) assert.equal(d(bad), false, bad);
  const t = schema('Timestamp');
  assert.equal(t('2026-11-22T10:00:00Z'), true);
  assert.equal(t('2026-11-22T10:00:00+01:00'), false);
  assert.equal(t('2026-11-22T10:00:00.123Z'), false);
  const n = schema('SessionName');
  assert.equal(n('ds-4k9x2mq7ab'), true);
  assert.equal(n('ds-4K9X2MQ7AB'), false);
  assert.equal(n('ds-4k9x2mq7a'), false);
});

test('0007 agent names with %2F match the agent routes, not others', () => {
  assert.equal(specPath('/api/v1/agents/gh%2Facme%2Fweb%2F42-1'), '/api/v1/agents/{name}');
  assert.equal(specPath('/api/v1/agents/gh%2Facme%2Fweb%2F42-1/control'), '/api/v1/agents/{name}/control');
  assert.equal(specPath('/api/v1/debug-sessions/ds-aaaaaaaaaa/approve'), '/api/v1/debug-sessions/{name}/approve');
  assert.equal(specPath('/api/v1/debug-sessions?mine=true'), '/api/v1/debug-sessions');
});
