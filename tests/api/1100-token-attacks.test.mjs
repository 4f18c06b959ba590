// 1100: bearer-token attacks (DESIGN.md 7.1). Each one must be 401; the positive controls show
// the signing helper makes tokens the server accepts, so each refusal is about the one defect.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, test } from 'node:test';

import * as jose from 'jose';

import { client, is, setup } from './lib.mjs';

let env;
let me;
before(async () => {
  env = await setup();
  me = async (token, what) => client(env.srv, token).get('/api/v1/me').then((r) => ({ ...r, what }));
});
after(async () => { await env?.close(); });

const t = () => Math.floor(Date.now() / 1000);
async function refused(token, what) {
  const r = await me(token, what);
  is(r, 401, what);
  assert.equal(r.json.code, 'UNAUTHORIZED');
}
async function accepted(token, what) {
  const r = await me(token, what);
  is(r, 200, what);
  return r.json;
}

test('1101 positive controls: our RS256 and ES256 tokens, aud as array, typ JWT or absent, are accepted', async () => {
  assert.equal((await accepted(await env.oidc.sign({}), 'RS256 rsa-1')).user, 'alice');
  await accepted(await env.oidc.sign({}, { alg: 'ES256' }), 'ES256 ec-1');
  await accepted(await env.oidc.sign({ aud: ['other', 'airlock'] }), 'aud array containing airlock');
  await accepted(await env.oidc.sign({}, { header: { typ: 'JWT' } }), 'typ JWT');
  await accepted(await env.oidc.sign({}, { header: { typ: undefined } }), 'typ absent');
});

test('1102 no token, empty bearer, garbage, wrong scheme: 401 on every authenticated endpoint', async () => {
  for (const p of ['/api/v1/me', '/api/v1/debug-sessions', '/api/v1/agents', '/api/v1/debug-session-templates']) {
    is(await env.anon.get(p), 401, `no token ${p}`);
  }
  is(await env.anon.post('/api/v1/debug-sessions', { template: 'open', agent: 'lab/x' }), 401, 'no token POST');
  is(await env.anon.get('/api/v1/me', { headers: { Authorization: 'Bearer ' } }), 401, 'empty bearer');
  is(await env.anon.get('/api/v1/me', { headers: { Authorization: 'Bearer garbage' } }), 401, 'garbage');
  is(await env.anon.get('/api/v1/me', { headers: { Authorization: 'Bearer a.b.c' } }), 401, 'three garbage segments');
  const good = await env.token('alice');
  is(await env.anon.get('/api/v1/me', { headers: { Authorization: `Basic ${good}` } }), 401, 'Basic scheme');
  is(await env.anon.get('/api/v1/me', { headers: { Authorization: good } }), 401, 'no scheme');
});

test('1103 alg none in every spelling is refused', async () => {
  const o = env.oidc;
  await refused(o.raw({ alg: 'none', typ: 'JWT' }, {}), 'alg none, empty signature');
  await refused(o.raw({ alg: 'none', typ: 'JWT', kid: 'rsa-1' }, {}), 'alg none with a known kid');
  await refused(o.raw({ alg: 'None', kid: 'rsa-1' }, {}), 'alg None');
  await refused(o.raw({ alg: 'NONE', kid: 'rsa-1' }, {}), 'alg NONE');
  const noDot = o.raw({ alg: 'none', kid: 'rsa-1' }, {}).replace(/\.$/, '');
  await refused(noDot, 'alg none, two segments');
  const real = await o.sign({});
  const sig = real.split('.')[2];
  await refused(o.raw({ alg: 'none', kid: 'rsa-1' }, {}) + sig, 'alg none with a foreign signature');
});

test('1104 HS256 signed with the issuer\'s public key PEM as the HMAC secret is refused (algorithm confusion)', async () => {
  const o = env.oidc;
  const pem = o.keys.rsaPem.endsWith('\n') ? o.keys.rsaPem : o.keys.rsaPem + '\n';
  const ecPem = await jose.exportSPKI(o.keys.ec.publicKey);
  const variants = [
    ['rsa pem with newline', pem, 'rsa-1'],
    ['rsa pem without newline', pem.trimEnd(), 'rsa-1'],
    ['rsa pem, no kid', pem, undefined],
    ['ec pem with newline', ecPem.endsWith('\n') ? ecPem : ecPem + '\n', 'ec-1'],
    ['ec pem without newline', ecPem.trimEnd(), 'ec-1'],
  ];
  for (const alg of ['HS256', 'HS384', 'HS512']) {
    for (const [what, secret, kid] of variants) {
      const h = { alg, typ: 'JWT' };
      if (kid) h.kid = kid;
      const hash = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' }[alg];
      const tok = o.raw(h, {}, (input) => crypto.createHmac(hash, secret).update(input).digest());
      await refused(tok, `${alg} ${what}`);
    }
  }
});

test('1105 expired, not yet valid, issued in the future, no exp: refused', async () => {
  const o = env.oidc;
  await refused(await o.sign({ exp: t() - 3600, iat: t() - 7200 }), 'expired an hour ago');
  await refused(await o.sign({ nbf: t() + 3600 }), 'nbf an hour ahead');
  await refused(await o.sign({ iat: t() + 3600, exp: t() + 7200 }), 'iat an hour ahead');
  await refused(await o.sign({ exp: undefined }), 'no exp');
});

test('1106 wrong iss, iss of the other issuer, wrong aud, no aud: refused', async () => {
  const o = env.oidc;
  await refused(await o.sign({ iss: 'https://evil.example.com' }), 'unknown iss');
  await refused(await o.sign({ iss: `${o.issuer}/` }), 'iss with a trailing slash (not exact)');
  await refused(await o.sign({ iss: env.ci.issuer }), 'iss of the CI issuer, signed with the people key');
  await refused(await o.sign({ aud: 'other' }), 'wrong aud');
  await refused(await o.sign({ aud: ['other', 'airlock2'] }), 'aud array without airlock');
  await refused(await o.sign({ aud: undefined }), 'no aud');
});

test('1107 unknown kid, right kid with a foreign key, key type and alg disagreeing: refused', async () => {
  const o = env.oidc;
  const foreign = await jose.generateKeyPair('RS256');
  await refused(await o.sign({}, { kid: 'nope', key: foreign.privateKey }), 'unknown kid');
  await refused(await o.sign({}, { kid: 'rsa-1', key: foreign.privateKey }), 'kid rsa-1, foreign key');
  const foreignEc = await jose.generateKeyPair('ES256');
  await refused(await o.sign({}, { alg: 'ES256', kid: 'rsa-1', key: foreignEc.privateKey }), 'ES256 header, RSA kid');
  await refused(await o.sign({}, { alg: 'RS256', kid: 'ec-1' }), 'RS256 signed with the RSA key but naming the EC kid');
  await refused(await o.sign({}, { header: { kid: undefined } }), 'no kid (our issuer has two keys)');
});

test('1108 tampered payload or header of a real provider token: refused', async () => {
  const real = await env.token('alice');
  await accepted(real, 'the untouched token');
  const [h, p, s] = real.split('.');
  const claims = JSON.parse(Buffer.from(p, 'base64url'));
  claims.groups = ['airlock-admins'];
  await refused(`${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`, 'groups changed');
  claims.groups = ['developers'];
  claims.preferred_username = 'dave';
  await refused(`${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`, 'username changed');
  const hdr = JSON.parse(Buffer.from(h, 'base64url'));
  hdr.typ = 'JWT';
  await refused(`${Buffer.from(JSON.stringify(hdr)).toString('base64url')}.${p}.${s}`, 'header changed');
  const sigBuf = Buffer.from(s, 'base64url');
  sigBuf[10] ^= 1;
  await refused(`${h}.${p}.${sigBuf.toString('base64url')}`, 'one signature bit flipped');
  await refused(`${h}.${p}.`, 'signature stripped');
});

test('1109 a token over 16 KiB is refused even when validly signed', async () => {
  const big = await env.oidc.sign({ pad: 'x'.repeat(17 * 1024) });
  assert.ok(big.length > 16384);
  await refused(big, 'token of 17 KiB');
});

test('1110 a typ other than JWT/at+jwt is refused', async () => {
  await refused(await env.oidc.sign({}, { header: { typ: 'dpop+jwt' } }), 'typ dpop+jwt');
});

test('1111 a valid token after many bad ones still works (no lock-out, the JWKS cache survived unknown kids)', async () => {
  const foreign = await jose.generateKeyPair('RS256');
  for (let i = 0; i < 5; i++) await refused(await env.oidc.sign({}, { kid: `nope-${i}`, key: foreign.privateKey }), `unknown kid ${i}`);
  await accepted(await env.token('bob'), 'bob afterwards');
});
