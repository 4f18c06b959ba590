// 3200: GET /api/v1/snippets/{ci} (issue 10): the CI lines the UI's Agents page and `airlock
// snippet` show, with this server's publicUrl, the configured action/include, and a template
// the caller may use.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { is, setup } from './lib.mjs';

let env;
before(async () => {
  env = await setup({
    extra: { snippets: { githubAction: 'acme/airlock@v9', gitlabInclude: 'https://git.example.com/acme/airlock/-/raw/v9/ci/gitlab/airlock.yml' } },
  });
});
after(async () => env?.close());

test('3251 github: the action with this server and the first template the caller may use', async () => {
  const alice = await env.client('alice');
  const j = is(await alice.get('/api/v1/snippets/github'), 200);
  assert.equal(j.ci, 'github');
  assert.equal(j.template, 'ci-debug');
  assert.match(j.text, /^\s+uses: acme\/airlock@v9$/m);
  assert.match(j.text, new RegExp(`^\\s+server: ${env.base}$`, 'm'));
  assert.match(j.text, /^\s+template: ci-debug$/m);
  assert.match(j.text, /id-token: write/);
  const carol = await env.client('carol'); // sre-leads may not use ci-debug; strict is theirs
  assert.equal(is(await carol.get('/api/v1/snippets/github'), 200).template, 'strict');
});

test('3252 gitlab: the include and the variables; ?template= picks one the caller may use', async () => {
  const alice = await env.client('alice');
  const j = is(await alice.get('/api/v1/snippets/gitlab?template=open'), 200);
  assert.equal(j.template, 'open');
  assert.match(j.text, /^ {2}- remote: https:\/\/git\.example\.com\/acme\/airlock\/-\/raw\/v9\/ci\/gitlab\/airlock\.yml$/m);
  assert.match(j.text, /^ {2}extends: \.airlock/m);
  // in the job's own script, so the session debugs the failed job itself (not after_script: GitLab
  // stops that after five minutes)
  assert.match(j.text, /^ {4}- make test \|\| \{ rc=\$\?; sh -c "\$AIRLOCK_SCRIPT"; exit \$rc; \}$/m);
  assert.match(j.text, new RegExp(`^ {4}AIRLOCK_SERVER: ${env.base}$`, 'm'));
  assert.match(j.text, /^ {4}AIRLOCK_TEMPLATE: open$/m);
});

test('3253 host: download, check and run the bundle from this server', async () => {
  const alice = await env.client('alice');
  const j = is(await alice.get('/api/v1/snippets/host'), 200);
  assert.ok(j.text.includes(`${env.base}/download/airlock-linux-amd64.tar.gz.sha256 | sha256sum -c`), j.text);
});

test('3254 a template the caller may not use is 404; so is another CI; a caller with none gets none', async () => {
  const alice = await env.client('alice');
  is(await alice.get('/api/v1/snippets/github?template=sre-only'), 404);
  is(await alice.get('/api/v1/snippets/github?template=no-such'), 404);
  const r = await alice.get('/api/v1/snippets/jenkins');
  is(r, 404);
  assert.match(r.json.error, /github, gitlab or host/);
  const frank = await env.client('frank'); // in no group: no template
  const j = is(await frank.get('/api/v1/snippets/github'), 200);
  assert.equal(j.template, null);
  assert.doesNotMatch(j.text, /template:/);
  is(await env.anon.get('/api/v1/snippets/github'), 401);
});
