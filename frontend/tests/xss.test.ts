// No API text may become markup: names, reasons and labels are rendered as text only.
import { afterEach, describe, expect, it, vi } from 'vitest'
import SessionView from '../src/views/SessionView.vue'
import SessionsView from '../src/views/SessionsView.vue'
import AgentsView from '../src/views/AgentsView.vue'
import { XSS, ciDebug, session } from './fixtures'
import { mountView, signIn, stubApi } from './helpers'

declare global {
  interface Window {
    __xss?: number
  }
}

afterEach(() => {
  vi.unstubAllGlobals()
  document.body.innerHTML = ''
  delete window.__xss
})

function noInjectedElements() {
  expect(document.querySelectorAll('img, script, iframe').length).toBe(0)
  expect(document.querySelectorAll('[onerror]').length).toBe(0)
  expect(window.__xss).toBeUndefined()
}

describe('XSS', () => {
  it('renders a hostile reason, names and events as text on the details page', async () => {
    signIn({ user: 'alice' })
    const s = session(
      { name: 'ds-abcdefghij' },
      {
        message: XSS,
        approval: { required: true, approvedBy: XSS, approvedAt: null, reason: XSS },
        participants: [{ user: XSS, displayName: XSS, role: 'participant', joinedAt: null, leftAt: null }],
      },
    )
    s.spec.reason = XSS
    s.spec.agent = XSS
    s.spec.requestedByDisplayName = XSS
    s.spec.invitedParticipants = [XSS]
    stubApi({
      'GET /api/v1/debug-sessions/ds-abcdefghij': () => s,
      'GET /api/v1/debug-sessions/ds-abcdefghij/events': () => ({ events: [{ at: s.createdAt, actor: XSS, type: XSS, data: { reason: XSS } }] }),
      'GET /api/v1/debug-session-templates/ci-debug': () => ciDebug,
    })
    const { wrapper } = await mountView(SessionView, '/debug-sessions/:name', '/debug-sessions/ds-abcdefghij')
    noInjectedElements()
    expect(wrapper.find('[data-testid=reason]').text()).toBe(XSS)
    expect(wrapper.html()).toContain('&lt;img src=x onerror=')
    wrapper.unmount()
  })

  it('renders hostile values as text in the sessions list', async () => {
    signIn()
    const s = session({ name: 'ds-abcdefghij' }, { message: XSS })
    s.spec.template = XSS
    s.spec.requestedByDisplayName = XSS
    stubApi({ 'GET /api/v1/debug-sessions': () => ({ sessions: [s], total: 1, nextCursor: null }) })
    const { wrapper } = await mountView(SessionsView, '/debug-sessions', '/debug-sessions')
    expect(wrapper.text()).toContain(XSS)
    noInjectedElements()
    wrapper.unmount()
  })

  it('renders hostile agent labels as text', async () => {
    signIn()
    stubApi({
      'GET /api/v1/agents': () => ({ agents: [{ name: XSS, labels: { [XSS]: XSS }, online: true, version: XSS, sessions: [] }] }),
      'GET /api/v1/debug-session-templates': () => ({ templates: [ciDebug], total: 1 }),
    })
    const { wrapper } = await mountView(AgentsView, '/agents', '/agents')
    expect(wrapper.find('.label-chip').text()).toBe(`${XSS}=${XSS}`)
    noInjectedElements()
    wrapper.unmount()
  })

  it('no component uses v-html', async () => {
    const files = import.meta.glob('../src/**/*.vue', { query: '?raw', import: 'default', eager: true }) as Record<string, string>
    expect(Object.keys(files).length).toBeGreaterThan(5)
    for (const [f, src] of Object.entries(files)) expect(src, f).not.toMatch(/v-html|innerHTML/)
  })
})
