// Sign-in state. Production: OpenID Connect Authorization Code + PKCE with oidc-client-ts against
// the issuer named by GET /api/v1/config (loaded lazily, so dev mode never downloads it).
// Dev mode (config.dev): POST /api/v1/dev/token for a picked identity. Either way the token lives
// in memory and sessionStorage (per tab, gone when the tab closes) and is renewed before it expires.
import { reactive } from 'vue'
import type { UserManager, User } from 'oidc-client-ts'
import { createClient } from './api/client'
import type { DevTokenRequest, Me, ServerConfig } from './api/types'

export interface DevIdentity {
  user: string
  email?: string
  groups: string[]
}

export const SAMPLE_USERS: DevIdentity[] = [
  { user: 'alice', email: 'alice@example.com', groups: ['developers'] },
  { user: 'bob', email: 'bob@example.com', groups: ['developers'] },
  { user: 'carol', email: 'carol@example.com', groups: ['sre-leads'] },
  { user: 'dave', email: 'dave@example.com', groups: ['airlock-admins'] },
]

export const auth = reactive({
  config: null as ServerConfig | null,
  token: null as string | null,
  expiresAt: 0, // ms
  me: null as Me | null,
  devIdentity: null as DevIdentity | null,
  /** A message for the sign-in page (why the person landed there). */
  notice: '',
})

const DEV_KEY = 'airlock.dev'
/** Asked for when the server names no scopes (a server from before uiScopes). */
export const DEFAULT_SCOPES = ['openid', 'profile', 'email']
const RENEW_MARGIN_MS = 60_000
let renewTimer: ReturnType<typeof setTimeout> | null = null
let manager: UserManager | null = null
let onSignedOut: (() => void) | null = null

export const api = createClient({
  getToken: () => getToken(),
  onUnauthorized: () => {
    if (!auth.token) return
    clearLocal()
    manager?.removeUser().catch(() => {}) // a refused OIDC token must not be restored on reload
    auth.notice = 'Your sign-in has expired or was refused. Please sign in again.'
    onSignedOut?.()
  },
})

export function setSignedOutHandler(fn: () => void) {
  onSignedOut = fn
}

export async function loadConfig(): Promise<ServerConfig> {
  const c = await api.config()
  auth.config = c
  return c
}

function store(): Storage | null {
  try {
    return window.sessionStorage
  } catch {
    return null
  }
}

function clearLocal() {
  if (renewTimer) clearTimeout(renewTimer)
  renewTimer = null
  auth.token = null
  auth.expiresAt = 0
  auth.me = null
  store()?.removeItem(DEV_KEY)
}

// ---- dev mode -----------------------------------------------------------------------------

function scheduleDevRenew() {
  if (renewTimer) clearTimeout(renewTimer)
  const wait = Math.max(5_000, auth.expiresAt - Date.now() - RENEW_MARGIN_MS)
  renewTimer = setTimeout(() => {
    if (auth.devIdentity) signInDev(auth.devIdentity).catch(() => {})
  }, Math.min(wait, 2 ** 31 - 1))
}

export async function signInDev(id: DevIdentity): Promise<void> {
  const body: DevTokenRequest = { user: id.user.trim(), groups: id.groups.map((g) => g.trim()).filter(Boolean) }
  if (id.email && id.email.trim()) body.email = id.email.trim()
  const r = await api.devToken(body)
  const exp = Date.parse(r.expiresAt)
  auth.token = r.token
  auth.expiresAt = Number.isNaN(exp) ? Date.now() + 3600_000 : exp
  auth.devIdentity = { user: body.user, email: body.email, groups: body.groups }
  auth.notice = ''
  store()?.setItem(DEV_KEY, JSON.stringify({ token: auth.token, expiresAt: auth.expiresAt, identity: auth.devIdentity }))
  scheduleDevRenew()
}

function restoreDev(): boolean {
  const raw = store()?.getItem(DEV_KEY)
  if (!raw) return false
  try {
    const v = JSON.parse(raw) as { token: string; expiresAt: number; identity: DevIdentity }
    auth.devIdentity = v.identity
    if (typeof v.token !== 'string' || !(v.expiresAt > Date.now() + 5_000)) {
      // expired: try to get a fresh one for the same identity
      return false
    }
    auth.token = v.token
    auth.expiresAt = v.expiresAt
    scheduleDevRenew()
    return true
  } catch {
    return false
  }
}

// ---- OIDC ---------------------------------------------------------------------------------

/**
 * The `scope` parameter: the configured scopes (uiScopes, e.g. with `groups` for Dex, so that the
 * tokens carry the groups approvers are configured by), else the default.
 */
export function scopeFor(c: Pick<ServerConfig, 'oidc'> | null): string {
  const s = c?.oidc?.scopes
  return (Array.isArray(s) && s.length > 0 ? s : DEFAULT_SCOPES).join(' ')
}

async function oidcManager(): Promise<UserManager> {
  if (manager) return manager
  const c = auth.config
  if (!c?.oidc?.issuer || !c.oidc.clientId) throw new Error('This server has no sign-in provider configured.')
  const { UserManager, WebStorageStateStore } = await import('oidc-client-ts')
  const origin = window.location.origin
  manager = new UserManager({
    authority: c.oidc.issuer,
    client_id: c.oidc.clientId,
    redirect_uri: origin + '/auth/callback',
    silent_redirect_uri: origin + '/auth/silent',
    post_logout_redirect_uri: origin + '/login',
    response_type: 'code', // + PKCE, always on in oidc-client-ts
    scope: scopeFor(c),
    automaticSilentRenew: true,
    userStore: new WebStorageStateStore({ store: window.sessionStorage }),
  })
  manager.events.addUserLoaded((u) => useOidcUser(u))
  manager.events.addUserUnloaded(() => clearLocal())
  manager.events.addSilentRenewError(() => {
    /* keep the current token until it expires; a 401 then sends the person to sign in */
  })
  return manager
}

/** The bearer to send: the access token when it is a JWT (RFC 9068), else the ID token. */
export function bearerFor(u: Pick<User, 'access_token' | 'id_token'>): string {
  const isJwt = (t?: string) => !!t && t.split('.').length === 3
  if (isJwt(u.access_token)) return u.access_token
  return u.id_token || u.access_token
}

function useOidcUser(u: User) {
  auth.token = bearerFor(u)
  auth.expiresAt = u.expires_at ? u.expires_at * 1000 : Date.now() + 300_000
  auth.notice = ''
}

export async function startOidcSignIn(returnTo: string): Promise<void> {
  const m = await oidcManager()
  await m.signinRedirect({ state: { returnTo } })
}

/** On /auth/callback: finish the code exchange; returns where to go next. */
export async function completeOidcSignIn(): Promise<string> {
  const m = await oidcManager()
  const u = await m.signinRedirectCallback()
  useOidcUser(u)
  const st = u.state as { returnTo?: string } | undefined
  const to = st?.returnTo
  return typeof to === 'string' && to.startsWith('/') && !to.startsWith('//') ? to : '/debug-sessions'
}

/** In the hidden iframe of a silent renewal (/auth/silent). */
export async function completeSilentRenew(): Promise<void> {
  const m = await oidcManager()
  await m.signinSilentCallback()
}

// ---- common -------------------------------------------------------------------------------

/** Restore a sign-in from this tab's storage. True when a token is available. */
export async function restore(): Promise<boolean> {
  const c = auth.config
  if (!c) return false
  if (c.dev) {
    if (restoreDev()) return true
    if (auth.devIdentity) {
      try {
        await signInDev(auth.devIdentity)
        return true
      } catch {
        clearLocal()
      }
    }
    return false
  }
  if (!c.oidc?.issuer) return false
  try {
    const m = await oidcManager()
    const u = await m.getUser()
    if (u && !u.expired) {
      useOidcUser(u)
      return true
    }
    if (u) {
      const r = await m.signinSilent().catch(() => null)
      if (r) {
        useOidcUser(r)
        return true
      }
    }
  } catch {
    /* fall through to sign-in page */
  }
  return false
}

export async function getToken(): Promise<string | null> {
  if (!auth.token) return null
  if (auth.expiresAt && auth.expiresAt - Date.now() < 10_000) {
    try {
      if (auth.config?.dev && auth.devIdentity) await signInDev(auth.devIdentity)
      else if (manager) {
        const u = await manager.signinSilent()
        if (u) useOidcUser(u)
      }
    } catch {
      /* use what we have; the server answers 401 if it is too old */
    }
  }
  return auth.token
}

export async function loadMe(): Promise<Me> {
  const me = await api.me()
  auth.me = me
  return me
}

export async function signOut(): Promise<void> {
  const wasOidc = !auth.config?.dev && manager
  clearLocal()
  auth.devIdentity = null
  if (wasOidc && manager) {
    await manager.removeUser().catch(() => {})
  }
}
