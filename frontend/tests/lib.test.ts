import { describe, expect, it } from 'vitest'
import { formatDuration, formatRemaining, parseDuration } from '../src/lib/duration'
import { globMatch } from '../src/lib/glob'
import { agentAllowed, approvalPreview, durationChoices, renewChoices, sameIdentity } from '../src/lib/policy'
import type { DebugSession, Me, Template } from '../src/api/types'

describe('durations', () => {
  it.each([
    ['90s', 90],
    ['30m', 1800],
    ['1h30m', 5400],
    ['2d', 172800],
    ['1d12h', 129600],
  ])('parses %s', (t, s) => expect(parseDuration(t)).toBe(s))
  it.each(['', '0s', '1x', 'h', '30m1h', '1h1h', '-1h', '366d', '1.5h'])('refuses %j', (t) => expect(parseDuration(t)).toBeNull())
  it('formats', () => {
    expect(formatDuration(5400)).toBe('1h30m')
    expect(formatDuration(86400 + 60)).toBe('1d1m')
    expect(formatRemaining(3725)).toBe('1h 02m')
    expect(formatRemaining(125)).toBe('2m 05s')
    expect(formatRemaining(-3)).toBe('0s')
  })
})

describe('globs', () => {
  it('* crosses /', () => expect(globMatch('gh/acme/*', 'gh/acme/web/42-1')).toBe(true))
  it('is anchored and case-sensitive by default', () => {
    expect(globMatch('gh/acme/*', 'xgh/acme/a')).toBe(false)
    expect(globMatch('demo', 'Demo')).toBe(false)
    expect(globMatch('sre-*', 'SRE-leads', true)).toBe(true)
  })
  it('? and classes', () => {
    expect(globMatch('host-?', 'host-1')).toBe(true)
    expect(globMatch('host-[0-9]', 'host-a')).toBe(false)
    expect(globMatch('a.b', 'axb')).toBe(false)
  })
})

const me: Me = { user: 'alice', email: 'alice@example.com', displayName: 'Alice', groups: ['developers'], admin: false }
const ci: Template = {
  name: 'ci-debug',
  allowed: { groups: ['developers'], agents: ['gh/acme/*', 'demo'] },
  approvers: { groups: ['sre-leads'], users: [], autoApproveFor: { groups: ['sre-leads'], agents: ['gh/acme/sandbox/*'] } },
  constraints: { maxDuration: '4h', defaultDuration: '1h', allowRenewal: true, maxRenewals: 3 },
}

describe('policy previews', () => {
  it('identity matches user or email, case-insensitively', () => {
    expect(sameIdentity('ALICE', me)).toBe(true)
    expect(sameIdentity('Alice@Example.com', me)).toBe(true)
    expect(sameIdentity('bob', me)).toBe(false)
  })
  it('agents allowed by template globs', () => {
    expect(agentAllowed(ci, 'demo')).toBe(true)
    expect(agentAllowed(ci, 'gh/acme/web/1-1')).toBe(true)
    expect(agentAllowed(ci, 'prod-db')).toBe(false)
    expect(agentAllowed({ name: 'x' }, 'anything')).toBe(true)
  })
  it('approval needed and by whom', () => {
    const p = approvalPreview(ci, me, 'demo')
    expect(p.required).toBe(true)
    expect(p.why).toContain('sre-leads')
    expect(approvalPreview(ci, { ...me, groups: ['SRE-Leads'] }, 'demo').required).toBe(false)
    expect(approvalPreview(ci, me, 'gh/acme/sandbox/9-1').required).toBe(false)
    expect(approvalPreview({ name: 's', approvers: { groups: [], users: [] } }, me, 'demo').required).toBe(false)
  })
  it('duration choices stay within max', () => {
    const c = durationChoices(ci)
    expect(Math.max(...c)).toBe(4 * 3600)
    expect(c).toContain(3600)
    expect(c.every((x) => x <= 4 * 3600)).toBe(true)
  })
  it('renew choices stay within startsAt + maxDuration', () => {
    const start = Date.parse('2026-01-01T10:00:00Z')
    const s = {
      name: 'ds-x',
      createdAt: '2026-01-01T10:00:00Z',
      spec: { template: 'ci-debug', agent: 'demo', requestedBy: 'alice' },
      status: { state: 'Active', startsAt: new Date(start).toISOString(), expiresAt: new Date(start + 3.5 * 3600e3).toISOString(), renewalCount: 0, maxRenewals: 3 },
    } as DebugSession
    expect(renewChoices(s, ci)).toEqual(['15m', '30m'])
    s.status.expiresAt = new Date(start + 3 * 3600e3 + 20 * 60e3).toISOString()
    expect(renewChoices(s, ci)).toEqual(['15m', '30m', '40m'])
    s.status.renewalCount = 3
    expect(renewChoices(s, ci)).toEqual([])
    s.status.renewalCount = 0
    expect(renewChoices(s, { ...ci, constraints: { ...ci.constraints, allowRenewal: false } })).toEqual([])
    expect(renewChoices(s, null).length).toBeGreaterThan(0) // template unreadable: the server decides
    s.status.state = 'Pending'
    expect(renewChoices(s, ci)).toEqual([])
  })
})
