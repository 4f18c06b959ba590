// Shared harness for the REST/integration tests (DESIGN.md 6-8).
//
// * startOidc(): a real OpenID provider (npm oidc-provider v9) on http://127.0.0.1:<port>,
//   issuing RS256 JWT access tokens (typ at+jwt) through client_credentials + resource
//   indicators; each test user (or CI job) is a client whose claims extraTokenClaims adds.
//   Its signing keys are ours, so attack tokens can be signed with the real key.
// * startAirlock(): writes a config YAML, starts $AIRLOCKD, waits for /readyz, kills it by PID.
// * Every HTTP answer is checked against openapi/openapi.yaml for its path + method + status:
//   an undescribed status or a body that does not validate fails the test.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import * as jose from 'jose';
import Provider from 'oidc-provider';
import WebSocket from 'ws';
import YAML from 'yaml';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, '../..');
export const AIRLOCKD = path.resolve(ROOT, process.env.AIRLOCKD || 'build/airlockd');
export const SPEC_PATH = path.join(ROOT, 'openapi/openapi.yaml');

// ---------------------------------------------------------------------------------------------
// OpenAPI validation

export const spec = YAML.parse(fs.readFileSync(SPEC_PATH, 'utf8'));
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema(spec, 'openapi');

const esc = (s) => s.replace(/~/g, '~0').replace(/\//g, '~1');

/** Validator for a named component schema. */
export function schema(name) {
  const v = ajv.getSchema(`openapi#/components/schemas/${name}`);
  if (!v) throw new Error(`no schema ${name}`);
  return v;
}

/** Asserts value validates against components/schemas/name. */
export function assertSchema(name, value, what = name) {
  const v = schema(name);
  if (!v(value)) {
    assert.fail(`${what} does not match schema ${name}: ${ajv.errorsText(v.errors, { separator: '; ' })}\n` +
      `value: ${JSON.stringify(value).slice(0, 1500)}`);
  }
}

const pathMatchers = Object.keys(spec.paths).map((p) => ({
  template: p,
  re: new RegExp('^' + p.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+') + '$'),
  literal: p.replace(/\{[^}]+\}/g, '').length,
}));

/** The spec path template for a raw request path (query stripped), or null. */
export function specPath(rawPath) {
  const p = rawPath.split('?')[0];
  const hits = pathMatchers.filter((m) => m.re.test(p)).sort((a, b) => b.literal - a.literal);
  return hits.length ? hits[0].template : null;
}

function resolveRef(obj) {
  let pointer = null;
  while (obj && obj.$ref) {
    pointer = obj.$ref.replace(/^#/, '');
    obj = pointer.split('/').slice(1).reduce((o, k) => o[k.replace(/~1/g, '/').replace(/~0/g, '~')], spec);
  }
  return { obj, pointer };
}

/**
 * Checks one HTTP answer against the spec. Throws an AssertionError naming the request when the
 * status is not described for the operation, or the body does not match.
 */
export function checkResponse(method, rawPath, status, headers, text) {
  const where = `${method} ${rawPath} -> ${status}`;
  const tpl = specPath(rawPath);
  if (!tpl) assert.fail(`${where}: path not in openapi.yaml`);
  const op = spec.paths[tpl][method.toLowerCase()];
  if (!op) assert.fail(`${where}: method not in openapi.yaml for ${tpl}`);
  const raw = op.responses[String(status)];
  if (!raw) {
    assert.fail(`${where}: status ${status} is not described in openapi.yaml (${tpl}); body: ${String(text).slice(0, 400)}`);
  }
  let { obj: resp, pointer } = resolveRef(raw);
  if (!pointer) pointer = `/paths/${esc(tpl)}/${method.toLowerCase()}/responses/${status}`;
  if (!resp.content) return null;
  const ctype = String(headers['content-type'] || '').split(';')[0].trim().toLowerCase();
  if (!text || text.length === 0) assert.fail(`${where}: empty body, openapi.yaml describes ${Object.keys(resp.content)}`);
  if (!resp.content[ctype]) {
    assert.fail(`${where}: content-type "${ctype}" not described (expected ${Object.keys(resp.content).join(', ')}); body: ${String(text).slice(0, 300)}`);
  }
  if (ctype !== 'application/json') return null;
  let json;
  try {
    json = JSON.parse(text);
  } catch (e) {
    assert.fail(`${where}: body is not JSON: ${String(text).slice(0, 300)}`);
  }
  const v = ajv.getSchema(`openapi#${pointer}/content/application~1json/schema`);
  if (!v) throw new Error(`cannot compile schema at ${pointer}`);
  if (!v(json)) {
    assert.fail(`${where}: body does not match openapi.yaml: ${ajv.errorsText(v.errors, { separator: '; ' })}\n` +
      `body: ${text.slice(0, 2000)}`);
  }
  return json;
}

// ---------------------------------------------------------------------------------------------
// Identities

/** People (issuer "test", kind user). The client id is the key; claims go into the token.
 * Their emails are verified: only a verified email identifies a person (DESIGN.md 5). */
export const USERS = {
  alice: { preferred_username: 'alice', email: 'alice@example.com', email_verified: true, name: 'Alice Liddell', groups: ['developers'] },
  bob: { preferred_username: 'bob', email: 'bob@example.com', email_verified: true, name: 'Bob Builder', groups: ['developers'] },
  carol: { preferred_username: 'carol', email: 'carol@example.com', email_verified: true, name: 'Carol Approver', groups: ['sre-leads'] },
  grace: { preferred_username: 'grace', email: 'grace@example.com', email_verified: true, name: 'Grace Hopper', groups: ['sre-leads'] },
  dave: { preferred_username: 'dave', email: 'dave@example.com', email_verified: true, name: 'Dave Admin', groups: ['airlock-admins'] },
  erin: { preferred_username: 'erin', email: 'erin@example.com', email_verified: true, name: 'Erin Ops', groups: ['ops'] },
  frank: { preferred_username: 'frank', email: 'frank@example.com', email_verified: true, name: 'Frank Outsider', groups: [] },
  // alice's e-mail under another username, in the approver group (self-approval by e-mail)
  asmith: { preferred_username: 'asmith', email: 'ALICE@Example.COM', email_verified: true, name: 'A. Smith', groups: ['sre-leads', 'developers'] },
  // alice's username in other case, in the approver group (self-approval by username)
  aliceupper: { preferred_username: 'ALICE', email: 'alice.other@example.com', email_verified: true, name: 'ALICE', groups: ['sre-leads'] },
};

/** CI jobs (issuer "ci", kind agent), GitHub Actions style claims. */
export const CI_JOBS = {
  'ci-web': { repository: 'acme/web', repository_owner: 'acme', run_id: '42', run_attempt: '1', actor: 'alice' },
  'ci-web2': { repository: 'acme/web', repository_owner: 'acme', run_id: '43', run_attempt: '2', actor: 'alice' },
  'ci-web3': { repository: 'acme/web', repository_owner: 'acme', run_id: '44', run_attempt: '1', actor: 'bob' },
  'ci-sandbox': { repository: 'acme/sandbox', repository_owner: 'acme', run_id: '7', run_attempt: '1', actor: 'bob' },
  'ci-evil': { repository: 'evil/repo', repository_owner: 'evil', run_id: '1', run_attempt: '1', actor: 'mallory' },
};
export const ciAgentName = (job) => {
  const c = CI_JOBS[job];
  return `gh/${c.repository}/${c.run_id}-${c.run_attempt}`;
};

export const AUDIENCE = 'airlock';
const RESOURCE = 'urn:airlock:api';

const b64u = (buf) => Buffer.from(buf).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * A real OIDC provider. subjects: { clientId: extraClaims }. Returns
 * { issuer, token(clientId), sign(payload, opts), keys, close() }.
 */
export async function startOidc(subjects) {
  const rsa = await jose.generateKeyPair('RS256', { extractable: true });
  const ec = await jose.generateKeyPair('ES256', { extractable: true });
  const rsaJwk = { ...(await jose.exportJWK(rsa.privateKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' };
  const ecJwk = { ...(await jose.exportJWK(ec.privateKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' };
  const server = http.createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  server.unref(); // never keep a test process alive
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const clients = Object.keys(subjects).map((id) => ({
    client_id: id,
    client_secret: `${id}-secret-${'x'.repeat(32)}`,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_post',
  }));
  const provider = new Provider(issuer, {
    jwks: { keys: [rsaJwk, ecJwk] },
    clients,
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: '',
          audience: AUDIENCE,
          accessTokenFormat: 'jwt',
          accessTokenTTL: 3600,
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    ttl: { ClientCredentials: 3600 },
    extraTokenClaims: (ctx, token) => subjects[token.clientId],
  });
  server.on('request', provider.callback());
  const cache = new Map();
  const rsaPem = await jose.exportSPKI(rsa.publicKey);
  return {
    issuer,
    keys: { rsa, ec, rsaJwk, ecJwk, rsaPem },
    /** A real access token for a client (a test user or CI job), cached. */
    async token(id) {
      if (!subjects[id]) throw new Error(`unknown subject ${id}`);
      if (cache.has(id)) return cache.get(id);
      const res = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: id, client_secret: `${id}-secret-${'x'.repeat(32)}` }),
      });
      const j = await res.json();
      if (!j.access_token) throw new Error(`token for ${id}: ${JSON.stringify(j)}`);
      cache.set(id, j.access_token);
      return j.access_token;
    },
    /**
     * Signs a token with the provider's own key (RS256 kid rsa-1 by default, or alg ES256 with
     * kid ec-1). payload fields override the defaults (iss, aud, iat, exp, sub + the subject's
     * claims); a field set to undefined is dropped.
     */
    async sign(payload = {}, { alg = 'RS256', kid, key, header = {}, subject = Object.keys(subjects)[0] } = {}) {
      const t = now();
      const claims = { ...subjects[subject], sub: subject, iss: issuer, aud: AUDIENCE, iat: t, exp: t + 600, ...payload };
      for (const k of Object.keys(claims)) if (claims[k] === undefined) delete claims[k];
      const k = key || (alg.startsWith('ES') ? ec.privateKey : rsa.privateKey);
      const hdr = { alg, typ: 'at+jwt', kid: kid || (alg.startsWith('ES') ? 'ec-1' : 'rsa-1'), ...header };
      for (const h of Object.keys(hdr)) if (hdr[h] === undefined) delete hdr[h];
      return new jose.SignJWT(claims).setProtectedHeader(hdr).sign(k);
    },
    /** Builds header.payload.signature by hand (for alg none, HMAC, tampering). */
    raw(header, payload, signFn) {
      const t = now();
      const claims = { ...subjects[Object.keys(subjects)[0]], sub: Object.keys(subjects)[0], iss: issuer, aud: AUDIENCE, iat: t, exp: t + 600, ...payload };
      const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(claims))}`;
      return `${input}.${signFn ? b64u(signFn(input)) : ''}`;
    },
    close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
  };
}

// ---------------------------------------------------------------------------------------------
// airlockd configuration

const ALL_AGENTS = ['lab/*', 'gh/acme/*'];
const tmpl = (name, over = {}) => {
  const t = {
    name,
    displayName: `Template ${name}`,
    description: `Test template ${name}`,
    allowed: { groups: ['developers'], users: [], agents: ALL_AGENTS },
    approvers: { groups: [], users: [], autoApproveFor: { groups: [], users: [], agents: [] } },
    constraints: { maxDuration: '4h', defaultDuration: '1h', allowRenewal: true, maxRenewals: 3 },
    terminalSharing: { enabled: true, provider: 'tmux', maxParticipants: 5, readOnlyParticipants: false },
    allowedOperations: { shell: true, exec: true, sftp: true, portForward: false },
    requestReason: { mandatory: false, minLength: 0, maxLength: 1000 },
    approvalReason: { mandatoryForRejection: false },
  };
  for (const [k, v] of Object.entries(over)) t[k] = (v && typeof v === 'object' && !Array.isArray(v)) ? { ...t[k], ...v } : v;
  return t;
};

/** The templates most tests use. */
export const TEMPLATES = [
  // needs approval by sre-leads, except for sre-leads themselves and the acme sandbox CI
  tmpl('ci-debug', {
    displayName: 'CI job debug',
    description: 'Shell into a failed CI job',
    approvers: { groups: ['sre-leads'], users: [], autoApproveFor: { groups: ['sre-leads'], users: [], agents: ['gh/acme/sandbox/*'] } },
    constraints: { maxDuration: '4h', defaultDuration: '1h', allowRenewal: true, maxRenewals: 2 },
    requestReason: { mandatory: true, minLength: 10, maxLength: 200 },
    approvalReason: { mandatoryForRejection: true },
  }),
  // needs approval by sre-leads, nobody auto-approved; sre-leads may also request
  tmpl('strict', {
    allowed: { groups: ['developers', 'sre-leads'], users: [], agents: ALL_AGENTS },
    approvers: { groups: ['sre-leads'], users: [], autoApproveFor: { groups: [], users: [], agents: [] } },
  }),
  // no approvers at all: auto-approve
  tmpl('open', { allowed: { groups: ['developers', 'ops'], users: [], agents: ALL_AGENTS } }),
  tmpl('no-renew', { constraints: { maxDuration: '4h', defaultDuration: '1h', allowRenewal: false, maxRenewals: 3 } }),
  tmpl('sre-only', { allowed: { groups: ['sre-leads'], users: [], agents: ALL_AGENTS } }),
  tmpl('tiny', { terminalSharing: { enabled: true, provider: 'tmux', maxParticipants: 2, readOnlyParticipants: false } }),
  tmpl('readonly', { terminalSharing: { enabled: true, provider: 'tmux', maxParticipants: 5, readOnlyParticipants: true } }),
  tmpl('bounded', { constraints: { maxDuration: '1h', defaultDuration: '30m', minDuration: '10m', allowRenewal: true, maxRenewals: 3 } }),
  tmpl('lab-only', { allowed: { groups: ['developers'], users: [], agents: ['lab/allowed-*'] } }),
  tmpl('quick', { constraints: { maxDuration: '1m', defaultDuration: '3s', allowRenewal: true, maxRenewals: 3 } }),
];

export { tmpl };

// ---------------------------------------------------------------------------------------------
// HTTP

/** One request on a fresh connection. Resolves { status, headers, text, json }. */
export function rawRequest(base, method, reqPath, { headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(base);
    let done = false;
    const r = http.request({
      host: u.hostname, port: u.port, method, path: reqPath, headers, agent: false,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        done = true;
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
      res.on('error', (e) => { if (!done) reject(e); });
    });
    r.setTimeout(15000, () => r.destroy(new Error(`timeout: ${method} ${reqPath}`)));
    r.on('error', (e) => {
      // the server may answer (413) and close before it read the whole body
      if (!done) setTimeout(() => { if (!done) reject(e); }, 200);
    });
    if (body !== undefined) r.end(body); else r.end();
  });
}

// ---------------------------------------------------------------------------------------------
// airlockd

async function waitReady(base, proc, logPath, ms = 15000) {
  const until = Date.now() + ms;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`airlockd exited (${proc.exitCode ?? proc.signalCode}) before ready:\n${tail(logPath)}`);
    }
    try {
      const r = await rawRequest(base, 'GET', '/readyz');
      if (r.status === 200) return;
    } catch { /* not listening yet */ }
    if (Date.now() > until) throw new Error(`airlockd not ready after ${ms} ms:\n${tail(logPath)}`);
    await sleep(50);
  }
}

export function tail(file, n = 40) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-n).join('\n');
  } catch { return ''; }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Writes the config YAML for the given issuers and options. */
export function configYaml({ publicUrl, oidc, ci, templates = TEMPLATES, extra = {}, dev = false }) {
  const issuers = [];
  if (oidc) {
    issuers.push({
      name: 'test', issuer: oidc.issuer, audience: AUDIENCE,
      usernameClaim: 'preferred_username', emailClaim: 'email', groupsClaim: 'groups', uiClientId: 'airlock-ui',
    });
  }
  if (ci) {
    issuers.push({
      name: 'ci', issuer: ci.issuer, audience: AUDIENCE, kind: 'agent',
      agentName: 'gh/{repository}/{run_id}-{run_attempt}', ownerClaim: 'actor',
      require: { repository_owner: ['acme'] },
    });
  }
  const cfg = {
    publicUrl,
    approvalTimeout: '24h',
    agentGracePeriod: '5m',
    retention: '168h',
    auth: {
      dev,
      issuers,
      admins: { groups: ['airlock-admins'] },
      agentRegistrars: { groups: ['ops'] },
    },
    templates,
    // the suites send requests back to back from one address: limits off unless a test sets
    // them (4000-abuse tests them)
    limits: { connectionsPerClient: 0, requestsPerSecond: 0, sessionsPerUser: 0 },
    ...extra,
  };
  return YAML.stringify(cfg);
}

/**
 * Starts the whole fixture: the people's provider, the CI provider and airlockd.
 * opts: { templates, extra (top-level config keys), dev (adds --dev), args (extra flags) }.
 */
export async function setup(opts = {}) {
  const oidc = await startOidc(USERS);
  const ci = await startOidc(CI_JOBS);
  const env = { oidc, ci };
  let srv;
  try {
    srv = await startAirlock({ ...opts, oidc, ci });
  } catch (e) {
    await oidc.close();
    await ci.close();
    throw e;
  }
  env.srv = srv;
  env.base = srv.base;
  env.token = async (who) => (USERS[who] ? oidc.token(who) : ci.token(who));
  env.client = async (who) => client(srv, await env.token(who));
  env.anon = client(srv, null);
  env.close = async () => {
    try {
      await srv.stop();
    } finally {
      await oidc.close();
      await ci.close();
    }
  };
  return env;
}

/** Starts airlockd with a fresh data dir (or opts.dataDir). */
export async function startAirlock({ oidc, ci, templates, extra, dev = false, args = [], dataDir, configText } = {}) {
  if (!fs.existsSync(AIRLOCKD)) throw new Error(`server binary ${AIRLOCKD} does not exist (make bin, or set AIRLOCKD)`);
  const dir = dataDir || fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-api-'));
  const home = path.join(dir, 'home');
  fs.mkdirSync(home, { recursive: true });
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const cfgPath = path.join(dir, 'airlock.yaml');
  fs.writeFileSync(cfgPath, configText ?? configYaml({ publicUrl: base, oidc, ci, templates, extra, dev }));
  const logPath = path.join(dir, `airlockd-${port}.log`);
  const srv = { base, port, dir, cfgPath, logPath, proc: null };
  srv.start = async () => {
    const log = fs.openSync(logPath, 'a');
    const argv = ['--config', cfgPath, '--data-dir', dir, '--listen', `127.0.0.1:${port}`, ...(dev ? ['--dev'] : []), ...args];
    const proc = spawn(AIRLOCKD, argv, { stdio: ['ignore', log, log], env: { ...process.env, HOME: home } });
    srv.expectedExit = false;
    fs.closeSync(log);
    srv.proc = proc;
    try {
      await waitReady(base, proc, logPath);
    } catch (e) {
      try { process.kill(proc.pid, 'SIGKILL'); } catch { /* gone */ }
      throw e;
    }
  };
  srv.stop = async ({ keep = !!process.env.KEEP_TMP } = {}) => {
    const p = srv.proc;
    let died = null;
    if (p && !srv.expectedExit && (p.exitCode !== null || p.signalCode !== null)) {
      died = `airlockd died during the tests (exit code ${p.exitCode}, signal ${p.signalCode}); last log lines:\n${tail(logPath, 20)}`;
      keep = true;
    }
    if (p && p.exitCode === null && p.signalCode === null) {
      const exited = new Promise((r) => p.once('exit', r));
      process.kill(p.pid, 'SIGTERM');
      const t = setTimeout(() => { try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ } }, 5000);
      await exited;
      clearTimeout(t);
    }
    // a sanitizer build (make SAN=1) reports memory errors, leaks and UB in the log
    const log = (() => { try { return fs.readFileSync(logPath, 'utf8'); } catch { return ''; } })();
    const san = log.match(/^.*(ERROR: (Address|Leak|Thread)Sanitizer|runtime error:).*$/m);
    if (san && !died) {
      const at = log.indexOf(san[0]);
      died = `airlockd's sanitizer reported a problem:\n${log.slice(at, at + 3000)}`;
      keep = true;
    }
    if (!keep && !dataDir) fs.rmSync(dir, { recursive: true, force: true });
    if (died) throw new Error(`${died}\n(data dir kept: ${dir})`);
  };
  srv.kill9 = async () => {
    const p = srv.proc;
    srv.expectedExit = true;
    if (p && p.exitCode === null && p.signalCode === null) {
      const exited = new Promise((r) => p.once('exit', r));
      process.kill(p.pid, 'SIGKILL');
      await exited;
    }
  };
  srv.alive = () => srv.proc && srv.proc.exitCode === null && srv.proc.signalCode === null;
  await srv.start();
  return srv;
}

/** Turns a connection error into "airlockd died" with its log when the process is gone. */
export async function deadServerError(srv, e, what) {
  await sleep(150);
  if (srv.proc && !srv.alive()) {
    const err = new assert.AssertionError({
      message: `${what}: airlockd is not running (exit code ${srv.proc.exitCode}, signal ${srv.proc.signalCode}); ` +
        `last log lines:\n${tail(srv.logPath, 15)}`,
    });
    return err;
  }
  return e;
}

/**
 * A client bound to a bearer token (or none). Methods resolve { status, headers, text, json }
 * after checking the answer against openapi.yaml (pass { validate: false } for paths outside it).
 */
export function client(srv, token) {
  const req = async (method, p, { body, raw, headers = {}, validate = true, token: tok } = {}) => {
    const h = { ...headers };
    const t = tok === undefined ? token : tok;
    if (t && !Object.keys(h).some((k) => k.toLowerCase() === 'authorization')) h.Authorization = `Bearer ${t}`;
    let data;
    if (raw !== undefined) data = raw;
    else if (body !== undefined) data = JSON.stringify(body);
    if (data !== undefined && !Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['Content-Type'] = 'application/json';
    if (data !== undefined) h['Content-Length'] = Buffer.byteLength(data);
    let r;
    try {
      r = await rawRequest(srv.base, method, p, { headers: h, body: data });
    } catch (e) {
      throw await deadServerError(srv, e, `${method} ${p}`);
    }
    if (validate) checkResponse(method, p, r.status, r.headers, r.text);
    return r;
  };
  return {
    token,
    req,
    get: (p, o) => req('GET', p, o),
    post: (p, body, o = {}) => req('POST', p, { body, ...o }),
  };
}

/** assert.equal on the status with the body in the message. */
export function is(r, status, what = '') {
  assert.equal(r.status, status, `${what ? what + ': ' : ''}expected ${status}, got ${r.status}: ${r.text?.slice(0, 600)}`);
  return r.json;
}

/** Asserts a 4xx error envelope whose message or details mention `field`. */
export function namesField(r, field) {
  const hay = `${r.json?.error} ${JSON.stringify(r.json?.details ?? '')}`;
  assert.ok(hay.includes(field), `error should name the field "${field}": ${r.text}`);
}

// ---------------------------------------------------------------------------------------------
// SSH keys

/** A fresh ed25519 key: { pub: "ssh-ed25519 AAAA… comment", fp: "SHA256:…" }. */
export function sshKey(comment = 'test') {
  const { publicKey } = crypto.generateKeyPairSync('ed25519');
  const der = publicKey.export({ format: 'der', type: 'spki' });
  const raw = der.subarray(der.length - 32);
  const str = (b) => { const l = Buffer.alloc(4); l.writeUInt32BE(b.length); return Buffer.concat([l, b]); };
  const blob = Buffer.concat([str(Buffer.from('ssh-ed25519')), str(raw)]);
  const fp = 'SHA256:' + crypto.createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
  return { pub: `ssh-ed25519 ${blob.toString('base64')} ${comment}`, blob: blob.toString('base64'), fp };
}

// ---------------------------------------------------------------------------------------------
// Agents and the control channel

export const agentPath = (name) => `/api/v1/agents/${encodeURIComponent(name)}`;
export const sessPath = (name, action = '') => `/api/v1/debug-sessions/${name}${action ? '/' + action : ''}`;

/**
 * Opens a WebSocket. Resolves { ok: true, conn } on 101, or { ok: false, status, json, text }
 * (checked against openapi.yaml) when the upgrade is refused.
 */
export function openWs(srv, p, { token, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const h = { ...headers };
    if (token) h.Authorization = `Bearer ${token}`;
    const url = srv.base.replace(/^http/, 'ws') + p;
    const ws = new WebSocket(url, { headers: h, handshakeTimeout: 10000, perMessageDeflate: false });
    let settled = false;
    ws.on('unexpected-response', (rq, res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        settled = true;
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
        try {
          checkResponse('GET', p, res.statusCode, res.headers, text);
        } catch (e) { reject(e); return; }
        resolve({ ok: false, status: res.statusCode, json, text });
        ws.terminate();
      });
    });
    ws.on('error', (e) => { if (!settled) { settled = true; deadServerError(srv, e, `WebSocket ${p}`).then(reject); } });
    ws.on('open', () => {
      settled = true;
      resolve({ ok: true, status: 101, conn: controlConn(ws, srv) });
    });
  });
}

/** Wraps a control socket: every server message is validated against ControlServerMessage. */
function controlConn(ws, srv) {
  const conn = { ws, messages: [], invalid: [], waiters: [], closed: false };
  const v = schema('ControlServerMessage');
  ws.on('message', (data, isBinary) => {
    let m;
    try { m = JSON.parse(data.toString('utf8')); } catch { conn.invalid.push(`not JSON: ${data}`); return; }
    if (isBinary) conn.invalid.push(`binary frame: ${data}`);
    if (!v(m)) conn.invalid.push(`${JSON.stringify(m)}: ${ajv.errorsText(v.errors)}`);
    conn.messages.push(m);
    for (const w of [...conn.waiters]) w.check();
  });
  ws.on('close', (code, reason) => {
    conn.closed = true; conn.closeCode = code; conn.closeReason = String(reason);
    for (const w of [...conn.waiters]) w.check();
  });
  ws.on('error', () => {});
  conn.send = (obj) => ws.send(JSON.stringify(obj));
  /** Resolves with the first message (from index `from`, default: any so far) matching pred. */
  conn.waitFor = (pred, { timeout = 5000, from = 0, what = 'message' } = {}) => new Promise((resolve, reject) => {
    const w = {
      check() {
        if (conn.invalid.length) {
          clear(); reject(new assert.AssertionError({ message: `control message does not match ControlServerMessage: ${conn.invalid.join(' | ')}` }));
          return;
        }
        const i = conn.messages.findIndex((m, idx) => idx >= from && pred(m));
        if (i >= 0) { clear(); resolve(conn.messages[i]); return; }
        if (conn.closed) {
          setTimeout(() => {
            const dead = srv.alive() ? '' : ` — airlockd is not running (exit ${srv.proc.exitCode}, signal ${srv.proc.signalCode}); log:\n${tail(srv.logPath, 12)}`;
            reject(new assert.AssertionError({ message: `control socket closed (${conn.closeCode} ${conn.closeReason}) while waiting for ${what}; got ${JSON.stringify(conn.messages).slice(0, 1500)}${dead}` }));
          }, 150);
          clear();
        }
      },
    };
    const t = setTimeout(() => {
      clear();
      reject(new assert.AssertionError({ message: `timed out waiting for ${what}; control messages so far: ${JSON.stringify(conn.messages).slice(0, 2000)}` }));
    }, timeout);
    const clear = () => { clearTimeout(t); conn.waiters = conn.waiters.filter((x) => x !== w); };
    conn.waiters.push(w);
    w.check();
  });
  /** Waits for a `session` message about name matching pred(session); resolves the session. */
  conn.waitSession = async (name, pred = () => true, opts = {}) =>
    (await conn.waitFor((m) => m.type === 'session' && m.session?.name === name && pred(m.session), { what: `session message for ${name}`, ...opts })).session;
  conn.close = () => new Promise((r) => {
    if (conn.closed) return r();
    ws.once('close', () => r());
    ws.close();
    setTimeout(() => { ws.terminate(); r(); }, 2000);
  });
  return conn;
}

/** Registers a host agent as `registrar` (a client of a person in agentRegistrars). */
export async function registerAgent(registrar, name, extra = {}) {
  const key = extra.key || sshKey('host');
  const r = await registrar.post('/api/v1/agents', {
    name, labels: { purpose: 'test' }, hostKeys: [key.pub], version: '0.0.0-test', ...extra.body,
  });
  is(r, 201, `register agent ${name}`);
  return { ...r.json, key };
}

/** Connects the agent's control channel and says hello. */
export async function agentOnline(srv, name, credential, { hostKeys = [] } = {}) {
  const r = await openWs(srv, `${agentPath(name)}/control`, { token: credential });
  assert.ok(r.ok, `control upgrade for ${name} refused: ${r.status} ${r.text}`);
  r.conn.send({ type: 'hello', version: '0.0.0-test', hostKeys });
  return r.conn;
}

/** Polls GET session until pred holds (or timeout). Returns the last session JSON. */
export async function waitState(c, name, pred, { timeout = 5000, interval = 100 } = {}) {
  const until = Date.now() + timeout;
  let last;
  for (;;) {
    const r = await c.get(sessPath(name));
    last = r.json;
    if (r.status === 200 && pred(r.json)) return r.json;
    if (Date.now() > until) {
      assert.fail(`session ${name}: condition not reached in ${timeout} ms; last: ${r.status} ${JSON.stringify(last?.status ?? last).slice(0, 800)}`);
    }
    await sleep(interval);
  }
}

export const secs = (a, b) => (Date.parse(a) - Date.parse(b)) / 1000;
export const REASON = 'debugging a flaky integration test';

/** Runs airlockd with configText and expects it to exit on its own; resolves { code, signal, output }. */
export async function runAirlockdExpectExit(configText, { args = [], timeout = 8000, listen } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-cfg-'));
  const cfgPath = path.join(dir, 'airlock.yaml');
  fs.writeFileSync(cfgPath, configText);
  const port = await freePort();
  const proc = spawn(AIRLOCKD, ['--config', cfgPath, '--data-dir', dir, '--listen', listen || `127.0.0.1:${port}`, ...args],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: dir } });
  let output = '';
  proc.stdout.on('data', (d) => { output += d; });
  proc.stderr.on('data', (d) => { output += d; });
  const res = await new Promise((resolve) => {
    const t = setTimeout(() => {
      try { process.kill(proc.pid, 'SIGKILL'); } catch { /* gone */ }
      resolve({ code: null, signal: 'timeout' });
    }, timeout);
    proc.on('exit', (code, signal) => { clearTimeout(t); resolve({ code, signal }); });
  });
  fs.rmSync(dir, { recursive: true, force: true });
  return { ...res, output };
}
