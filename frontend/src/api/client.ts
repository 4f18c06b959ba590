// Typed client for the airlock REST API. Every call goes through ENDPOINTS, so a test can check
// each method + path against openapi/openapi.yaml.
import type {
  AgentList,
  Agent,
  CreateSessionRequest,
  DebugSession,
  DevTokenRequest,
  DevTokenResponse,
  ErrorEnvelope,
  JoinRequest,
  JoinResponse,
  Me,
  RecordingCheck,
  RegisterAgentRequest,
  RegisterAgentResponse,
  ServerConfig,
  SessionEvent,
  SessionList,
  SessionQuery,
  Snippet,
  Template,
  TemplateList,
  TerminalTicket,
} from './types'

type Method = 'GET' | 'POST' | 'DELETE'
interface Endpoint {
  method: Method
  path: string
  auth: boolean
}

export const ENDPOINTS = {
  config: { method: 'GET', path: '/api/v1/config', auth: false },
  devToken: { method: 'POST', path: '/api/v1/dev/token', auth: false },
  me: { method: 'GET', path: '/api/v1/me', auth: true },
  listSessions: { method: 'GET', path: '/api/v1/debug-sessions', auth: true },
  createSession: { method: 'POST', path: '/api/v1/debug-sessions', auth: true },
  getSession: { method: 'GET', path: '/api/v1/debug-sessions/{name}', auth: true },
  approve: { method: 'POST', path: '/api/v1/debug-sessions/{name}/approve', auth: true },
  reject: { method: 'POST', path: '/api/v1/debug-sessions/{name}/reject', auth: true },
  join: { method: 'POST', path: '/api/v1/debug-sessions/{name}/join', auth: true },
  leave: { method: 'POST', path: '/api/v1/debug-sessions/{name}/leave', auth: true },
  renew: { method: 'POST', path: '/api/v1/debug-sessions/{name}/renew', auth: true },
  terminate: { method: 'POST', path: '/api/v1/debug-sessions/{name}/terminate', auth: true },
  invite: { method: 'POST', path: '/api/v1/debug-sessions/{name}/invite', auth: true },
  setRole: { method: 'POST', path: '/api/v1/debug-sessions/{name}/participants/{user}', auth: true },
  removeParticipant: { method: 'DELETE', path: '/api/v1/debug-sessions/{name}/participants/{user}', auth: true },
  events: { method: 'GET', path: '/api/v1/debug-sessions/{name}/events', auth: true },
  terminalTicket: { method: 'POST', path: '/api/v1/debug-sessions/{name}/terminal-ticket', auth: true },
  listTemplates: { method: 'GET', path: '/api/v1/debug-session-templates', auth: true },
  getTemplate: { method: 'GET', path: '/api/v1/debug-session-templates/{name}', auth: true },
  listAgents: { method: 'GET', path: '/api/v1/agents', auth: true },
  registerAgent: { method: 'POST', path: '/api/v1/agents', auth: true },
  getAgent: { method: 'GET', path: '/api/v1/agents/{name}', auth: true },
  getSnippet: { method: 'GET', path: '/api/v1/snippets/{ci}', auth: true },
  recording: { method: 'GET', path: '/api/v1/debug-sessions/{name}/recording', auth: true },
  verifyRecording: { method: 'GET', path: '/api/v1/debug-sessions/{name}/recording/verify', auth: true },
} as const satisfies Record<string, Endpoint>

export type EndpointName = keyof typeof ENDPOINTS

/** An API failure, with the server's own words in `message` (the envelope's `error`). */
export class ApiError extends Error {
  readonly status: number
  readonly code: string
  readonly details: unknown
  constructor(status: number, code: string, message: string, details?: unknown) {
    super(message)
    this.name = 'ApiError'
    this.status = status
    this.code = code
    this.details = details
  }
}

const STATUS_WORDS: Record<number, string> = {
  400: 'The request was not accepted.',
  401: 'You are not signed in, or your sign-in has expired.',
  403: 'You are not allowed to do that.',
  404: 'Not found.',
  409: 'That is not possible in the current state.',
  413: 'The request is too large.',
  429: 'Too many requests; try again in a moment.',
  500: 'The server failed to handle the request.',
  502: 'The server is unreachable (bad gateway).',
  503: 'The server is not ready yet.',
  504: 'The server took too long to answer.',
}

/** Plain words for any thrown value, for showing to a person. */
export function errorMessage(e: unknown): string {
  if (e instanceof ApiError) return e.message
  if (e instanceof Error && e.message) return e.message
  return 'Something went wrong.'
}

/** Fill `{param}` placeholders; each value is percent-encoded as one segment (agent names hold `/`). */
export function fillPath(path: string, params: Record<string, string> = {}): string {
  return path.replace(/\{(\w+)\}/g, (_, k: string) => {
    const v = params[k]
    if (v === undefined || v === '') throw new Error(`missing path parameter ${k}`)
    return encodeURIComponent(v)
  })
}

export function sessionQueryString(q: SessionQuery = {}): string {
  const parts: string[] = []
  if (q.state && q.state.length) parts.push('state=' + q.state.map(encodeURIComponent).join(','))
  if (q.agent) parts.push('agent=' + encodeURIComponent(q.agent))
  if (q.user) parts.push('user=' + encodeURIComponent(q.user))
  if (q.mine) parts.push('mine=true')
  if (q.limit) parts.push('limit=' + q.limit)
  if (q.cursor) parts.push('cursor=' + encodeURIComponent(q.cursor))
  return parts.length ? '?' + parts.join('&') : ''
}

export interface ClientOptions {
  baseUrl?: string
  /** Current bearer token (may renew first); null when signed out. */
  getToken?: () => string | null | Promise<string | null>
  /** Called on a 401 from an authenticated endpoint. */
  onUnauthorized?: (err: ApiError) => void
  fetch?: typeof fetch
}

export function createClient(opts: ClientOptions = {}) {
  const base = (opts.baseUrl ?? '').replace(/\/$/, '')
  const doFetch: typeof fetch = opts.fetch ?? ((...a) => fetch(...a))

  async function call<T>(
    ep: EndpointName,
    params?: Record<string, string>,
    body?: unknown,
    query = '',
    accept = 'application/json',
  ): Promise<T> {
    const e: Endpoint = ENDPOINTS[ep]
    const headers: Record<string, string> = { Accept: accept }
    if (e.auth && opts.getToken) {
      const t = await opts.getToken()
      if (t) headers.Authorization = `Bearer ${t}`
    }
    let payload: string | undefined
    if (e.method === 'POST') {
      headers['Content-Type'] = 'application/json'
      payload = JSON.stringify(body ?? {})
    }
    let res: Response
    try {
      res = await doFetch(base + fillPath(e.path, params) + query, {
        method: e.method,
        headers,
        body: payload,
        credentials: 'same-origin',
      })
    } catch {
      throw new ApiError(0, 'NETWORK', 'Cannot reach the airlock server. Check your connection and try again.')
    }
    const text = await res.text()
    let json: unknown = undefined
    if (text) {
      try {
        json = JSON.parse(text)
      } catch {
        json = undefined
      }
    }
    if (!res.ok) {
      const env = json as Partial<ErrorEnvelope> | undefined
      const msg =
        env && typeof env.error === 'string' && env.error
          ? env.error
          : STATUS_WORDS[res.status] ?? `The server answered with HTTP ${res.status}.`
      const err = new ApiError(res.status, (env && typeof env.code === 'string' && env.code) || `HTTP_${res.status}`, msg, env?.details)
      if (res.status === 401 && e.auth) opts.onUnauthorized?.(err)
      throw err
    }
    if (accept !== 'application/json') return text as T
    if (json === undefined) {
      if (!text && res.status === 204) return undefined as T
      throw new ApiError(res.status, 'BAD_RESPONSE', `The server sent an unexpected answer (HTTP ${res.status}, not JSON).`)
    }
    return json as T
  }

  const n = (name: string) => ({ name })
  return {
    config: () => call<ServerConfig>('config'),
    devToken: (b: DevTokenRequest) => call<DevTokenResponse>('devToken', undefined, b),
    me: () => call<Me>('me'),
    listSessions: (q?: SessionQuery) => call<SessionList>('listSessions', undefined, undefined, sessionQueryString(q)),
    createSession: (b: CreateSessionRequest) => call<DebugSession>('createSession', undefined, b),
    getSession: (name: string) => call<DebugSession>('getSession', n(name)),
    approve: (name: string, reason?: string) => call<DebugSession>('approve', n(name), reason ? { reason } : {}),
    reject: (name: string, reason?: string) => call<DebugSession>('reject', n(name), reason ? { reason } : {}),
    join: (name: string, b: JoinRequest) => call<JoinResponse>('join', n(name), b),
    leave: (name: string) => call<DebugSession>('leave', n(name), {}),
    renew: (name: string, extendBy: string) => call<DebugSession>('renew', n(name), { extendBy }),
    terminate: (name: string, reason?: string) => call<DebugSession>('terminate', n(name), reason ? { reason } : {}),
    invite: (name: string, users: string[], role: 'participant' | 'viewer' = 'participant') =>
      call<DebugSession>('invite', n(name), { users, role }),
    setRole: (name: string, user: string, role: 'participant' | 'viewer') =>
      call<DebugSession>('setRole', { name, user }, { role }),
    removeParticipant: (name: string, user: string) => call<DebugSession>('removeParticipant', { name, user }),
    events: (name: string) => call<{ events: SessionEvent[] }>('events', n(name)),
    terminalTicket: (name: string, mode?: 'ro' | 'rw') => call<TerminalTicket>('terminalTicket', n(name), mode ? { mode } : {}),
    listTemplates: () => call<TemplateList>('listTemplates'),
    getTemplate: (name: string) => call<Template>('getTemplate', n(name)),
    listAgents: () => call<AgentList>('listAgents'),
    getAgent: (name: string) => call<Agent>('getAgent', n(name)),
    registerAgent: (b: RegisterAgentRequest) => call<RegisterAgentResponse>('registerAgent', undefined, b),
    getSnippet: (ci: 'github' | 'gitlab' | 'host', template?: string) =>
      call<Snippet>('getSnippet', { ci }, undefined, template ? `?template=${encodeURIComponent(template)}` : undefined),
    /** The session's recording as asciicast v2 text (docs/recording.md). */
    recording: (name: string) => call<string>('recording', n(name), undefined, '', 'application/x-asciicast'),
    verifyRecording: (name: string) => call<RecordingCheck>('verifyRecording', n(name)),
  }
}

export type ApiClient = ReturnType<typeof createClient>
