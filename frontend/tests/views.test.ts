import { afterEach, describe, expect, it, vi } from 'vitest'
import { mount } from '@vue/test-utils'
import { createMemoryHistory, createRouter } from 'vue-router'
import SessionActions from '../src/components/SessionActions.vue'
import SessionsView from '../src/views/SessionsView.vue'
import SessionView from '../src/views/SessionView.vue'
import NewSessionView from '../src/views/NewSessionView.vue'
import AgentsView from '../src/views/AgentsView.vue'
import LoginView from '../src/views/LoginView.vue'
import { auth } from '../src/auth'
import { clearTemplateCache } from '../src/lib/templates'
import { ciDebug, session } from './fixtures'
import { mountView, settle, signIn, stubApi } from './helpers'

afterEach(() => {
  vi.unstubAllGlobals()
  clearTemplateCache()
  document.body.innerHTML = ''
  sessionStorage.clear()
})

async function mountActions(s = session()) {
  const router = createRouter({ history: createMemoryHistory(), routes: [{ path: '/:p(.*)*', component: { template: '<div/>' } }] })
  const w = mount(SessionActions, { props: { session: s }, global: { plugins: [router] }, attachTo: document.body })
  await settle()
  return w
}
const buttons = (w: ReturnType<typeof mount>) => w.findAll('button, a').map((b) => b.text())

describe('session actions follow the can* flags', () => {
  it('shows nothing but a dash without flags', async () => {
    signIn()
    const w = await mountActions()
    expect(buttons(w)).toEqual([])
    expect(w.text()).toBe('—')
  })

  it('approver sees Approve and Reject; reject needs a reason when the template says so', async () => {
    signIn({ user: 'carol', groups: ['sre-leads'] })
    const calls = stubApi({
      'GET /api/v1/debug-session-templates/ci-debug': () => ciDebug,
      'POST /api/v1/debug-sessions/ds-abcdefghij/reject': (b) => session({}, { state: 'Terminated', approval: { required: true, rejectedBy: 'carol', reason: (b as { reason: string }).reason } }),
    })
    const s = session({ canApprove: true, canReject: true }, { state: 'PendingApproval' })
    const w = await mountActions(s)
    expect(buttons(w)).toEqual(['Approve', 'Reject…'])
    await w.findAll('button')[1].trigger('click')
    await settle()
    expect(w.find('label').text()).toContain('(required)')
    await w.find('form').trigger('submit')
    await settle()
    expect(w.find('[role=alert]').text()).toMatch(/reason is required/)
    expect(calls.filter((c) => c.method === 'POST')).toHaveLength(0)
    await w.find('textarea').setValue('Use the sandbox template')
    await w.find('form').trigger('submit')
    await settle()
    const post = calls.find((c) => c.method === 'POST')!
    expect(post.path).toBe('/api/v1/debug-sessions/ds-abcdefghij/reject')
    expect(post.body).toEqual({ reason: 'Use the sandbox template' })
    expect(w.emitted('updated')).toHaveLength(1)
  })

  it('requester of a pending request sees no Approve, only Withdraw', async () => {
    signIn({ user: 'bob' })
    const w = await mountActions(session({ canApprove: false, canReject: false, canTerminate: true }, { state: 'PendingApproval', participants: [] }))
    expect(buttons(w)).toEqual(['Withdraw…'])
  })

  it('renew offers choices within the template and shows the server refusal in its words', async () => {
    signIn({ user: 'bob' })
    const calls = stubApi({
      'GET /api/v1/debug-session-templates/ci-debug': () => ciDebug,
      'POST /api/v1/debug-sessions/ds-abcdefghij/renew': () => [403, { error: 'maximum renewals (3) reached', code: 'FORBIDDEN', details: null }],
    })
    const w = await mountActions(session({ canRenew: true, canTerminate: true }))
    await w.findAll('button').find((b) => b.text() === 'Renew…')!.trigger('click')
    await settle()
    const opts = w.findAll('option').map((o) => o.attributes('value'))
    expect(opts).toEqual(['15m', '30m', '1h', '2h', '3h']) // 1 h of a 4 h maximum used
    await w.find('select').setValue('30m')
    await w.find('form').trigger('submit')
    await settle()
    expect(calls.find((c) => c.method === 'POST')!.body).toEqual({ extendBy: '30m' })
    expect(w.find('[role=alert]').text()).toBe('maximum renewals (3) reached')
  })

  it('invitee sees Join linking to the join form; active participant sees Leave', async () => {
    signIn({ user: 'dana' })
    let w = await mountActions(session({ canJoin: true }))
    expect(buttons(w)).toEqual(['Join'])
    expect(w.find('a').attributes('href')).toContain('/debug-sessions/ds-abcdefghij?join=1')
    w.unmount()
    const s = session({ canJoin: false })
    s.status.participants!.push({ user: 'dana', role: 'participant', joinedAt: s.createdAt, leftAt: null })
    w = await mountActions(s)
    expect(buttons(w)).toEqual(['Leave'])
  })
})

describe('sessions list', () => {
  it('asks for the default states and shows rows with a live countdown', async () => {
    signIn()
    const calls = stubApi({ 'GET /api/v1/debug-sessions': () => ({ sessions: [session()], total: 1, nextCursor: null }) })
    const { wrapper } = await mountView(SessionsView, '/debug-sessions', '/debug-sessions')
    const url = (globalThis.fetch as unknown as { mock: { calls: [string][] } }).mock.calls[0][0]
    expect(url).toContain('state=Active,Pending,PendingApproval')
    expect(calls[0].path).toBe('/api/v1/debug-sessions')
    const row = wrapper.find('tr[data-session=ds-abcdefghij]')
    expect(row.text()).toContain('ci-debug')
    expect(row.text()).toContain('Bob')
    expect(row.text()).toContain('online')
    expect(row.find('.time-left').text()).toMatch(/^time left: (54|55)m \d\ds$/)
    wrapper.unmount()
  })

  it('shows an empty state', async () => {
    signIn()
    stubApi({ 'GET /api/v1/debug-sessions': () => ({ sessions: [], total: 0, nextCursor: null }) })
    const { wrapper } = await mountView(SessionsView, '/debug-sessions', '/debug-sessions')
    expect(wrapper.text()).toContain('No sessions')
    wrapper.unmount()
  })

  it('shows the API error in plain words', async () => {
    signIn()
    stubApi({ 'GET /api/v1/debug-sessions': () => [500, { error: 'database is locked', code: 'INTERNAL_ERROR', details: null }] })
    const { wrapper } = await mountView(SessionsView, '/debug-sessions', '/debug-sessions')
    expect(wrapper.find('[role=alert]').text()).toContain('database is locked')
    wrapper.unmount()
  })
})

describe('session details', () => {
  it('shows status, approval, participants, renewals left and the timeline', async () => {
    signIn({ user: 'carol', groups: ['sre-leads'] })
    const s = session()
    stubApi({
      'GET /api/v1/debug-sessions/ds-abcdefghij': () => s,
      'GET /api/v1/debug-sessions/ds-abcdefghij/events': () => ({
        events: [
          { at: s.createdAt, actor: 'bob', type: 'created', data: {} },
          { at: s.createdAt, actor: 'carol', type: 'approved', data: {} },
        ],
      }),
    })
    const { wrapper } = await mountView(SessionView, '/debug-sessions/:name', '/debug-sessions/ds-abcdefghij')
    expect(wrapper.find('h1').text()).toBe('ds-abcdefghij')
    expect(wrapper.find('[data-testid=approval]').text()).toContain('Approved by carol')
    expect(wrapper.find('[data-testid=renewals-left]').text()).toContain('2 of 3')
    expect(wrapper.find('[data-testid=timeline]').text()).toContain('carol approved')
    expect(wrapper.text()).toContain('owner')
    wrapper.unmount()
  })

  it('joins with a public key and shows copyable attach lines', async () => {
    signIn({ user: 'alice' })
    const s = session({ canJoin: true })
    const joined = session()
    joined.status.participants!.push({ user: 'alice', role: 'participant', joinedAt: s.createdAt, leftAt: null })
    const attach = {
      command: "ssh -o ProxyCommand='airlock --server https://airlock.example.com proxy %n --ticket T' ds-abcdefghij",
      knownHostsLine: 'ds-abcdefghij ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA',
      hostKeyFingerprints: ['SHA256:abc'],
      connectUrl: 'wss://airlock.example.com/api/v1/debug-sessions/ds-abcdefghij/connect',
      ticket: 'T',
      ticketExpiresAt: s.status.expiresAt!,
    }
    const calls = stubApi({
      'GET /api/v1/debug-sessions/ds-abcdefghij': () => s,
      'GET /api/v1/debug-sessions/ds-abcdefghij/events': () => ({ events: [] }),
      'POST /api/v1/debug-sessions/ds-abcdefghij/join': () => ({ session: joined, role: 'participant', attach }),
    })
    const { wrapper } = await mountView(SessionView, '/debug-sessions/:name', '/debug-sessions/ds-abcdefghij?join=1')
    await wrapper.find('#join-key').setValue('-----BEGIN OPENSSH PRIVATE KEY-----')
    await wrapper.find('form.join-form').trigger('submit')
    await settle()
    expect(wrapper.find('.join-form [role=alert]').text()).toMatch(/private key/)
    expect(calls.some((c) => c.method === 'POST')).toBe(false)
    await wrapper.find('#join-key').setValue('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA alice@laptop')
    await wrapper.find('form.join-form').trigger('submit')
    await settle()
    expect(calls.find((c) => c.method === 'POST')!.body).toEqual({ sshPublicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA alice@laptop' })
    expect(wrapper.find('[data-testid=attach-command] pre').text()).toBe(attach.command)
    expect(wrapper.find('[data-testid=known-hosts] pre').text()).toBe(attach.knownHostsLine)
    expect(wrapper.find('[data-testid=cli-join] pre').text()).toBe('airlock --server https://airlock.example.com join ds-abcdefghij')
    const write = vi.fn(async () => {})
    Object.defineProperty(navigator, 'clipboard', { value: { writeText: write }, configurable: true })
    Object.defineProperty(window, 'isSecureContext', { value: true, configurable: true })
    await wrapper.find('[data-testid=attach-command] button').trigger('click')
    await settle()
    expect(write).toHaveBeenCalledWith(attach.command)
    expect(wrapper.find('[data-testid=attach-command] button').text()).toBe('Copied')
    wrapper.unmount()
  })

  it('says plainly when a session is not found', async () => {
    signIn()
    stubApi({})
    const { wrapper } = await mountView(SessionView, '/debug-sessions/:name', '/debug-sessions/ds-nothere000')
    expect(wrapper.text()).toContain('Session not found')
    wrapper.unmount()
  })
})

describe('new session', () => {
  it('offers online allowed agents, previews approval and enforces the reason rules', async () => {
    signIn({ user: 'alice', groups: ['developers'] })
    const calls = stubApi({
      'GET /api/v1/debug-session-templates': () => ({ templates: [ciDebug], total: 1 }),
      'GET /api/v1/agents': () => ({
        agents: [
          { name: 'demo', labels: {}, online: true },
          { name: 'gh/acme/web/1-1', labels: {}, online: false },
          { name: 'prod-db', labels: {}, online: true },
        ],
      }),
      'POST /api/v1/debug-sessions': () => [201, session({ name: 'ds-newnewnewn' }, { state: 'PendingApproval' })],
    })
    const { wrapper, router } = await mountView(NewSessionView, '/debug-sessions/new', '/debug-sessions/new')
    // one template: chosen already
    const agentOpts = wrapper.findAll('#ns-agent option').map((o) => o.text())
    expect(agentOpts).toEqual(['Choose an online agent', 'demo'])
    expect(wrapper.text()).toContain('1 allowed agent(s) offline')
    await wrapper.find('#ns-agent').setValue('demo')
    expect(wrapper.find('[data-testid=approval-preview]').text()).toContain('Needs approval by a member of group sre-leads')
    const durations = wrapper.findAll('#ns-duration option').map((o) => o.attributes('value'))
    expect(Math.max(...durations.map(Number))).toBe(4 * 3600)
    expect((wrapper.find('#ns-duration').element as HTMLSelectElement).value).toBe(String(3600))
    await wrapper.find('#ns-reason').setValue('too short')
    await wrapper.find('form').trigger('submit')
    await settle()
    expect(wrapper.text()).toContain('at least 10 characters')
    expect(calls.some((c) => c.method === 'POST')).toBe(false)
    await wrapper.find('#ns-reason').setValue('The e2e job hangs on step 4')
    await wrapper.find('#ns-invite').setValue('bob, dana@example.com')
    await wrapper.find('form').trigger('submit')
    await settle()
    expect(calls.find((c) => c.method === 'POST')!.body).toEqual({
      template: 'ci-debug',
      agent: 'demo',
      requestedDuration: '1h',
      reason: 'The e2e job hangs on step 4',
      invitedParticipants: ['bob', 'dana@example.com'],
    })
    expect(router.currentRoute.value.path).toBe('/debug-sessions/ds-newnewnewn')
    wrapper.unmount()
  })
})

describe('agents', () => {
  it('lists agents and shows the server\'s CI snippets for the chosen template', async () => {
    signIn()
    const asked: string[] = []
    const snippet = (ci: string) => (_b: unknown, url: URL) => {
      asked.push(`${ci}:${url.searchParams.get('template')}`)
      return { ci, template: url.searchParams.get('template'), text: `${ci} lines for ${url.searchParams.get('template')}\n` }
    }
    stubApi({
      'GET /api/v1/agents': () => ({
        agents: [{ name: 'gh/acme/web/1-1', labels: { repo: 'acme/web' }, online: true, version: '1.2.0', sessions: ['ds-abcdefghij'] }],
      }),
      'GET /api/v1/debug-session-templates': () => ({ templates: [ciDebug], total: 1 }),
      'GET /api/v1/snippets/github': snippet('github'),
      'GET /api/v1/snippets/gitlab': snippet('gitlab'),
    })
    const { wrapper } = await mountView(AgentsView, '/agents', '/agents')
    await settle()
    const row = wrapper.find('tr[data-agent="gh/acme/web/1-1"]')
    expect(row.text()).toContain('repo=acme/web')
    expect(row.text()).toContain('1.2.0')
    expect(row.find('a').attributes('href')).toBe('/debug-sessions/ds-abcdefghij')
    expect(wrapper.find('[data-testid=agent-snippet] pre').text()).toBe('github lines for ci-debug')
    const tabs = wrapper.findAll('[role=tab]')
    await tabs[0].trigger('keydown', { key: 'ArrowRight' })
    await settle()
    expect(wrapper.find('[role=tab][aria-selected=true]').text()).toBe('GitLab CI')
    expect(wrapper.find('[data-testid=agent-snippet] pre').text()).toBe('gitlab lines for ci-debug')
    expect(asked).toContain('gitlab:ci-debug')
    wrapper.unmount()
  })

  it('says so when the snippet cannot be loaded', async () => {
    signIn()
    stubApi({
      'GET /api/v1/agents': () => ({ agents: [] }),
      'GET /api/v1/debug-session-templates': () => ({ templates: [ciDebug], total: 1 }),
      'GET /api/v1/snippets/github': () => [404, { error: "template 'ci-debug' not found", code: 'NOT_FOUND' }],
    })
    const { wrapper } = await mountView(AgentsView, '/agents', '/agents')
    await settle()
    expect(wrapper.text()).toContain("Could not load the snippet: template 'ci-debug' not found")
    wrapper.unmount()
  })
})

describe('dev sign-in', () => {
  it('quick-pick asks the dev issuer for a token with the sample groups', async () => {
    auth.token = null
    auth.me = null
    auth.config = { version: 't', dev: true, publicUrl: 'http://x', oidc: null }
    const calls = stubApi({
      'POST /api/v1/dev/token': () => ({ token: 'a.b.c', expiresAt: new Date(Date.now() + 3600e3).toISOString() }),
      'GET /api/v1/me': () => ({ user: 'carol', email: 'carol@example.com', displayName: 'Carol', groups: ['sre-leads'], admin: false }),
    })
    const { wrapper, router } = await mountView(LoginView, '/login', '/login?next=/agents')
    await wrapper.find('[data-testid=pick-carol]').trigger('click')
    await settle()
    expect(calls[0]).toEqual({ method: 'POST', path: '/api/v1/dev/token', body: { user: 'carol', email: 'carol@example.com', groups: ['sre-leads'] } })
    expect(auth.token).toBe('a.b.c')
    expect((auth.me as { user: string } | null)?.user).toBe('carol')
    expect(router.currentRoute.value.path).toBe('/agents')
    expect(JSON.parse(sessionStorage.getItem('airlock.dev')!).token).toBe('a.b.c')
    wrapper.unmount()
  })
})
