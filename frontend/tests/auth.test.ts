// OIDC sign-in wiring (oidc-client-ts replaced by a recorder) and dev-token handling.
import { beforeEach, describe, expect, it, vi } from 'vitest'

const rec = vi.hoisted(() => ({
  settings: null as Record<string, unknown> | null,
  redirectArgs: [] as unknown[],
  callbackUser: null as unknown,
}))

vi.mock('oidc-client-ts', () => {
  class UserManager {
    events = { addUserLoaded() {}, addUserUnloaded() {}, addSilentRenewError() {} }
    constructor(s: Record<string, unknown>) {
      rec.settings = s
    }
    async signinRedirect(a: unknown) {
      rec.redirectArgs.push(a)
    }
    async signinRedirectCallback() {
      return rec.callbackUser
    }
    async getUser() {
      return null
    }
    async removeUser() {}
  }
  class WebStorageStateStore {
    constructor(public o: unknown) {}
  }
  return { UserManager, WebStorageStateStore }
})

import { auth, bearerFor, completeOidcSignIn, getToken, scopeFor, signInDev, startOidcSignIn } from '../src/auth'

const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln'

describe('OIDC sign-in', () => {
  beforeEach(() => {
    auth.config = { version: 't', dev: false, publicUrl: 'https://airlock.example.com', oidc: { issuer: 'https://idp.example.com/realms/corp', clientId: 'airlock-ui' } }
  })

  it('uses Authorization Code + PKCE against the configured issuer, tokens in sessionStorage', async () => {
    await startOidcSignIn('/agents')
    const s = rec.settings!
    expect(s.authority).toBe('https://idp.example.com/realms/corp')
    expect(s.client_id).toBe('airlock-ui')
    expect(s.response_type).toBe('code')
    expect(s.scope).toBe('openid profile email') // the config names no scopes: the default
    expect(s.redirect_uri).toBe(window.location.origin + '/auth/callback')
    expect(s.silent_redirect_uri).toBe(window.location.origin + '/auth/silent')
    expect(s.automaticSilentRenew).toBe(true)
    expect((s.userStore as { o: { store: Storage } }).o.store).toBe(window.sessionStorage)
    expect(rec.redirectArgs).toEqual([{ state: { returnTo: '/agents' } }])
  })

  it('finishes the callback: bearer = access token, back to where the person was', async () => {
    rec.callbackUser = { access_token: jwt, id_token: 'id.tok.en', expires_at: Math.floor(Date.now() / 1000) + 600, state: { returnTo: '/debug-sessions/ds-abcdefghij' } }
    expect(await completeOidcSignIn()).toBe('/debug-sessions/ds-abcdefghij')
    expect(auth.token).toBe(jwt)
    rec.callbackUser = { access_token: jwt, id_token: 'x', expires_at: 0, state: { returnTo: '//evil.example.com' } }
    expect(await completeOidcSignIn()).toBe('/debug-sessions')
  })

  it('asks the provider for the scopes the server names (oidc.scopes, from uiScopes)', async () => {
    // The UserManager is made once per page load: a fresh copy of the module stands for a new page.
    vi.resetModules()
    const fresh = await import('../src/auth')
    fresh.auth.config = {
      version: 't',
      dev: false,
      publicUrl: 'https://airlock.example.com',
      oidc: { issuer: 'https://dex.example.com', clientId: 'airlock-ui', scopes: ['openid', 'profile', 'email', 'groups'] },
    }
    await fresh.startOidcSignIn('/agents')
    expect(rec.settings!.authority).toBe('https://dex.example.com')
    expect(rec.settings!.scope).toBe('openid profile email groups')
  })

  it('falls back to openid profile email when the server names no scopes', () => {
    const base = { issuer: 'https://idp.example.com', clientId: 'airlock-ui' }
    expect(scopeFor({ oidc: { ...base, scopes: ['openid', 'groups'] } })).toBe('openid groups')
    expect(scopeFor({ oidc: base })).toBe('openid profile email')
    expect(scopeFor({ oidc: { ...base, scopes: [] } })).toBe('openid profile email')
    expect(scopeFor({ oidc: null })).toBe('openid profile email')
    expect(scopeFor(null)).toBe('openid profile email')
  })

  it('falls back to the ID token when the access token is opaque', () => {
    expect(bearerFor({ access_token: 'opaque', id_token: 'a.b.c' })).toBe('a.b.c')
    expect(bearerFor({ access_token: jwt, id_token: 'a.b.c' })).toBe(jwt)
  })
})

describe('dev tokens', () => {
  it('are renewed for the same identity before they expire', async () => {
    auth.config = { version: 't', dev: true, publicUrl: 'http://x', oidc: null }
    let n = 0
    const bodies: unknown[] = []
    vi.stubGlobal(
      'fetch',
      vi.fn(async (_u: unknown, init?: RequestInit) => {
        bodies.push(JSON.parse(String(init?.body)))
        n++
        // the first token is about to expire, the second one is fresh
        const exp = new Date(Date.now() + (n === 1 ? 5_000 : 3600_000)).toISOString()
        return new Response(JSON.stringify({ token: `tok${n}`, expiresAt: exp }), { status: 200 })
      }),
    )
    await signInDev({ user: 'carol', groups: ['sre-leads'] })
    expect(auth.token).toBe('tok1')
    expect(await getToken()).toBe('tok2')
    expect(bodies).toEqual([{ user: 'carol', groups: ['sre-leads'] }, { user: 'carol', groups: ['sre-leads'] }])
    vi.unstubAllGlobals()
  })
})
