// Production sign-in: Authorization Code + PKCE with oidc-client-ts against a real OpenID
// Connect provider (the npm package oidc-provider, in-process on loopback), the mock API in
// production mode (--no-dev --issuer), sign-in, the callback, bearer on API calls, silent renewal
// through the hidden iframe, and sign-out. The provider releases the groups claim only for the
// `groups` scope (as Dex does), and /api/v1/config names that scope (airlockd's uiScopes; the
// mock API does not know the key, so the test adds it to the mock's answer).
import path from 'node:path'
import fs from 'node:fs'
import Provider from 'oidc-provider'
import { ROOT, assert, freePort, launch, shot, startMock, suite, waitFor } from './lib.mjs'

const SCOPES = ['openid', 'profile', 'email', 'groups']
const TOKEN_TTL = 75 // s; oidc-client-ts renews 60 s before expiry, so ~15 s after sign-in
const t = suite('ui-oidc', { dependent: true })

t.step('the sign-in page offers the provider, and no dev picker or banner', async (c) => {
  const p = c.page
  await p.goto('/debug-sessions')
  await p.waitForURL(/\/login/)
  await p.getByText(c.issuer).waitFor()
  assert((await p.getByTestId('dev-banner').count()) === 0, 'dev banner shown in production mode')
  assert((await p.getByTestId('pick-alice').count()) === 0, 'dev user picker shown in production mode')
})

t.step('Sign in goes to the provider with a PKCE code request', async (c) => {
  const p = c.page
  const [req] = await Promise.all([
    p.waitForRequest((r) => r.url().startsWith(c.issuer + '/auth?')),
    p.getByRole('button', { name: 'Sign in' }).click(),
  ])
  const q = new URL(req.url()).searchParams
  assert(q.get('response_type') === 'code', `response_type=${q.get('response_type')}`)
  assert(q.get('code_challenge_method') === 'S256' && (q.get('code_challenge') ?? '').length >= 43, 'no PKCE challenge')
  assert(q.get('client_id') === 'airlock-ui' && q.get('redirect_uri') === c.base + '/auth/callback', 'client or redirect')
  assert(q.get('scope') === SCOPES.join(' '), `scope=${q.get('scope')}, want the configured "${SCOPES.join(' ')}"`)
  await p.locator('input[name=login]').waitFor()
})

t.step('after logging in at the provider the UI lands where it started, signed in', async (c) => {
  const p = c.page
  await p.locator('input[name=login]').fill('alice')
  await p.locator('input[name=password]').fill('any')
  await p.getByRole('button', { name: 'Sign-in' }).click()
  await p.getByRole('button', { name: 'Continue' }).click() // consent
  await p.waitForURL(c.base + '/debug-sessions')
  await p.getByTestId('whoami').filter({ hasText: 'alice' }).waitFor()
  const title = await p.getByTestId('whoami').getAttribute('title')
  assert(title === 'groups: developers', `groups from the token (released for the groups scope): ${title}`)
  await p.locator('tbody tr').first().waitFor()
  const stored = await p.evaluate(() => Object.keys(sessionStorage).filter((k) => k.startsWith('oidc.user:')))
  assert(stored.length === 1, `tokens not in sessionStorage: ${stored}`)
  const local = await p.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('oidc.user:')))
  assert(local.length === 0, 'tokens in localStorage')
  await shot(p, 'oidc-signed-in')
})

t.step('API calls carry the bearer from the provider', async (c) => {
  const p = c.page
  const [req] = await Promise.all([p.waitForRequest((r) => r.url().includes('/api/v1/debug-sessions')), p.reload()])
  const auth = req.headers().authorization ?? ''
  assert(/^Bearer [\w-]+\.[\w-]+\.[\w-]+$/.test(auth), `Authorization: ${auth}`)
  c.firstBearer = auth
})

t.step('the token is renewed silently before it expires', async (c) => {
  const p = c.page
  const idToken = () => p.evaluate(() => {
    const k = Object.keys(sessionStorage).find((x) => x.startsWith('oidc.user:'))
    return k ? JSON.parse(sessionStorage.getItem(k)).id_token : null
  })
  const first = await idToken()
  await waitFor(async () => (await idToken()) !== first, { timeout: (TOKEN_TTL + 10) * 1000, interval: 500, what: 'a renewed token' })
  const [req] = await Promise.all([p.waitForRequest((r) => r.url().includes('/api/v1/debug-sessions?')), p.getByRole('checkbox', { name: 'Expired' }).check()])
  assert(req.headers().authorization !== c.firstBearer, 'API calls still use the old token')
  assert(p.url().startsWith(c.base + '/debug-sessions'), `left the page: ${p.url()}`)
})

t.step('sign out returns to the sign-in page and forgets the tokens', async (c) => {
  const p = c.page
  await p.getByRole('button', { name: 'Sign out' }).click()
  await p.waitForURL(/\/login/)
  const left = await p.evaluate(() => Object.keys(sessionStorage).filter((k) => k.startsWith('oidc.user:')))
  assert(left.length === 0, 'tokens left in sessionStorage')
  await p.goto('/agents')
  await p.waitForURL(/\/login/)
  assert(c.errors.length === 0, c.errors.join('; '))
})

async function before() {
  if (!fs.existsSync(path.join(ROOT, 'frontend/dist/index.html'))) throw new Error('frontend/dist is not built')
  const uiPort = await freePort()
  const base = `http://127.0.0.1:${uiPort}`
  const opPort = await freePort()
  const issuer = `http://127.0.0.1:${opPort}`
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'airlock-ui',
        token_endpoint_auth_method: 'none',
        application_type: 'web',
        grant_types: ['authorization_code'],
        response_types: ['code'],
        redirect_uris: [`${base}/auth/callback`, `${base}/auth/silent`],
        post_logout_redirect_uris: [`${base}/login`],
      },
    ],
    claims: { openid: ['sub'], profile: ['name', 'preferred_username'], email: ['email'], groups: ['groups'] },
    conformIdTokenClaims: false,
    findAccount: (_ctx, id) => ({
      accountId: id,
      claims: () => ({ sub: id, preferred_username: id, name: id, email: `${id}@example.com`, groups: ['developers'] }),
    }),
    clientBasedCORS: (_ctx, origin) => origin === base,
    cookies: { keys: ['airlock-ui-test'] },
    ttl: { IdToken: TOKEN_TTL, AccessToken: TOKEN_TTL, Session: 3600, Grant: 3600, Interaction: 600 },
    features: { devInteractions: { enabled: true } },
  })
  provider.on('server_error', (_ctx, e) => console.log('# provider error:', e.message))
  const op = await new Promise((res) => {
    const srv = provider.listen(opPort, '127.0.0.1', () => res(srv))
  })
  const mock = await startMock(['--no-dev', '--issuer', issuer], { port: uiPort, logName: 'mock-api-oidc.log' })
  const browser = await launch()
  const ctx = await browser.newContext({ baseURL: base, viewport: { width: 1280, height: 900 } })
  await ctx.route(/fonts\.googleapis\.com/, (r) => r.abort()) // the provider's login page asks for a web font
  // What airlockd answers with uiScopes: [openid, profile, email, groups] on the issuer.
  await ctx.route(`${base}/api/v1/config`, async (r) => {
    const res = await r.fetch()
    const json = await res.json()
    json.oidc.scopes = SCOPES
    await r.fulfill({ response: res, json })
  })
  const page = await ctx.newPage()
  const errors = []
  page.on('pageerror', (e) => errors.push(e.message))
  return { base, issuer, op, mock, browser, page, errors }
}

async function after(c) {
  if (!c) return
  await c.browser?.close().catch(() => {})
  await c.mock?.stop()
  c.op?.closeAllConnections?.()
  await new Promise((r) => (c.op ? c.op.close(r) : r()))
}

process.exitCode = (await t.run({ before, after })) ? 1 : 0
