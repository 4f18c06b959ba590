// JSON shapes of the airlock REST API (DESIGN.md section 6), written by hand.
// openapi/openapi.yaml is normative once it exists; tests/openapi.test.ts checks the paths.

export const SESSION_STATES = [
  'Pending',
  'PendingApproval',
  'Active',
  'Expired',
  'Terminated',
  'Failed',
] as const
export type SessionState = (typeof SESSION_STATES)[number]
export const ENDED_STATES: readonly SessionState[] = ['Expired', 'Terminated', 'Failed']

export type ErrorCode =
  | 'BAD_REQUEST'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'PAYLOAD_TOO_LARGE'
  | 'TOO_MANY_REQUESTS'
  | 'URI_TOO_LONG'
  | 'HEADERS_TOO_LARGE'
  | 'UNAVAILABLE'
  | 'INTERNAL_ERROR'

export interface ErrorEnvelope {
  error: string
  code: ErrorCode | string
  details?: unknown
}

export interface ServerConfig {
  version: string
  dev: boolean
  publicUrl: string
  oidc: {
    issuer: string | null
    clientId: string | null
    /** Scopes to ask the provider for (the issuer's uiScopes); older servers leave it out. */
    scopes?: string[]
  } | null
}

export interface Me {
  user: string
  email: string | null
  displayName: string | null
  groups: string[]
  admin: boolean
}

export interface DevTokenRequest {
  user: string
  email?: string
  groups: string[]
}
export interface DevTokenResponse {
  token: string
  expiresAt: string
}

export type Role = 'owner' | 'participant' | 'viewer'

export interface SessionSpec {
  template: string
  agent: string
  requestedBy: string
  requestedByEmail?: string | null
  requestedByDisplayName?: string | null
  requestedDuration?: string | null
  reason?: string | null
  invitedParticipants?: string[]
}

export interface Approval {
  required: boolean
  approvedBy?: string | null
  approvedAt?: string | null
  rejectedBy?: string | null
  rejectedAt?: string | null
  reason?: string | null
}

export interface Participant {
  user: string
  email?: string | null
  displayName?: string | null
  role: Role
  joinedAt?: string | null
  leftAt?: string | null
  /** Presence (issue 12; absent from servers before it): live SSH connections now. */
  connections?: number
  /** Start of the oldest live connection. */
  connectedSince?: string | null
  lastInputAt?: string | null
  /** null: only fetched a ticket, never connected (not "joined"). */
  firstConnectedAt?: string | null
}

export interface TerminalSharing {
  enabled: boolean
  provider?: string
  maxParticipants?: number
  readOnlyParticipants?: boolean
  /** terminalSharing.browser: false turns the browser terminal off. */
  browser?: boolean
}

/** POST …/terminal-ticket: a single-use ticket (30 s) for the …/terminal WebSocket. */
export interface TerminalTicket {
  ticket: string
  expiresAt: string
  mode: 'ro' | 'rw'
  url: string
}

export interface AllowedOperations {
  shell?: boolean
  exec?: boolean
  sftp?: boolean
  portForward?: boolean
}

export interface SessionStatus {
  state: SessionState
  message?: string | null
  startsAt?: string | null
  expiresAt?: string | null
  renewalCount?: number
  maxRenewals?: number
  approval?: Approval | null
  participants?: Participant[]
  terminalSharing?: TerminalSharing | null
  allowedOperations?: AllowedOperations | null
  agent?: { online: boolean; hostKeyFingerprints?: string[]; offlineSince?: string | null; failsAt?: string | null } | null
  /** expiresAt − startsAt after renewals, canonical ("1h30m"); absent from older servers. */
  effectiveDuration?: string | null
  idleEndsAt?: string | null
  recording?: RecordingStatus | null
}

/** status.recording: present when the session's template records (docs/recording.md). */
export interface RecordingStatus {
  enabled: boolean
  required: boolean
  state: 'pending' | 'recording' | 'finished' | 'stopped' | 'failed'
  bytes: number
  chunks: number
  sha256: string | null
  integrity: 'intact' | 'altered' | 'missing' | 'unreadable'
  reason?: string | null
}

export interface RecordingCheck {
  session: string
  integrity: RecordingStatus['integrity']
  state: string
  bytes: number
  chunks: number
  sha256: string | null
  firstBadChunk: number | null
}

export interface DebugSession {
  name: string
  createdAt: string
  spec: SessionSpec
  status: SessionStatus
  canApprove?: boolean
  canReject?: boolean
  canJoin?: boolean
  canRenew?: boolean
  canTerminate?: boolean
  /** Not in DESIGN.md; honoured when a server sends it, otherwise derived from participants. */
  canLeave?: boolean
}

export interface SessionList {
  sessions: DebugSession[]
  total: number
  nextCursor?: string | null
}

export interface SessionQuery {
  state?: SessionState[]
  agent?: string
  user?: string
  mine?: boolean
  limit?: number
  cursor?: string
}

export interface CreateSessionRequest {
  template: string
  agent: string
  requestedDuration?: string
  reason?: string
  invitedParticipants?: string[]
}

export interface JoinRequest {
  sshPublicKey: string
  role?: 'participant' | 'viewer'
}

export interface Attach {
  command: string
  knownHostsLine: string
  hostKeyFingerprints: string[]
  connectUrl: string
  ticket: string
  ticketExpiresAt: string
}

export interface JoinResponse {
  session: DebugSession
  role: Role
  attach: Attach
}

export interface SessionEvent {
  at: string
  actor: string | null
  type: string
  data?: Record<string, unknown> | null
}

export interface Selector {
  groups?: string[]
  users?: string[]
  agents?: string[]
}

export interface Template {
  name: string
  displayName?: string | null
  description?: string | null
  allowed?: Selector | null
  approvers?: (Selector & { autoApproveFor?: Selector | null }) | null
  constraints?: {
    maxDuration?: string | null
    defaultDuration?: string | null
    minDuration?: string | null
    allowRenewal?: boolean
    maxRenewals?: number | null
  } | null
  terminalSharing?: TerminalSharing | null
  allowedOperations?: AllowedOperations | null
  requestReason?: { mandatory?: boolean; minLength?: number; maxLength?: number } | null
  approvalReason?: { mandatoryForRejection?: boolean } | null
  /** Whether a session the caller requests from this template needs an approval (server's answer). */
  approvalRequired?: boolean
}

export interface TemplateList {
  templates: Template[]
  total: number
}

export type AgentSessionRef = string | { name: string; state?: SessionState }

export interface Agent {
  name: string
  labels: Record<string, string>
  online: boolean
  version?: string | null
  hostKeys?: string[]
  hostKeyFingerprints?: string[]
  registeredBy?: string | null
  registeredAt?: string | null
  lastSeenAt?: string | null
  sessions?: AgentSessionRef[]
}

export interface AgentList {
  agents: Agent[]
}

/** GET /api/v1/snippets/{ci}: CI lines for this server, the same as `airlock snippet`. */
export interface Snippet {
  ci: 'github' | 'gitlab' | 'host'
  template: string | null
  text: string
}

export interface RegisterAgentRequest {
  name?: string
  labels?: Record<string, string>
  hostKeys: string[]
  version?: string
  session?: Omit<CreateSessionRequest, 'agent'>
}

export interface RegisterAgentResponse {
  agent: Agent
  credential: string
  controlUrl: string
  session: DebugSession | null
}
