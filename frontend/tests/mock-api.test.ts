// @vitest-environment node
// The mock API behaves like the contract says: a stateful walk through every endpoint, and every
// response validated against openapi/openapi.yaml (ajv, JSON Schema 2020-12) when that file exists.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMockServer, type MockServer } from '../../mock-api/server.mjs'
import { createValidator, loadSpec, specExists } from './openapi'

let mock: MockServer
let base = ''
const validator = specExists ? createValidator(loadSpec()) : null
const problems: string[] = []
let checked = 0

beforeAll(async () => {
  mock = createMockServer()
  base = await mock.listen(0)
})
afterAll(() => mock.close())

async function call(method: string, path: string, token: string | null, body?: unknown, raw?: string) {
  const headers: Record<string, string> = {}
  if (token) headers.Authorization = `Bearer ${token}`
  if (body !== undefined || raw !== undefined) headers['Content-Type'] = 'application/json'
  const res = await fetch(base + path, { method, headers, body: raw ?? (body === undefined ? undefined : JSON.stringify(body)) })
  const text = await res.text()
  const json = text ? JSON.parse(text) : undefined
  if (validator) {
    checked++
    const p = validator.response(method, path, res.status, json)
    if (p) problems.push(p)
  }
  if (res.status >= 400) {
    expect(typeof json.error).toBe('string')
    expect(typeof json.code).toBe('string')
  }
  return { status: res.status, body: json }
}

async function token(user: string, groups: string[]) {
  const r = await call('POST', '/api/v1/dev/token', null, { user, email: `${user}@example.com`, groups })
  expect(r.status).toBe(200)
  return r.body.token as string
}

describe('mock API', () => {
  it('walks every endpoint with the documented answers', async () => {
    const alice = await token('alice', ['developers'])
    const bob = await token('bob', ['developers'])
    const carol = await token('carol', ['sre-leads'])
    const dave = await token('dave', ['airlock-admins'])
    const ops = await token('opsbot', ['ops'])

    expect((await call('GET', '/api/v1/config', null)).body).toMatchObject({ dev: true, publicUrl: base })
    expect((await call('GET', '/readyz', null)).status).toBe(200)
    expect((await call('GET', '/healthz', null)).status).toBe(200)
    expect((await call('GET', '/api/v1/me', null)).status).toBe(401)
    expect((await call('GET', '/api/v1/me', carol)).body).toMatchObject({ user: 'carol', groups: ['sre-leads'], admin: false })
    expect((await call('GET', '/api/v1/me', dave)).body.admin).toBe(true)

    const tl = await call('GET', '/api/v1/debug-session-templates', alice)
    expect(tl.body.templates.map((t: { name: string }) => t.name)).toContain('ci-debug')
    expect((await call('GET', '/api/v1/debug-session-templates/ci-debug', alice)).body.approvalRequired).toBe(true)
    expect((await call('GET', '/api/v1/debug-session-templates/nope', alice)).status).toBe(404)

    const agents = await call('GET', '/api/v1/agents', alice)
    expect(agents.body.agents.length).toBeGreaterThan(2)
    expect((await call('GET', '/api/v1/agents/gh%2Facme%2Fweb%2F4242-1', alice)).body.name).toBe('gh/acme/web/4242-1')
    expect((await call('GET', '/api/v1/agents/nope', alice)).status).toBe(404)
    const hostKey = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIECebnGQ+w9HghMPQST6UFqbAChAu1gPjg9V7iRVwt9Y'
    expect((await call('POST', '/api/v1/agents', alice, { name: 'x', hostKeys: [hostKey] })).status).toBe(403)
    const reg = await call('POST', '/api/v1/agents', ops, { name: 'host-1', hostKeys: [hostKey], version: 'test', labels: { env: 'qa' } })
    expect(reg.status).toBe(201)
    expect(reg.body.credential.length).toBeGreaterThanOrEqual(32)
    expect((await call('POST', '/api/v1/agents', ops, { name: 'demo', hostKeys: [hostKey] })).status).toBe(409) // online

    // every fixture state is there
    const all = await call('GET', '/api/v1/debug-sessions?state=Pending,PendingApproval,Active,Expired,Terminated,Failed&limit=500', dave)
    expect(new Set(all.body.sessions.map((s: { status: { state: string } }) => s.status.state))).toEqual(
      new Set(['Pending', 'PendingApproval', 'Active', 'Expired', 'Terminated', 'Failed']),
    )
    const page1 = await call('GET', '/api/v1/debug-sessions?limit=2', dave)
    expect(page1.body.sessions).toHaveLength(2)
    const page2 = await call('GET', `/api/v1/debug-sessions?limit=2&cursor=${page1.body.nextCursor}`, dave)
    expect(page2.body.sessions[0].name).not.toBe(page1.body.sessions[0].name)
    expect((await call('GET', '/api/v1/debug-sessions?state=Bogus', dave)).status).toBe(400)

    // create: validation first
    expect((await call('POST', '/api/v1/debug-sessions', alice, { template: 'nope', agent: 'demo' })).status).toBe(400)
    expect((await call('POST', '/api/v1/debug-sessions', alice, { template: 'ci-debug', agent: 'demo', reason: 'short' })).status).toBe(400)
    expect((await call('POST', '/api/v1/debug-sessions', alice, { template: 'ci-debug', agent: 'demo', reason: 'long enough reason', extra: 1 })).status).toBe(400)
    expect((await call('POST', '/api/v1/debug-sessions', alice, { template: 'ci-debug', agent: 'demo', reason: 'long enough reason', requestedDuration: '5h' })).status).toBe(400)
    expect((await call('POST', '/api/v1/debug-sessions', alice, { template: 'prod-readonly', agent: 'demo', reason: 'a long enough reason for prod' })).status).toBe(403)
    expect((await call('POST', '/api/v1/debug-sessions', null, {}, '{')).status).toBe(401)
    expect((await call('POST', '/api/v1/debug-sessions', alice, undefined, '{')).status).toBe(400)
    expect((await call('POST', '/api/v1/debug-sessions', alice, undefined, JSON.stringify({ reason: 'x'.repeat(70000) }))).status).toBe(413)

    const created = await call('POST', '/api/v1/debug-sessions', alice, {
      template: 'ci-debug', agent: 'demo', requestedDuration: '1h', reason: 'the e2e job hangs', invitedParticipants: ['bob'],
    })
    expect(created.status).toBe(201)
    const name = created.body.name as string
    expect(created.body).toMatchObject({ status: { state: 'PendingApproval' }, canApprove: false, canTerminate: true })
    const S = `/api/v1/debug-sessions/${name}`

    // nobody but an approver decides, and never on their own request
    expect((await call('POST', `${S}/approve`, alice, {})).status).toBe(403)
    expect((await call('POST', `${S}/approve`, bob, {})).status).toBe(403)
    expect((await call('GET', S, await token('eve', ['developers']))).status).toBe(404)
    expect((await call('GET', S, carol)).body.canApprove).toBe(true)
    expect((await call('POST', `${S}/approve`, carol, { reason: 'go' })).body.status.state).toBe('Active')
    expect((await call('POST', `${S}/approve`, carol, {})).status).toBe(409)

    // join, renew, leave, invite, events
    expect((await call('POST', `${S}/join`, alice, { sshPublicKey: 'not a key' })).status).toBe(400)
    const j = await call('POST', `${S}/join`, alice, { sshPublicKey: hostKey + ' alice@laptop' })
    expect(j.status).toBe(200)
    expect(j.body.role).toBe('owner')
    expect(j.body.attach.command).toMatch(/^ssh -o ProxyCommand='airlock --server http:\/\/127\.0\.0\.1:\d+ proxy %n --ticket [A-Za-z0-9_-]{43}'/)
    expect(j.body.attach.knownHostsLine).toBe(`${name} ${hostKey}`)
    expect((await call('POST', `${S}/join`, bob, { sshPublicKey: hostKey })).body.role).toBe('participant')
    expect((await call('POST', `${S}/leave`, bob, {})).status).toBe(200)
    expect((await call('POST', `${S}/leave`, bob, {})).status).toBe(409)
    expect((await call('POST', `${S}/renew`, alice, { extendBy: 'soon' })).status).toBe(400)
    const r = await call('POST', `${S}/renew`, alice, { extendBy: '30m' })
    expect(r.body.status.renewalCount).toBe(1)
    expect((await call('POST', `${S}/renew`, alice, { extendBy: '3h' })).status).toBe(403) // past startsAt + 4h
    expect((await call('POST', `${S}/invite`, bob, { users: ['dana'], role: 'viewer' })).status).toBe(403)
    expect((await call('POST', `${S}/invite`, alice, { users: ['dana'], role: 'viewer' })).body.spec.invitedParticipants).toContain('dana')
    const ev = await call('GET', `${S}/events`, alice)
    expect(ev.body.events.map((e: { type: string }) => e.type)).toEqual(
      expect.arrayContaining(['created', 'approval_required', 'approved', 'activated', 'joined', 'left', 'renewed', 'invited']),
    )
    expect((await call('POST', `${S}/terminate`, bob, {})).status).toBe(403)
    expect((await call('POST', `${S}/terminate`, alice, { reason: 'done' })).body.status.state).toBe('Terminated')
    expect((await call('POST', `${S}/terminate`, alice, {})).status).toBe(409)
    expect((await call('POST', `${S}/join`, alice, { sshPublicKey: hostKey })).status).toBe(409)

    // a rejection needs a reason under ci-debug
    const P = '/api/v1/debug-sessions/ds-pendapr4k7'
    expect((await call('POST', `${P}/reject`, carol, {})).status).toBe(400)
    expect((await call('POST', `${P}/reject`, carol, { reason: 'use the sandbox' })).body.status).toMatchObject({ state: 'Terminated', approval: { rejectedBy: 'carol' } })

    // auto-approved template on an online agent starts at once
    const sb = await call('POST', '/api/v1/debug-sessions', bob, { template: 'sandbox', agent: 'demo' })
    expect(sb.body.status.state).toBe('Active')
    expect(sb.body.spec.requestedDuration).toBe('30m')

    mock.reset()
    expect((await call('GET', S, alice)).status).toBe(404)
  })

  it.skipIf(!specExists)('every response conforms to openapi/openapi.yaml', () => {
    expect(checked).toBeGreaterThan(50)
    expect(problems).toEqual([])
  })

  it.skipIf(!specExists)('the validator does catch a wrong body', () => {
    expect(validator!.response('GET', '/api/v1/me', 200, { user: 'x' })).toMatch(/must have required property/)
    expect(validator!.request('POST', '/api/v1/debug-sessions/ds-abcdefghij/renew', { extendBy: 'soon' })).toMatch(/pattern/)
  })
})
