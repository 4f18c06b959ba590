import type { SessionEvent } from '../api/types'
import { durationLabel, parseDuration } from './duration'

/**
 * An audit event in plain words: who did what, never raw `key: value` data. Unknown types (from
 * a newer server) read as their name in words. `actor` is who did it; "airlock" is the server
 * itself (timers, rules), shown as such.
 */
export interface EventWords {
  who: string
  what: string
}

const str = (d: Record<string, unknown>, k: string): string | null => (typeof d[k] === 'string' && d[k] ? String(d[k]) : null)
const num = (d: Record<string, unknown>, k: string): number | null => (typeof d[k] === 'number' ? Number(d[k]) : null)
const dur = (text: string | null): string | null => {
  const s = parseDuration(text)
  return s === null ? text : durationLabel(s)
}
const secs = (n: number | null): string | null => (n === null ? null : durationLabel(Math.max(0, Math.round(n))))
const asA = (role: string | null) => (role ? ` as ${role === 'owner' ? 'the owner' : `a ${role}`}` : '')

const REASONS: Record<string, string> = {
  duration: 'its time ran out',
  claim_deadline: 'nobody connected in time',
  idle: 'nobody typed for too long',
  agent_gone: 'the agent went away and did not come back',
  wait_timeout: 'nobody connected before `airlock wait --timeout`',
}

type Wording = (d: Record<string, unknown>, e: SessionEvent) => string

const WORDS: Record<string, Wording> = {
  created: (d) => `requested the session${str(d, 'template') ? ` (template ${str(d, 'template')})` : ''}`,
  submitted: () => 'submitted the request',
  approval_required: () => 'asked for approval',
  approved: (d) => `approved the session${str(d, 'reason') ? `: “${str(d, 'reason')}”` : ''}`,
  rejected: (d) => `rejected the session${str(d, 'reason') ? `: “${str(d, 'reason')}”` : ''}`,
  activated: () => 'started the session',
  invited: (d) => `invited ${str(d, 'user') ?? 'someone'}${asA(str(d, 'role'))}`,
  ticket_issued: (d) => `asked to join${asA(str(d, 'role'))} (a ticket, not connected yet)`,
  joined: (d) => `asked to join${asA(str(d, 'role'))}`,
  connected: (d) => `connected${asA(str(d, 'role'))}`,
  disconnected: (d) => `disconnected${secs(num(d, 'seconds')) ? ` after ${secs(num(d, 'seconds'))}` : ''}`,
  left: () => 'left the session',
  removed: (d) => `removed ${str(d, 'user') ?? 'someone'} from the session`,
  role_changed: (d) => `made ${str(d, 'user') ?? 'someone'} ${str(d, 'to') === 'viewer' ? 'a viewer' : `a ${str(d, 'to') ?? '?'}`}${str(d, 'from') ? ` (was ${str(d, 'from')})` : ''}`,
  renewed: (d) => {
    const by = dur(str(d, 'extendBy'))
    const auto = d.auto === true ? ' automatically, as someone was typing' : ''
    const n = num(d, 'renewalCount')
    return `extended the session${by ? ` by ${by}` : ''}${auto}${n !== null && d.auto !== true ? ` (renewal ${n})` : ''}`
  },
  expiring: (d) => `warned that the session ends soon${secs(num(d, 'timeLeft')) ? ` (${secs(num(d, 'timeLeft'))} left)` : ''}`,
  expired: (d) => `ended the session: ${REASONS[str(d, 'reason') ?? 'duration'] ?? str(d, 'reason')}`,
  terminated: (d) => {
    const r = str(d, 'reason')
    return `ended the session${r ? `: ${REASONS[r] ?? `“${r}”`}` : ''}`
  },
  failed: (d) => `marked the session failed: ${REASONS[str(d, 'reason') ?? ''] ?? str(d, 'reason') ?? 'unknown reason'}`,
  resumed: () => 'resumed the CI job (ended the session)',
  agent_online: () => 'saw the agent come online',
  agent_offline: () => 'saw the agent go offline',
  recording_started: () => 'started recording the shared terminal',
  recording_finished: (d) => `finished the recording${num(d, 'bytes') !== null ? ` (${num(d, 'bytes')} bytes, SHA-256 ${String(str(d, 'sha256') ?? '').slice(0, 12)}…)` : ''}`,
  recording_stopped: (d) => `stopped the recording${str(d, 'reason') ? `: ${str(d, 'reason')}` : ''}`,
  recording_failed: (d) => `could not record${str(d, 'reason') ? `: ${str(d, 'reason')}` : ''}`,
  recording_rejected: (d) => `refused a recording chunk${str(d, 'reason') ? `: ${str(d, 'reason')}` : ''}`,
}

export function eventWords(e: SessionEvent): EventWords {
  const d = e.data && typeof e.data === 'object' ? (e.data as Record<string, unknown>) : {}
  const who = !e.actor || e.actor === 'system' || e.actor === 'airlock' ? 'airlock' : e.actor
  const f = WORDS[e.type]
  return { who, what: f ? f(d, e) : e.type.replace(/_/g, ' ') }
}
