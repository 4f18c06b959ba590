// The CI side of the dist suite: real OIDC providers (npm oidc-provider, tests/api/lib.mjs's
// startOidc) whose clients are CI jobs, one as GitHub's issuer and one as GitLab's, and in front
// of GitHub's a loopback stand-in for GitHub's
// token endpoint (ACTIONS_ID_TOKEN_REQUEST_URL): it checks the request token and the audience
// the way GitHub does and answers {"value": <a real access token of the job>}.
//   node tests/dist/oidc.mjs OUT.json REQUEST-TOKEN
// writes {"githubIssuer", "tokenUrl", "gitlabIssuer", "gitlabToken"} to OUT.json once both listen, then runs until killed.
import fs from 'node:fs';
import http from 'node:http';
import { startOidc, AUDIENCE } from '../api/lib.mjs';

const [out, requestToken] = process.argv.slice(2);
// GitHub Actions claims, and GitLab CI's (id_tokens)
const github = await startOidc({ 'gh-job': { repository: 'acme/web', repository_owner: 'acme', run_id: '42', run_attempt: '1', actor: 'alice' } });
const gitlab = await startOidc({ 'gl-job': { project_path: 'acme/web', namespace_path: 'acme', job_id: '4242', user_login: 'alice' } });
const server = http.createServer(async (req, res) => {
  const u = new URL(req.url, 'http://x');
  const ok = req.headers.authorization === `bearer ${requestToken}` && u.searchParams.get('audience') === AUDIENCE;
  const body = ok ? { count: 1, value: await github.token('gh-job') } : { message: 'bad request token or audience' };
  res.writeHead(ok ? 200 : 403, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const info = {
  githubIssuer: github.issuer,
  tokenUrl: `http://127.0.0.1:${server.address().port}/token?api-version=2.0`,
  gitlabIssuer: gitlab.issuer,
  gitlabToken: await gitlab.token('gl-job'),
};
fs.writeFileSync(`${out}.tmp`, JSON.stringify(info));
fs.renameSync(`${out}.tmp`, out);
process.on('SIGTERM', () => process.exit(0));
setInterval(() => {}, 1 << 30); // the provider's server is unref'd: keep running until killed
