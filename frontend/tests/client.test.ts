import { describe, expect, it, vi } from 'vitest'
import { ApiError, ENDPOINTS, createClient, fillPath, sessionQueryString } from '../src/api/client'

function fakeFetch(status: number, body: unknown, raw?: string) {
  return vi.fn(async (_url: RequestInfo | URL, _init?: RequestInit) =>
    new Response(raw ?? JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } }),
  )
}

describe('api client', () => {
  it('percent-encodes agent names as one segment', () => {
    expect(fillPath(ENDPOINTS.getAgent.path, { name: 'gh/acme/web/42-1' })).toBe('/api/v1/agents/gh%2Facme%2Fweb%2F42-1')
    expect(() => fillPath(ENDPOINTS.getSession.path, {})).toThrow()
  })

  it('builds the session query', () => {
    expect(sessionQueryString({ state: ['Active', 'PendingApproval'], mine: true, limit: 10 })).toBe('?state=Active,PendingApproval&mine=true&limit=10')
    expect(sessionQueryString({})).toBe('')
  })

  it('sends the bearer and JSON body with the right method and path', async () => {
    const f = fakeFetch(200, { name: 'ds-a' })
    const c = createClient({ fetch: f, getToken: () => 'tok' })
    await c.renew('ds-a', '30m')
    const [url, init] = f.mock.calls[0]
    expect(url).toBe('/api/v1/debug-sessions/ds-a/renew')
    expect(init?.method).toBe('POST')
    expect((init?.headers as Record<string, string>).Authorization).toBe('Bearer tok')
    expect(JSON.parse(String(init?.body))).toEqual({ extendBy: '30m' })
  })

  it('does not send a bearer to GET /config', async () => {
    const f = fakeFetch(200, { version: '1', dev: true, publicUrl: 'x', oidc: null })
    await createClient({ fetch: f, getToken: () => 'tok' }).config()
    expect((f.mock.calls[0][1]?.headers as Record<string, string>).Authorization).toBeUndefined()
  })

  it('turns the error envelope into plain words', async () => {
    const f = fakeFetch(403, { error: 'maximum renewals (3) reached', code: 'FORBIDDEN', details: null })
    const err = await createClient({ fetch: f }).renew('ds-a', '1h').catch((e) => e)
    expect(err).toBeInstanceOf(ApiError)
    expect(err.message).toBe('maximum renewals (3) reached')
    expect(err.status).toBe(403)
    expect(err.code).toBe('FORBIDDEN')
  })

  it('has words for bodies that are not the envelope', async () => {
    const err = await createClient({ fetch: fakeFetch(502, null, '<html>bad gateway</html>') }).me().catch((e) => e)
    expect(err.message).toMatch(/unreachable|gateway/i)
    const err2 = await createClient({ fetch: fakeFetch(200, null, 'not json') }).me().catch((e) => e)
    expect(err2.message).toMatch(/unexpected/i)
  })

  it('reports a network failure in plain words', async () => {
    const f = vi.fn(async () => {
      throw new TypeError('Failed to fetch')
    })
    const err = await createClient({ fetch: f as unknown as typeof fetch }).me().catch((e) => e)
    expect(err.message).toMatch(/cannot reach/i)
  })

  it('calls onUnauthorized on a 401', async () => {
    const on = vi.fn()
    await createClient({ fetch: fakeFetch(401, { error: 'token expired', code: 'UNAUTHORIZED' }), onUnauthorized: on })
      .listSessions()
      .catch(() => {})
    expect(on).toHaveBeenCalledOnce()
  })
})
