import type { DebugSession, Template } from '../src/api/types'

export const XSS = '<img src=x onerror="window.__xss=1">'

export const ciDebug: Template = {
  name: 'ci-debug',
  displayName: 'CI job debug',
  description: 'Shell into a failed CI job',
  allowed: { groups: ['developers'], users: [], agents: ['demo', 'gh/acme/*'] },
  approvers: { groups: ['sre-leads'], users: [], autoApproveFor: { groups: ['sre-leads'], agents: [] } },
  constraints: { maxDuration: '4h', defaultDuration: '1h', allowRenewal: true, maxRenewals: 3 },
  requestReason: { mandatory: true, minLength: 10, maxLength: 1000 },
  approvalReason: { mandatoryForRejection: true },
}

export function session(over: Partial<DebugSession> = {}, status: Partial<DebugSession['status']> = {}): DebugSession {
  const now = Date.now()
  return {
    name: 'ds-abcdefghij',
    createdAt: new Date(now - 600_000).toISOString(),
    spec: {
      template: 'ci-debug',
      agent: 'demo',
      requestedBy: 'bob',
      requestedByEmail: 'bob@example.com',
      requestedByDisplayName: 'Bob',
      requestedDuration: '1h',
      reason: 'The build hangs in step 3',
      invitedParticipants: [],
    },
    status: {
      state: 'Active',
      message: null,
      startsAt: new Date(now - 300_000).toISOString(),
      expiresAt: new Date(now + 3300_000).toISOString(),
      renewalCount: 1,
      maxRenewals: 3,
      approval: { required: true, approvedBy: 'carol', approvedAt: new Date(now - 300_000).toISOString(), rejectedBy: null, rejectedAt: null, reason: null },
      participants: [{ user: 'bob', role: 'owner', joinedAt: new Date(now - 200_000).toISOString(), leftAt: null }],
      terminalSharing: { enabled: true, provider: 'tmux', maxParticipants: 5 },
      allowedOperations: { shell: true, exec: true, sftp: true, portForward: false },
      agent: { online: true, hostKeyFingerprints: ['SHA256:abc'] },
      ...status,
    },
    canApprove: false,
    canReject: false,
    canJoin: false,
    canRenew: false,
    canTerminate: false,
    ...over,
  }
}
