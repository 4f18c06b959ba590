// The client's endpoints and request bodies must exist in, and conform to, openapi/openapi.yaml.
// Skipped (with a note) while the file does not exist.
import { describe, expect, it, vi } from 'vitest'
import { ENDPOINTS, createClient } from '../src/api/client'
import { createValidator, loadSpec, matchPath, specExists } from './openapi'

describe.skipIf(!specExists)('client against openapi/openapi.yaml', () => {
  const spec = specExists ? loadSpec() : (null as never)

  it.each(Object.entries(ENDPOINTS))('%s: method and path exist', (_name, ep) => {
    const op = spec.paths[ep.path]?.[ep.method.toLowerCase()]
    expect(op, `${ep.method} ${ep.path}`).toBeTruthy()
    const secured = !(Array.isArray(op.security) && op.security.length === 0)
    expect(secured, `${ep.path} auth`).toBe(ep.auth)
  })

  it('request bodies and queries the client sends conform', async () => {
    const v = createValidator(spec)
    const sent: { method: string; path: string; query: string; body: unknown }[] = []
    const fetchStub = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
      const u = new URL(String(input), 'http://x')
      sent.push({ method: init?.method ?? 'GET', path: u.pathname, query: u.search, body: init?.body ? JSON.parse(String(init.body)) : undefined })
      return new Response('{}', { status: 200 })
    })
    const c = createClient({ fetch: fetchStub as unknown as typeof fetch, getToken: () => 't' })
    const n = 'ds-abcdefghij'
    await c.devToken({ user: 'alice', email: 'alice@example.com', groups: ['developers'] })
    await c.devToken({ user: 'bob', groups: [] })
    await c.createSession({ template: 'ci-debug', agent: 'gh/acme/web/1-1', requestedDuration: '1h30m', reason: 'flaky test', invitedParticipants: ['bob'] })
    await c.createSession({ template: 'sandbox', agent: 'demo' })
    await c.approve(n)
    await c.approve(n, 'ok')
    await c.reject(n, 'no')
    await c.join(n, { sshPublicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA alice@laptop' })
    await c.join(n, { sshPublicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA', role: 'viewer' })
    await c.leave(n)
    await c.renew(n, '30m')
    await c.terminate(n)
    await c.terminate(n, 'done')
    await c.invite(n, ['bob'])
    await c.setRole(n, 'bob', 'viewer')
    await c.removeParticipant(n, 'bob@example.com')
    await c.registerAgent({ name: 'demo', hostKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA'], version: 'test' })
    await c.listSessions({ state: ['Active', 'Pending', 'PendingApproval'], mine: true, limit: 100 })
    await c.getAgent('gh/acme/web/1-1')
    const errors: string[] = []
    for (const s of sent) {
      expect(matchPath(spec, s.path), s.path).toBeTruthy()
      if (s.method === 'POST') errors.push(v.request(s.method, s.path, s.body))
      if (s.method === 'DELETE') expect(s.body, `${s.path}: DELETE has no body`).toBeUndefined()
      for (const [k, val] of new URLSearchParams(s.query)) errors.push(v.query(s.method, matchPath(spec, s.path)!, k, val))
    }
    expect(errors.filter(Boolean)).toEqual([])
    expect(sent.find((s) => s.path.startsWith('/api/v1/agents/'))!.path).toBe('/api/v1/agents/gh%2Facme%2Fweb%2F1-1')
  })
})
