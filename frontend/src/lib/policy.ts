// Client-side previews of server policy (DESIGN.md section 5). The server decides; these only
// tell a person beforehand what will happen, and which choices make sense.
import type { DebugSession, Me, Participant, Template } from '../api/types'
import { anyGlob } from './glob'
import { formatDuration, parseDuration } from './duration'
import { parseTime } from './time'

export function sameIdentity(a: string | null | undefined, me: Me | null): boolean {
  if (!a || !me) return false
  const x = a.toLowerCase()
  return x === me.user.toLowerCase() || (!!me.email && x === me.email.toLowerCase())
}

export function isRequester(s: DebugSession, me: Me | null): boolean {
  return sameIdentity(s.spec.requestedBy, me) || sameIdentity(s.spec.requestedByEmail, me)
}

/** My active (not left) participation in a session, if any. */
export function myParticipation(s: DebugSession, me: Me | null): Participant | null {
  return (
    (s.status.participants ?? []).find(
      (p) => !p.leftAt && (sameIdentity(p.user, me) || sameIdentity(p.email, me)),
    ) ?? null
  )
}

export function canLeave(s: DebugSession, me: Me | null): boolean {
  if (typeof s.canLeave === 'boolean') return s.canLeave
  return s.status.state === 'Active' && !!myParticipation(s, me) && !isRequester(s, me)
}

export function agentAllowed(t: Template, agent: string): boolean {
  const pats = t.allowed?.agents
  return !pats || pats.length === 0 || anyGlob(pats, agent)
}

export interface ApprovalPreview {
  required: boolean
  groups: string[]
  users: string[]
  why: string
}

export function approvalPreview(t: Template, me: Me | null, agent: string | null): ApprovalPreview {
  const a = t.approvers
  const groups = a?.groups ?? []
  const users = a?.users ?? []
  if (!a || (groups.length === 0 && users.length === 0))
    return { required: false, groups, users, why: 'This template has no approvers: the request is approved automatically.' }
  const auto = a.autoApproveFor
  if (agent && anyGlob(auto?.agents, agent))
    return { required: false, groups, users, why: `Approved automatically for agent ${agent}.` }
  if (t.approvalRequired === false)
    return { required: false, groups, users, why: 'Approved automatically for you under this template.' }
  const myGroup = (me?.groups ?? []).find((g) => anyGlob(auto?.groups, g, true))
  if (myGroup)
    return { required: false, groups, users, why: `Approved automatically because you are in group ${myGroup}.` }
  if ((auto?.users ?? []).some((u) => sameIdentity(u, me)))
    return { required: false, groups, users, why: 'Approved automatically for you under this template.' }
  const who: string[] = []
  if (groups.length) who.push(`${groups.length > 1 ? 'groups' : 'group'} ${groups.join(', ')}`)
  if (users.length) who.push(`${users.length > 1 ? 'users' : 'user'} ${users.join(', ')}`)
  return {
    required: true,
    groups,
    users,
    why: `Needs approval by a member of ${who.join(' or ')}. You cannot approve your own request.`,
  }
}

const STANDARD = ['15m', '30m', '1h', '2h', '4h', '8h', '12h', '1d', '2d', '7d']

/** Durations a new session may ask for under the template's constraints, in seconds, ascending. */
export function durationChoices(t: Template): number[] {
  const max = parseDuration(t.constraints?.maxDuration) ?? Infinity
  const min = parseDuration(t.constraints?.minDuration) ?? 0
  const set = new Set<number>()
  for (const d of STANDARD) {
    const s = parseDuration(d)!
    if (s <= max && s >= min) set.add(s)
  }
  const def = parseDuration(t.constraints?.defaultDuration)
  if (def && def <= max && def >= min) set.add(def)
  if (Number.isFinite(max) && max >= min) set.add(max)
  return [...set].sort((x, y) => x - y)
}

export function defaultDuration(t: Template): number | null {
  return parseDuration(t.constraints?.defaultDuration)
}

const RENEW = ['15m', '30m', '1h', '2h', '4h']

/**
 * The `extendBy` choices to offer for a renewal, as duration strings. Without the template
 * (a caller who may not read it) the standard choices are offered and the server decides.
 */
export function renewChoices(s: DebugSession, t: Template | null): string[] {
  if (s.status.state !== 'Active') return []
  const c = t?.constraints
  if (c && c.allowRenewal === false) return []
  const max = s.status.maxRenewals ?? c?.maxRenewals ?? 3
  if ((s.status.renewalCount ?? 0) >= max) return []
  const maxDur = parseDuration(c?.maxDuration)
  const start = parseTime(s.status.startsAt)
  const exp = parseTime(s.status.expiresAt)
  if (!maxDur || start === null || exp === null) return RENEW.slice(0, 4)
  const budget = Math.floor((start + maxDur * 1000 - exp) / 60000) * 60 // whole minutes
  if (budget <= 0) return []
  const out = RENEW.filter((d) => parseDuration(d)! <= budget)
  const b = formatDuration(budget)
  if (!out.includes(b) && budget < parseDuration(RENEW[RENEW.length - 1])!) out.push(b)
  return out.sort((x, y) => parseDuration(x)! - parseDuration(y)!)
}

export function renewalsLeft(s: DebugSession): number | null {
  const max = s.status.maxRenewals
  if (typeof max !== 'number') return null
  return Math.max(0, max - (s.status.renewalCount ?? 0))
}
