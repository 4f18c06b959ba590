// Issue 12 in the UI: events in plain words, one UTC format, presence per participant (a ticket is
// not a join), the agent-offline countdown, the effective duration, and the owner managing people.
import { afterEach, describe, expect, it, vi } from 'vitest'
import SessionView from '../src/views/SessionView.vue'
import { eventWords } from '../src/lib/events'
import { formatTime } from '../src/lib/time'
import { session } from './fixtures'
import { mountView, settle, signIn, stubApi } from './helpers'

afterEach(() => {
  vi.unstubAllGlobals()
  document.body.innerHTML = ''
})

const ev = (type: string, data: Record<string, unknown> = {}, actor: string | null = 'alice') => ({ at: '2026-12-05T07:20:03Z', actor, type, data })
const words = (e: ReturnType<typeof ev>) => {
  const w = eventWords(e)
  return `${w.who} ${w.what}`
}

describe('events in plain words', () => {
  it('words every contract type without raw key: value data', () => {
    expect(words(ev('renewed', { extendBy: '30m', renewalCount: 1 }))).toBe('alice extended the session by 30 min (renewal 1)')
    expect(words(ev('renewed', { by: 'airlock', auto: true, extendBy: '15m' }, 'airlock'))).toBe('airlock extended the session by 15 min automatically, as someone was typing')
    expect(words(ev('ticket_issued', { role: 'viewer' }, 'bob'))).toBe('bob asked to join as a viewer (a ticket, not connected yet)')
    expect(words(ev('connected', { role: 'participant', conn: 'c1' }, 'bob'))).toBe('bob connected as a participant')
    expect(words(ev('disconnected', { role: 'participant', conn: 'c1', seconds: 125 }, 'bob'))).toBe('bob disconnected after 2 min 5 s')
    expect(words(ev('role_changed', { user: 'bob', from: 'participant', to: 'viewer' }))).toBe('alice made bob a viewer (was participant)')
    expect(words(ev('removed', { user: 'bob', role: 'viewer' }))).toBe('alice removed bob from the session')
    expect(words(ev('expired', { reason: 'idle' }, 'airlock'))).toBe('airlock ended the session: nobody typed for too long')
    expect(words(ev('expired', { reason: 'claim_deadline' }, 'airlock'))).toBe('airlock ended the session: nobody connected in time')
    expect(words(ev('failed', { reason: 'agent_gone' }, 'airlock'))).toBe('airlock marked the session failed: the agent went away and did not come back')
    expect(words(ev('terminated', { reason: 'wait_timeout' }, 'airlock'))).toMatch(/^airlock ended the session: nobody connected before/)
    expect(words(ev('terminated', { reason: 'done here' }))).toBe('alice ended the session: “done here”')
    expect(words(ev('expiring', { timeLeft: 300 }, 'airlock'))).toBe('airlock warned that the session ends soon (5 min left)')
    expect(words(ev('activated', {}, 'system'))).toBe('airlock started the session')
  })
  it('renders an unknown type generically', () => {
    expect(words(ev('recording_sealed', { sha256: 'x' }, 'airlock'))).toBe('airlock recording sealed')
  })
  it('shows every time in UTC with the zone, one format', () => {
    expect(formatTime('2026-12-05T07:20:03Z')).toBe('2026-12-05 07:20:03 UTC')
    expect(formatTime('2026-12-05T09:20:03+02:00')).toBe('2026-12-05 07:20:03 UTC')
    expect(formatTime(null)).toBe('—')
  })
})

describe('the session page', () => {
  const NAME = 'ds-abcdefghij'
  const path = `/api/v1/debug-sessions/${NAME}`

  it('shows presence per participant, the offline countdown and the effective duration', async () => {
    signIn({ user: 'carol', groups: ['sre-leads'] })
    const now = Date.now()
    const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z')
    const s = session({}, {
      effectiveDuration: '1h30m',
      agent: { online: false, hostKeyFingerprints: [], offlineSince: iso(now - 50_000), failsAt: iso(now + 250_500) },
      participants: [
        { user: 'bob', role: 'owner', joinedAt: iso(now - 200_000), leftAt: null, connections: 2, connectedSince: '2026-12-05T07:00:00Z', lastInputAt: iso(now - 12_000), firstConnectedAt: '2026-12-05T07:00:00Z' },
        { user: 'dana', role: 'viewer', joinedAt: iso(now - 100_000), leftAt: null, connections: 0, connectedSince: null, lastInputAt: null, firstConnectedAt: null },
        { user: 'erik', role: 'participant', joinedAt: iso(now - 100_000), leftAt: null, connections: 0, connectedSince: null, lastInputAt: null, firstConnectedAt: '2026-12-05T07:01:00Z' },
      ],
    })
    stubApi({ [`GET ${path}`]: () => s, [`GET ${path}/events`]: () => ({ events: [ev('renewed', { extendBy: '30m', renewalCount: 1 })] }) })
    const { wrapper } = await mountView(SessionView, '/debug-sessions/:name', `/debug-sessions/${NAME}`)
    const presence = (u: string) => wrapper.find(`[data-user=${u}] [data-testid=presence]`).text()
    expect(presence('bob')).toMatch(/^connected \(2 connections\) since 2026-12-05 07:00:00 UTC · last input \d+ s ago$/)
    expect(presence('dana')).toBe('ticket issued, not connected yet')
    expect(presence('erik')).toBe('not connected now (first connected 2026-12-05 07:01:00 UTC)')
    expect(wrapper.find('[data-testid=agent-offline]').text()).toMatch(/Agent offline — the session fails in 4m [01]\ds unless it comes back/)
    expect(wrapper.find('[data-testid=duration]').text()).toBe('1h30m (requested 1h, with renewals)')
    const tl = wrapper.find('[data-testid=timeline]').text()
    expect(tl).toContain('2026-12-05 07:20:03 UTC')
    expect(tl).toContain('alice extended the session by 30 min (renewal 1)')
    expect(tl).not.toMatch(/extendBy|renewalCount/)
    expect(wrapper.find('[data-user=dana] select').exists()).toBe(false) // carol is not the owner
    wrapper.unmount()
  })

  it('tolerates a server without presence fields', async () => {
    signIn({ user: 'carol', groups: ['sre-leads'] })
    const s = session()
    stubApi({ [`GET ${path}`]: () => s, [`GET ${path}/events`]: () => ({ events: [] }) })
    const { wrapper } = await mountView(SessionView, '/debug-sessions/:name', `/debug-sessions/${NAME}`)
    expect(wrapper.find('[data-user=bob] [data-testid=presence]').text()).toMatch(/^joined \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/)
    expect(wrapper.find('[data-testid=agent-offline]').exists()).toBe(false)
    expect(wrapper.find('[data-testid=duration]').text()).toBe('1h')
    wrapper.unmount()
  })

  it('lets the owner invite, change a role and remove someone', async () => {
    signIn({ user: 'bob' })
    const s = session({}, {
      participants: [
        { user: 'bob', role: 'owner', joinedAt: '2026-12-05T07:00:00Z', leftAt: null },
        { user: 'dana', role: 'viewer', joinedAt: '2026-12-05T07:00:00Z', leftAt: null },
      ],
    })
    const calls = stubApi({
      [`GET ${path}`]: () => s,
      [`GET ${path}/events`]: () => ({ events: [] }),
      [`POST ${path}/invite`]: () => s,
      [`POST ${path}/participants/dana`]: () => s,
      [`DELETE ${path}/participants/dana`]: () => [403, { error: 'only the session\'s owner or an admin may change or remove participants', code: 'FORBIDDEN' }],
    })
    const { wrapper } = await mountView(SessionView, '/debug-sessions/:name', `/debug-sessions/${NAME}`)
    expect(wrapper.find('[data-user=bob] select').exists()).toBe(false) // not the owner's own row
    await wrapper.find('#invite-users').setValue('erik, fay@example.com')
    await wrapper.find('#invite-role').setValue('viewer')
    await wrapper.find('form.invite-form').trigger('submit')
    await settle()
    expect(calls.find((c) => c.method === 'POST' && c.path.endsWith('/invite'))!.body).toEqual({ users: ['erik', 'fay@example.com'], role: 'viewer' })
    await wrapper.find('[data-user=dana] select').setValue('participant')
    await settle()
    expect(calls.find((c) => c.path.endsWith('/participants/dana'))!.body).toEqual({ role: 'participant' })
    await wrapper.find('[data-user=dana] button').trigger('click')
    await wrapper.find('[data-user=dana] button.btn-danger').trigger('click')
    await settle()
    expect(calls.some((c) => c.method === 'DELETE' && c.path === `${path}/participants/dana`)).toBe(true)
    expect(wrapper.find('[data-testid=participants] [role=alert]').text()).toContain('owner or an admin')
    wrapper.unmount()
  })
})
