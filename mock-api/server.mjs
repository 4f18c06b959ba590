#!/usr/bin/env node
// A stateful mock of the airlock REST API (DESIGN.md sections 5-6) for UI work without airlockd.
// Plain node:http, no dependencies. It accepts any bearer: a JWT-shaped token's payload names the
// caller (preferred_username/sub, email, groups), anything else is alice (developers). It also
// serves frontend/dist with history fallback, as airlockd does.
//
//   node mock-api/server.mjs [--port 8090] [--host 127.0.0.1] [--dist DIR] [--public-url URL]
//                            [--no-dev [--issuer URL]]   (an OIDC issuer for the UI's sign-in)
//
// Extra, mock only: POST /__mock/reset restores the fixtures; POST /__mock/agent {name, online}
// switches an agent on or off line.
import http from 'node:http'
import fs from 'node:fs'
import path from 'node:path'
import crypto from 'node:crypto'
import { fileURLToPath } from 'node:url'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const STATES = ['Pending', 'PendingApproval', 'Active', 'Expired', 'Terminated', 'Failed']
const ENDED = ['Expired', 'Terminated', 'Failed']
const BODY_LIMIT = 64 * 1024

// A fixed host key (the public half of a throwaway ed25519 key) for the fixtures' agents.
const HOST_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIECebnGQ+w9HghMPQST6UFqbAChAu1gPjg9V7iRVwt9Y mock-agent'

// ---- helpers ------------------------------------------------------------------------------

const iso = (ms) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z')

export function parseDuration(text) {
  if (typeof text !== 'string' || !/^(\d+[dhms])+$/.test(text)) return null
  const units = { d: 86400, h: 3600, m: 60, s: 1 }
  const order = 'dhms'
  let total = 0
  let last = -1
  for (const m of text.matchAll(/(\d+)([dhms])/g)) {
    const i = order.indexOf(m[2])
    if (i <= last) return null
    last = i
    total += Number(m[1]) * units[m[2]]
  }
  return total > 0 && total <= 365 * 86400 ? total : null
}

/** Canonical duration text of secs ("1h30m"), as airlockd writes it. */
export function formatDuration(secs) {
  const parts = [[86400, 'd'], [3600, 'h'], [60, 'm'], [1, 's']]
  let out = ''
  for (const [n, u] of parts) if (secs >= n) { out += `${Math.floor(secs / n)}${u}`; secs %= n }
  return out || '0s'
}

function globMatch(pattern, value, ci = false) {
  let re = '^'
  for (const c of pattern) re += c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')
  return new RegExp(re + '$', ci ? 'i' : '').test(value)
}
const anyGlob = (pats, v, ci) => (pats ?? []).some((p) => globMatch(p, v, ci))

function fingerprint(key) {
  const blob = Buffer.from(String(key).split(/\s+/)[1] ?? '', 'base64')
  return 'SHA256:' + crypto.createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')
}

function sessionName() {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567'
  let s = 'ds-'
  for (const b of crypto.randomBytes(10)) s += alphabet[b % 32]
  return s
}

class HttpError extends Error {
  constructor(status, code, message, details) {
    super(message)
    this.status = status
    this.code = code
    this.details = details
  }
}
const bad = (m, d) => new HttpError(400, 'BAD_REQUEST', m, d)
const forbidden = (m) => new HttpError(403, 'FORBIDDEN', m)
const notFound = (m) => new HttpError(404, 'NOT_FOUND', m)
const conflict = (m) => new HttpError(409, 'CONFLICT', m)

function checkBody(body, allowed, required = []) {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw bad('the body must be a JSON object')
  for (const k of Object.keys(body)) if (!allowed[k]) throw bad(`unknown field: ${k}`, { field: k })
  for (const k of required) if (body[k] === undefined) throw bad(`missing field: ${k}`, { field: k })
  for (const [k, t] of Object.entries(allowed)) {
    const v = body[k]
    if (v === undefined) continue
    const ok = t === 'string[]' ? Array.isArray(v) && v.every((x) => typeof x === 'string') : t === 'object' ? v && typeof v === 'object' && !Array.isArray(v) : typeof v === t
    if (!ok) throw bad(`field ${k} must be ${t === 'string[]' ? 'an array of strings' : 'a ' + t}`, { field: k })
  }
  return body
}

// ---- fixtures -----------------------------------------------------------------------------

export const TEMPLATES = [
  {
    name: 'sandbox',
    displayName: 'Sandbox',
    description: 'A throw-away box; approved automatically',
    allowed: { groups: ['developers', 'sre-leads', 'airlock-admins'], users: [], agents: ['*'] },
    approvers: { groups: [], users: [], autoApproveFor: { groups: [], users: [], agents: [] } },
    constraints: { maxDuration: '2h', defaultDuration: '30m', allowRenewal: true, maxRenewals: 3 },
    terminalSharing: { enabled: true, provider: 'tmux', maxParticipants: 5, readOnlyParticipants: false, browser: true },
    allowedOperations: { shell: true, exec: true, sftp: true, portForward: true },
    requestReason: { mandatory: false, minLength: 0, maxLength: 1000 },
    approvalReason: { mandatoryForRejection: false },
    recording: { enabled: false, required: false, maxMiB: 256 },
  },
  {
    name: 'ci-debug',
    displayName: 'CI job debug',
    description: 'Shell into a failed CI job',
    allowed: { groups: ['developers', 'sre-leads'], users: [], agents: ['demo', 'gh/acme/*'] },
    approvers: { groups: ['sre-leads'], users: [], autoApproveFor: { groups: ['sre-leads'], users: [], agents: ['gh/acme/sandbox/*'] } },
    constraints: { maxDuration: '4h', defaultDuration: '1h', allowRenewal: true, maxRenewals: 3 },
    terminalSharing: { enabled: true, provider: 'tmux', maxParticipants: 5, readOnlyParticipants: false, browser: true },
    allowedOperations: { shell: true, exec: true, sftp: true, portForward: false },
    requestReason: { mandatory: true, minLength: 10, maxLength: 1000 },
    approvalReason: { mandatoryForRejection: true },
    recording: { enabled: false, required: false, maxMiB: 256 },
  },
  {
    name: 'prod-readonly',
    displayName: 'Production (read-only)',
    description: 'Watch a production host; approved by an administrator',
    allowed: { groups: ['developers', 'sre-leads'], users: [], agents: ['prod-*'] },
    approvers: { groups: ['airlock-admins'], users: [], autoApproveFor: { groups: [], users: [], agents: [] } },
    constraints: { maxDuration: '1h', defaultDuration: '30m', allowRenewal: false, maxRenewals: 0 },
    terminalSharing: { enabled: true, provider: 'tmux', maxParticipants: 3, readOnlyParticipants: true, browser: true },
    allowedOperations: { shell: true, exec: false, sftp: false, portForward: false },
    requestReason: { mandatory: true, minLength: 20, maxLength: 1000 },
    approvalReason: { mandatoryForRejection: true },
    recording: { enabled: false, required: false, maxMiB: 256 },
  },
]

function fixtures(now) {
  const m = 60_000
  const agent = (name, labels, online, version, by, seenAgo = 0) => ({
    name,
    labels,
    online,
    version,
    hostKeys: [HOST_KEY],
    hostKeyFingerprints: [fingerprint(HOST_KEY)],
    registeredBy: by,
    registeredAt: iso(now - 3 * 24 * 60 * m),
    lastSeenAt: iso(now - seenAgo),
    credential: null,
  })
  const agents = [
    agent('demo', { env: 'dev' }, true, '0.1.0', 'ops-bot'),
    agent('gh/acme/web/4242-1', { repo: 'acme/web', workflow: 'ci' }, true, '0.1.0', 'github-actions'),
    agent('prod-db-1', { env: 'prod', role: 'postgres' }, true, '0.1.0', 'ops-bot'),
    agent('gh/acme/api/977-2', { repo: 'acme/api' }, false, '0.1.0', 'github-actions', 40 * m),
  ]
  const person = (user) => ({ user, email: `${user}@example.com`, displayName: user[0].toUpperCase() + user.slice(1) })
  const mk = (name, o) => {
    const t = TEMPLATES.find((x) => x.name === o.template)
    const req = person(o.by)
    return {
      name,
      createdAt: iso(o.created),
      spec: {
        template: o.template,
        agent: o.agent,
        requestedBy: req.user,
        requestedByEmail: req.email,
        requestedByDisplayName: req.displayName,
        requestedDuration: o.duration ?? t.constraints.defaultDuration,
        reason: o.reason ?? null,
        invitedParticipants: o.invited ?? [],
      },
      requesterGroups: o.groups ?? ['developers'],
      status: {
        state: o.state,
        message: o.message ?? null,
        startsAt: o.starts ? iso(o.starts) : null,
        expiresAt: o.expires ? iso(o.expires) : null,
        renewalCount: o.renewals ?? 0,
        maxRenewals: t.constraints.maxRenewals,
        approval: {
          required: !!o.approval,
          approvedBy: o.approval?.approvedBy ?? null,
          approvedAt: o.approval?.approvedBy ? iso(o.approval.at) : null,
          rejectedBy: o.approval?.rejectedBy ?? null,
          rejectedAt: o.approval?.rejectedBy ? iso(o.approval.at) : null,
          reason: o.approval?.reason ?? null,
        },
        participants: (o.participants ?? []).map((p) => ({
          ...person(p.user),
          role: p.role,
          joinedAt: iso(p.joined),
          leftAt: p.left ? iso(p.left) : null,
        })),
        terminalSharing: { enabled: t.terminalSharing.enabled, provider: 'tmux', maxParticipants: t.terminalSharing.maxParticipants, browser: t.terminalSharing.browser !== false },
        allowedOperations: { ...t.allowedOperations },
      },
      events: o.events.map(([at, actor, type, data]) => ({ at: iso(at), actor: actor ?? 'system', type, data: data ?? {} })),
    }
  }
  const sessions = [
    mk('ds-act1vea2b3', {
      template: 'ci-debug', agent: 'gh/acme/web/4242-1', by: 'alice', state: 'Active', invited: ['bob'],
      reason: 'Integration tests hang on the cache warm-up step', duration: '1h',
      created: now - 20 * m, starts: now - 15 * m, expires: now + 45 * m,
      approval: { approvedBy: 'carol', at: now - 15 * m },
      participants: [{ user: 'alice', role: 'owner', joined: now - 14 * m }, { user: 'bob', role: 'participant', joined: now - 10 * m }],
      events: [
        [now - 20 * m, 'alice', 'created'], [now - 20 * m, null, 'approval_required', { approvers: 'sre-leads' }],
        [now - 15 * m, 'carol', 'approved'], [now - 15 * m, null, 'activated'],
        [now - 14 * m, 'alice', 'joined', { role: 'owner' }], [now - 10 * m, 'bob', 'joined', { role: 'participant' }],
      ],
    }),
    mk('ds-pendapr4k7', {
      template: 'ci-debug', agent: 'demo', by: 'bob', state: 'PendingApproval',
      reason: 'Flaky e2e test on the demo runner, need to look at tmp files', duration: '2h',
      created: now - 4 * m, approval: {},
      events: [[now - 4 * m, 'bob', 'created'], [now - 4 * m, null, 'approval_required', { approvers: 'sre-leads' }]],
    }),
    mk('ds-pend1ngw2z', {
      template: 'sandbox', agent: 'gh/acme/api/977-2', by: 'alice', state: 'Pending', message: 'waiting for agent',
      created: now - 2 * m, events: [[now - 2 * m, 'alice', 'created'], [now - 2 * m, null, 'approved', { auto: true }]],
    }),
    mk('ds-exp1redq6m', {
      template: 'sandbox', agent: 'demo', by: 'alice', state: 'Expired', reason: 'Try the new build', duration: '30m',
      created: now - 3 * 60 * m, starts: now - 3 * 60 * m, expires: now - 150 * m,
      participants: [{ user: 'alice', role: 'owner', joined: now - 179 * m, left: now - 150 * m }],
      events: [[now - 180 * m, 'alice', 'created'], [now - 180 * m, null, 'activated'], [now - 150 * m, null, 'expired']],
    }),
    mk('ds-term1natd7', {
      template: 'ci-debug', agent: 'demo', by: 'bob', state: 'Terminated', reason: 'Look at the release job',
      created: now - 26 * 60 * m, approval: { rejectedBy: 'carol', at: now - 25 * 60 * m, reason: 'Use the sandbox for this' },
      events: [[now - 26 * 60 * m, 'bob', 'created'], [now - 25 * 60 * m, 'carol', 'rejected', { reason: 'Use the sandbox for this' }]],
    }),
    mk('ds-fa1ledv5k2', {
      template: 'ci-debug', agent: 'gh/acme/api/977-2', by: 'alice', state: 'Failed', message: 'approval timed out',
      reason: 'Nightly build broke in the packaging step', created: now - 50 * 60 * m, approval: {},
      events: [[now - 50 * 60 * m, 'alice', 'created'], [now - 26 * 60 * m, null, 'failed', { message: 'approval timed out' }]],
    }),
  ]
  return { agents, sessions }
}

// ---- the API ------------------------------------------------------------------------------

export function createMockServer(opts = {}) {
  const dev = opts.dev !== false
  const distDir = path.resolve(opts.distDir ?? path.join(HERE, '..', 'frontend', 'dist'))
  const clock = opts.now ?? (() => Date.now())
  let publicUrl = opts.publicUrl ?? ''
  let db

  function reset() {
    db = fixtures(clock())
  }
  reset()

  function identity(req) {
    const h = req.headers.authorization ?? ''
    const m = /^Bearer\s+(\S+)$/i.exec(h)
    if (!m) throw new HttpError(401, 'UNAUTHORIZED', 'missing bearer token')
    const parts = m[1].split('.')
    if (parts.length === 3) {
      try {
        const p = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'))
        const user = p.preferred_username ?? p.sub
        if (typeof user === 'string' && user) {
          const groups = Array.isArray(p.groups) ? p.groups.map(String) : []
          return { user, email: p.email ?? null, displayName: p.name ?? user, groups, admin: groups.some((g) => g.toLowerCase() === 'airlock-admins') }
        }
      } catch {
        /* not ours: fall back */
      }
    }
    return { user: 'alice', email: 'alice@example.com', displayName: 'Alice', groups: ['developers'], admin: false }
  }

  const same = (a, me) => !!a && (a.toLowerCase() === me.user.toLowerCase() || (!!me.email && a.toLowerCase() === me.email.toLowerCase()))
  const inGroups = (pats, me) => me.groups.some((g) => anyGlob(pats, g, true))
  const tpl = (name) => TEMPLATES.find((t) => t.name === name)
  const agentOf = (name) => db.agents.find((a) => a.name === name)
  const isRequester = (s, me) => same(s.spec.requestedBy, me) || same(s.spec.requestedByEmail, me)
  const isApprover = (s, me) => {
    const a = tpl(s.spec.template)?.approvers
    return !!a && (inGroups(a.groups, me) || (a.users ?? []).some((u) => same(u, me)))
  }
  const activePart = (s, me) => s.status.participants.find((p) => !p.leftAt && (same(p.user, me) || same(p.email, me)))
  const invited = (s, me) => s.spec.invitedParticipants.some((u) => same(u, me))
  const visible = (s, me) =>
    me.admin || isRequester(s, me) || invited(s, me) || isApprover(s, me) ||
    s.status.participants.some((p) => same(p.user, me)) || same(s.status.approval.approvedBy, me) || same(s.status.approval.rejectedBy, me)

  function event(s, actor, type, data = {}) {
    s.events.push({ at: iso(clock()), actor: actor ?? 'system', type, data })
  }

  function activateIfReady(s) {
    const ag = agentOf(s.spec.agent)
    if (ag?.online) {
      const now = clock()
      s.status.state = 'Active'
      s.status.message = null
      s.status.startsAt = iso(now)
      s.status.expiresAt = iso(now + parseDuration(s.spec.requestedDuration) * 1000)
      event(s, null, 'activated')
    } else {
      s.status.state = 'Pending'
      s.status.message = 'waiting for agent'
    }
  }

  function sweep() {
    const now = clock()
    for (const s of db.sessions) {
      if (s.status.state === 'Active' && Date.parse(s.status.expiresAt) <= now) {
        s.status.state = 'Expired'
        s.status.message = null
        for (const p of s.status.participants) if (!p.leftAt) p.leftAt = iso(now)
        event(s, null, 'expired')
      }
      if (s.status.state === 'Pending' && s.status.approval.required === false || (s.status.state === 'Pending' && s.status.approval.approvedBy)) {
        if (agentOf(s.spec.agent)?.online) activateIfReady(s)
      }
    }
  }

  function view(s, me) {
    const st = s.status.state
    const t = tpl(s.spec.template)
    const decided = !!(s.status.approval.approvedBy || s.status.approval.rejectedBy)
    const mayDecide = st === 'PendingApproval' && !decided && isApprover(s, me) && !isRequester(s, me)
    const part = activePart(s, me)
    const eligibleJoin = isRequester(s, me) || invited(s, me) || isApprover(s, me) || me.admin
    const renewLeft = (s.status.renewalCount ?? 0) < (t.constraints.maxRenewals ?? 3)
    const ag = agentOf(s.spec.agent)
    return {
      name: s.name,
      createdAt: s.createdAt,
      spec: { ...s.spec, invitedParticipants: [...s.spec.invitedParticipants] },
      status: {
        // issue 12's fields (presence, time), neutral unless the mock's state sets them
        effectiveDuration: s.status.startsAt && s.status.expiresAt
          ? formatDuration((Date.parse(s.status.expiresAt) - Date.parse(s.status.startsAt)) / 1000) : null,
        idleEndsAt: null,
        ...s.status,
        approval: { ...s.status.approval },
        participants: s.status.participants.map((p) => ({ connections: 0, connectedSince: null, lastInputAt: null, firstConnectedAt: null, ...p })),
        agent: { online: !!ag?.online, hostKeyFingerprints: ag ? [...ag.hostKeyFingerprints] : [], offlineSince: null, failsAt: null, ...s.status.agent },
      },
      canApprove: mayDecide,
      canReject: mayDecide,
      canJoin: st === 'Active' && eligibleJoin, // joining again gives a fresh ticket
      canRenew: st === 'Active' && t.constraints.allowRenewal !== false && renewLeft && (isRequester(s, me) || part?.role === 'participant'),
      canTerminate: ['Active', 'Pending', 'PendingApproval'].includes(st) && (isRequester(s, me) || me.admin || isApprover(s, me)),
    }
  }

  function agentView(a) {
    const { credential: _c, ...rest } = a
    return {
      ...rest,
      labels: { ...a.labels },
      sessions: db.sessions.filter((s) => s.spec.agent === a.name && !ENDED.includes(s.status.state)).map((s) => s.name),
    }
  }

  function findSession(name, me) {
    const s = db.sessions.find((x) => x.name === name)
    if (!s || !visible(s, me)) throw notFound(`debug session ${name} not found`)
    return s
  }

  function templatesFor(me) {
    return TEMPLATES.filter((t) => me.admin || inGroups(t.allowed.groups, me) || (t.allowed.users ?? []).some((u) => same(u, me)))
  }
  function needsApproval(t, me, agentName) {
    const a = t.approvers
    if ((a.groups?.length ?? 0) + (a.users?.length ?? 0) === 0) return false
    if (inGroups(a.autoApproveFor?.groups, me) || (a.autoApproveFor?.users ?? []).some((u) => same(u, me))) return false
    return !(agentName && anyGlob(a.autoApproveFor?.agents, agentName))
  }
  const templateView = (t, me) => ({ ...structuredClone(t), approvalRequired: needsApproval(t, me, null) })

  function createSession(me, b) {
    checkBody(b, { template: 'string', agent: 'string', requestedDuration: 'string', reason: 'string', invitedParticipants: 'string[]' }, ['template', 'agent'])
    const t = tpl(b.template)
    if (!t) throw bad(`unknown template: ${b.template}`, { field: 'template' })
    const ag = agentOf(b.agent)
    if (!ag) throw bad(`unknown agent: ${b.agent}`, { field: 'agent' })
    if (!templatesFor(me).includes(t)) throw forbidden(`you may not use template ${t.name}`)
    if (t.allowed.agents?.length && !anyGlob(t.allowed.agents, ag.name)) throw forbidden(`template ${t.name} does not allow agent ${ag.name}`)
    const dur = b.requestedDuration ?? t.constraints.defaultDuration
    const secs = parseDuration(dur)
    if (!secs) throw bad(`requestedDuration: cannot parse "${dur}"`, { field: 'requestedDuration' })
    if (secs > parseDuration(t.constraints.maxDuration)) throw bad(`requestedDuration ${dur} is above the template's maximum ${t.constraints.maxDuration}`, { field: 'requestedDuration' })
    const reason = (b.reason ?? '').trim()
    const rr = t.requestReason
    if (rr.mandatory && !reason) throw bad('a reason is required for this template', { field: 'reason' })
    if (reason && reason.length < (rr.minLength ?? 0)) throw bad(`the reason must be at least ${rr.minLength} characters`, { field: 'reason' })
    if (reason.length > (rr.maxLength ?? 1000)) throw bad(`the reason must be at most ${rr.maxLength} characters`, { field: 'reason' })
    const now = clock()
    const s = {
      name: sessionName(),
      createdAt: iso(now),
      spec: {
        template: t.name, agent: ag.name, requestedBy: me.user, requestedByEmail: me.email, requestedByDisplayName: me.displayName,
        requestedDuration: dur, reason: reason || null, invitedParticipants: b.invitedParticipants ?? [],
      },
      requesterGroups: me.groups,
      status: {
        state: 'Pending', message: null, startsAt: null, expiresAt: null, renewalCount: 0, maxRenewals: t.constraints.maxRenewals,
        approval: { required: false, approvedBy: null, approvedAt: null, rejectedBy: null, rejectedAt: null, reason: null },
        participants: [],
        terminalSharing: { enabled: t.terminalSharing.enabled, provider: 'tmux', maxParticipants: t.terminalSharing.maxParticipants, browser: t.terminalSharing.browser !== false },
        allowedOperations: { ...t.allowedOperations },
      },
      events: [],
    }
    event(s, me.user, 'created', { template: t.name, agent: ag.name })
    const a = t.approvers
    if (!needsApproval(t, me, ag.name)) activateIfReady(s)
    else {
      s.status.state = 'PendingApproval'
      s.status.approval.required = true
      event(s, null, 'approval_required', { approvers: [...(a.groups ?? []), ...(a.users ?? [])].join(', ') })
    }
    db.sessions.unshift(s)
    return s
  }

  function decide(s, me, b, approve) {
    checkBody(b, { reason: 'string' })
    if (!isApprover(s, me)) throw forbidden('you are not an approver of this session')
    if (isRequester(s, me)) throw forbidden('you cannot approve or reject your own request')
    if (s.status.approval.approvedBy || s.status.approval.rejectedBy) throw conflict('a decision has already been recorded')
    if (s.status.state !== 'PendingApproval') throw conflict(`the session is ${s.status.state}, not PendingApproval`)
    const reason = (b.reason ?? '').trim() || null
    const now = iso(clock())
    if (approve) {
      Object.assign(s.status.approval, { approvedBy: me.user, approvedAt: now, reason })
      event(s, me.user, 'approved', reason ? { reason } : {})
      activateIfReady(s)
    } else {
      if (tpl(s.spec.template).approvalReason?.mandatoryForRejection && !reason) throw bad('a reason is required to reject this request', { field: 'reason' })
      Object.assign(s.status.approval, { rejectedBy: me.user, rejectedAt: now, reason })
      s.status.state = 'Terminated'
      s.status.message = 'rejected'
      event(s, me.user, 'rejected', reason ? { reason } : {})
    }
  }

  function join(s, me, b, req) {
    checkBody(b, { sshPublicKey: 'string', role: 'string' }, ['sshPublicKey'])
    if (!/^(ssh-|ecdsa-|sk-)\S+ [A-Za-z0-9+/=]+/.test(b.sshPublicKey.trim())) throw bad('sshPublicKey is not an OpenSSH public key', { field: 'sshPublicKey' })
    if (b.role !== undefined && !['participant', 'viewer'].includes(b.role)) throw bad('role must be participant or viewer', { field: 'role' })
    let role
    if (isRequester(s, me)) role = 'owner'
    else if (invited(s, me)) role = tpl(s.spec.template).terminalSharing.readOnlyParticipants ? 'viewer' : 'participant'
    else if (isApprover(s, me) || me.admin) role = 'viewer'
    else throw forbidden('you are not invited to this session')
    if (b.role === 'viewer') role = 'viewer'
    if (s.status.state !== 'Active') throw conflict(`the session is ${s.status.state}; you can join only an Active session`)
    const active = s.status.participants.filter((p) => !p.leftAt)
    if (!activePart(s, me) && active.length >= tpl(s.spec.template).terminalSharing.maxParticipants) throw conflict('the session is full')
    let p = activePart(s, me)
    if (!p) {
      p = { user: me.user, email: me.email, displayName: me.displayName, role, joinedAt: iso(clock()), leftAt: null }
      s.status.participants.push(p)
      event(s, me.user, 'joined', { role })
    }
    const ticket = crypto.randomBytes(32).toString('base64url')
    const ag = agentOf(s.spec.agent)
    const base = publicUrl || `http://${req.headers.host}`
    return {
      session: view(s, me),
      role: p.role,
      attach: {
        command: `ssh -o ProxyCommand='airlock --server ${base} proxy %n --ticket ${ticket}' -o UserKnownHostsFile=~/.config/airlock/known_hosts ${s.name}`,
        knownHostsLine: `${s.name} ${ag.hostKeys[0].split(' ').slice(0, 2).join(' ')}`,
        hostKeyFingerprints: [...ag.hostKeyFingerprints],
        connectUrl: base.replace(/^http/, 'ws') + `/api/v1/debug-sessions/${s.name}/connect`,
        ticket,
        ticketExpiresAt: s.status.expiresAt,
      },
    }
  }

  function renew(s, me, b) {
    checkBody(b, { extendBy: 'string' }, ['extendBy'])
    const by = parseDuration(b.extendBy)
    const t = tpl(s.spec.template)
    if (!by) throw bad(`extendBy: cannot parse "${b.extendBy}"`, { field: 'extendBy' })
    if (by > parseDuration(t.constraints.maxDuration)) throw bad(`extendBy ${b.extendBy} is above the template's maximum ${t.constraints.maxDuration}`, { field: 'extendBy' })
    const part = activePart(s, me)
    if (!isRequester(s, me) && part?.role !== 'participant') throw forbidden('only the owner and participants may renew')
    if (s.status.state !== 'Active') throw conflict(`the session is ${s.status.state}; only an Active session can be renewed`)
    if (t.constraints.allowRenewal === false) throw forbidden('renewals are not allowed for this template')
    const max = t.constraints.maxRenewals ?? 3
    if (s.status.renewalCount >= max) throw forbidden(`maximum renewals (${max}) reached`)
    const oldExp = Date.parse(s.status.expiresAt)
    const newExp = oldExp + by * 1000
    const limit = Date.parse(s.status.startsAt) + parseDuration(t.constraints.maxDuration) * 1000
    if (newExp > limit) throw forbidden(`the session may not run past ${iso(limit)} (maximum ${t.constraints.maxDuration})`)
    s.status.expiresAt = iso(newExp)
    s.status.renewalCount++
    event(s, me.user, 'renewed', { extendBy: b.extendBy, expiresAt: s.status.expiresAt })
  }

  function terminate(s, me, b) {
    checkBody(b, { reason: 'string' })
    if (!isRequester(s, me) && !me.admin && !isApprover(s, me)) throw forbidden('only the owner, an approver or an admin may terminate this session')
    if (ENDED.includes(s.status.state)) throw conflict(`the session has already ended (${s.status.state})`)
    const now = iso(clock())
    s.status.state = 'Terminated'
    s.status.message = b.reason ? `terminated by ${me.user}: ${b.reason}` : `terminated by ${me.user}`
    for (const p of s.status.participants) if (!p.leftAt) p.leftAt = now
    event(s, me.user, 'terminated', b.reason ? { reason: b.reason } : {})
  }

  function leave(s, me) {
    const p = activePart(s, me)
    if (!p) throw conflict('you are not an active participant of this session')
    p.leftAt = iso(clock())
    event(s, me.user, 'left')
  }

  function invite(s, me, b) {
    checkBody(b, { users: 'string[]', role: 'string' }, ['users'])
    if (!isRequester(s, me)) throw forbidden('only the owner may invite')
    if (ENDED.includes(s.status.state)) throw conflict('the session has ended')
    for (const u of b.users) if (!s.spec.invitedParticipants.some((x) => x.toLowerCase() === u.toLowerCase())) s.spec.invitedParticipants.push(u)
    event(s, me.user, 'invited', { users: b.users.join(', '), role: b.role ?? 'participant' })
  }

  function registerAgent(me, b) {
    checkBody(b, { name: 'string', labels: 'object', hostKeys: 'string[]', version: 'string', session: 'object' }, ['hostKeys'])
    if (!me.admin && !inGroups(['ops'], me)) throw forbidden('you may not register agents')
    if (!b.name || !/^[A-Za-z0-9._/-]{1,200}$/.test(b.name)) throw bad('name is missing or invalid', { field: 'name' })
    if (!b.hostKeys.length) throw bad('hostKeys must not be empty', { field: 'hostKeys' })
    const old = agentOf(b.name)
    if (old?.online) throw conflict(`agent ${b.name} is registered and online`)
    const a = {
      name: b.name, labels: b.labels ?? {}, online: false, version: b.version ?? null, hostKeys: b.hostKeys,
      hostKeyFingerprints: b.hostKeys.map(fingerprint), registeredBy: me.user, registeredAt: iso(clock()), lastSeenAt: null,
      credential: crypto.randomBytes(32).toString('base64url'),
    }
    db.agents = db.agents.filter((x) => x.name !== b.name)
    db.agents.push(a)
    const base = publicUrl
    return { agent: agentView(a), credential: a.credential, controlUrl: base.replace(/^http/, 'ws') + `/api/v1/agents/${encodeURIComponent(a.name)}/control`, session: null }
  }

  // ---- routing ----------------------------------------------------------------------------

  async function readBody(req) {
    const chunks = []
    let n = 0
    for await (const c of req) {
      n += c.length
      if (n > BODY_LIMIT) throw new HttpError(413, 'PAYLOAD_TOO_LARGE', 'the request body is larger than 64 KiB')
      chunks.push(c)
    }
    const text = Buffer.concat(chunks).toString('utf8')
    if (!text.trim()) return {}
    try {
      return JSON.parse(text)
    } catch {
      throw bad('the body is not valid JSON')
    }
  }

  function send(res, status, body) {
    const text = JSON.stringify(body)
    res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(text) })
    res.end(text)
  }

  async function api(req, res, segs, query) {
    const method = req.method
    const route = segs.join('/')
    if (method === 'GET' && route === 'config') {
      return send(res, 200, { version: 'mock-0.1.0', dev, publicUrl, oidc: dev ? { issuer: `${publicUrl}/dev`, clientId: null, scopes: ['openid', 'profile', 'email'] } : { issuer: opts.issuer ?? 'https://idp.example.com/realms/corp', clientId: 'airlock-ui', scopes: opts.scopes ?? ['openid', 'profile', 'email'] } })
    }
    if (method === 'POST' && route === 'dev/token') {
      if (!dev) throw notFound('not found')
      const b = checkBody(await readBody(req), { user: 'string', email: 'string', groups: 'string[]' }, ['user'])
      if (!b.user.trim()) throw bad('user must not be empty', { field: 'user' })
      const exp = Math.floor(clock() / 1000) + 3600
      const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url')
      const payload = { iss: publicUrl, sub: b.user, preferred_username: b.user, email: b.email ?? `${b.user}@example.com`, name: b.user, groups: b.groups ?? [], aud: 'airlock', exp, iat: exp - 3600 }
      return send(res, 200, { token: `${enc({ alg: 'none', typ: 'JWT' })}.${enc(payload)}.mock`, expiresAt: iso(exp * 1000) })
    }
    const me = identity(req)
    sweep()
    if (method === 'GET' && route === 'me') return send(res, 200, { user: me.user, email: me.email, displayName: me.displayName, groups: me.groups, admin: me.admin })

    if (segs[0] === 'debug-sessions') {
      if (segs.length === 1) {
        if (method === 'GET') {
          let list = db.sessions.filter((s) => visible(s, me))
          const st = query.get('state')
          if (st) {
            const want = st.split(',')
            for (const w of want) if (!STATES.includes(w)) throw bad(`unknown state: ${w}`, { field: 'state' })
            list = list.filter((s) => want.includes(s.status.state))
          }
          if (query.get('agent')) list = list.filter((s) => s.spec.agent === query.get('agent'))
          if (query.get('user')) list = list.filter((s) => s.spec.requestedBy.toLowerCase() === query.get('user').toLowerCase())
          if (query.get('mine') === 'true') list = list.filter((s) => isRequester(s, me) || invited(s, me) || s.status.participants.some((p) => same(p.user, me)))
          list.sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt))
          const limit = Math.min(500, Math.max(1, Number(query.get('limit') ?? 50) || 50))
          const offset = query.get('cursor') ? Number(Buffer.from(query.get('cursor'), 'base64url').toString()) || 0 : 0
          const page = list.slice(offset, offset + limit)
          const next = offset + limit < list.length ? Buffer.from(String(offset + limit)).toString('base64url') : null
          return send(res, 200, { sessions: page.map((s) => view(s, me)), total: list.length, nextCursor: next })
        }
        if (method === 'POST') {
          const s = createSession(me, await readBody(req))
          return send(res, 201, view(s, me))
        }
      }
      if (segs.length >= 2) {
        const action = segs[2]
        if (segs.length === 2 && method === 'GET') return send(res, 200, view(findSession(segs[1], me), me))
        if (segs.length === 3 && method === 'GET' && action === 'events') {
          const s = findSession(segs[1], me)
          return send(res, 200, { events: s.events })
        }
        if (segs.length === 3 && method === 'POST') {
          const body = await readBody(req)
          const s = findSession(segs[1], me)
          switch (action) {
            case 'approve': decide(s, me, body, true); break
            case 'reject': decide(s, me, body, false); break
            case 'join': return send(res, 200, join(s, me, body, req))
            case 'leave': leave(s, me); break
            case 'renew': renew(s, me, body); break
            case 'terminate': terminate(s, me, body); break
            case 'invite': invite(s, me, body); break
            default: throw notFound(`no such action: ${action}`)
          }
          return send(res, 200, view(s, me))
        }
      }
    }
    if (segs[0] === 'debug-session-templates' && method === 'GET') {
      const mine = templatesFor(me)
      if (segs.length === 1) return send(res, 200, { templates: mine.map((t) => templateView(t, me)), total: mine.length })
      if (segs.length === 2) {
        const t = mine.find((x) => x.name === segs[1])
        if (!t) throw notFound(`template ${segs[1]} not found`)
        return send(res, 200, templateView(t, me))
      }
    }
    if (segs[0] === 'snippets' && segs.length === 2 && method === 'GET') {
      // the same shapes airlockd's snippet.c renders (GET /api/v1/snippets/{ci})
      const mine = templatesFor(me)
      const want = query.get('template')
      const t = want ? mine.find((x) => x.name === want) : mine[0]
      if (want && !t) throw notFound(`template '${want}' not found`)
      const server = publicUrl || `http://${req.headers.host}`
      const name = t?.name ?? null
      const texts = {
        github: `# .github/workflows/ci.yml\njobs:\n  test:\n    runs-on: ubuntu-latest\n    permissions:\n      id-token: write\n      contents: read\n    steps:\n      - uses: actions/checkout@v4\n      - run: make test\n      - name: Debug with airlock if the job failed\n        if: failure()\n        uses: airlock/airlock@v0.1.0\n        with:\n          server: ${server}${name ? `\n          template: ${name}` : ''}\n`,
        gitlab: `# .gitlab-ci.yml\ninclude:\n  - remote: https://raw.githubusercontent.com/airlock/airlock/v0.1.0/ci/gitlab/airlock.yml\n\ntest:\n  extends: .airlock\n  variables:\n    AIRLOCK_SERVER: ${server}${name ? `\n    AIRLOCK_TEMPLATE: ${name}` : ''}\n  script:\n    - make test || { rc=$?; sh -c "$AIRLOCK_SCRIPT"; exit $rc; }\n`,
        host: `curl -fsSLO ${server}/download/airlock-linux-amd64.tar.gz\ntar -xzf airlock-linux-amd64.tar.gz\nairlock/airlock --server ${server} login\n`,
      }
      if (!texts[segs[1]]) throw notFound(`no snippet for '${segs[1]}' (github, gitlab or host)`)
      return send(res, 200, { ci: segs[1], template: name, text: texts[segs[1]] })
    }
    if (segs[0] === 'agents') {
      if (segs.length === 1 && method === 'GET') return send(res, 200, { agents: db.agents.map(agentView) })
      if (segs.length === 1 && method === 'POST') return send(res, 201, registerAgent(me, await readBody(req)))
      if (segs.length === 2 && method === 'GET') {
        const a = agentOf(segs[1])
        if (!a) throw notFound(`agent ${segs[1]} not found`)
        return send(res, 200, agentView(a))
      }
    }
    throw notFound(`no route for ${method} /api/v1/${route}`)
  }

  const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon', '.json': 'application/json', '.woff2': 'font/woff2' }

  function staticFile(req, res, pathname) {
    let file = path.join(distDir, path.normalize(decodeURIComponent(pathname)).replace(/^(\.\.[/\\])+/, ''))
    if (!file.startsWith(distDir)) file = path.join(distDir, 'index.html')
    let st = fs.statSync(file, { throwIfNoEntry: false })
    if (!st || st.isDirectory()) {
      if (pathname.startsWith('/assets/')) {
        res.writeHead(404, { 'Content-Type': 'text/plain' })
        return res.end('not found')
      }
      file = path.join(distDir, 'index.html') // history fallback
      st = fs.statSync(file, { throwIfNoEntry: false })
      if (!st) {
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' })
        return res.end('<!doctype html><title>airlock mock</title><p>frontend/dist is not built: run <code>cd frontend &amp;&amp; npm run build</code>, or use <code>npm run dev</code>.')
      }
    }
    res.writeHead(200, {
      'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'Cache-Control': pathname.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
    })
    fs.createReadStream(file).pipe(res)
  }

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, 'http://mock')
    if (!publicUrl) publicUrl = `http://${req.headers.host}`
    try {
      if (url.pathname === '/healthz' || url.pathname === '/readyz') {
        return send(res, 200, { status: 'ok' })
      }
      if (url.pathname === '/__mock/reset' && req.method === 'POST') {
        reset()
        return send(res, 200, { ok: true })
      }
      if (url.pathname === '/__mock/agent' && req.method === 'POST') {
        const b = await readBody(req)
        const a = agentOf(b.name)
        if (!a) throw notFound(`agent ${b.name} not found`)
        a.online = !!b.online
        a.lastSeenAt = iso(clock())
        return send(res, 200, agentView(a))
      }
      if (url.pathname.startsWith('/api/')) {
        const raw = url.pathname.replace(/\/+$/, '')
        if (!raw.startsWith('/api/v1/')) throw notFound('unknown API version')
        // split the raw path first, then decode each segment (agent names hold %2F)
        const segs = raw.slice('/api/v1/'.length).split('/').map((x) => decodeURIComponent(x))
        return await api(req, res, segs, url.searchParams)
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'BAD_REQUEST', 'method not allowed')
      return staticFile(req, res, url.pathname)
    } catch (e) {
      if (e instanceof HttpError) return send(res, e.status, { error: e.message, code: e.code, details: e.details ?? null })
      console.error(e)
      return send(res, 500, { error: 'internal error in the mock', code: 'INTERNAL_ERROR', details: null })
    }
  })

  return {
    server,
    reset,
    get state() {
      return db
    },
    listen(port = 0, host = '127.0.0.1') {
      return new Promise((resolve) => {
        server.listen(port, host, () => {
          const addr = server.address()
          const url = `http://${host}:${addr.port}`
          if (!opts.publicUrl) publicUrl = url
          resolve(url)
        })
      })
    },
    close() {
      return new Promise((resolve) => {
        server.closeAllConnections?.()
        server.close(() => resolve())
      })
    },
  }
}

// ---- command line -------------------------------------------------------------------------

function main(argv) {
  const o = { port: Number(process.env.PORT) || 8090, host: '127.0.0.1' }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`)
      return argv[++i]
    }
    if (a === '--port') o.port = Number(val())
    else if (a === '--host') o.host = val()
    else if (a === '--dist') o.distDir = val()
    else if (a === '--public-url') o.publicUrl = val()
    else if (a === '--no-dev') o.dev = false
    else if (a === '--issuer') o.issuer = val()
    else if (a === '-h' || a === '--help') {
      console.log('usage: node mock-api/server.mjs [--port 8090] [--host 127.0.0.1] [--dist DIR] [--public-url URL] [--no-dev [--issuer URL]]')
      process.exit(0)
    } else {
      console.error(`unknown argument: ${a}`)
      process.exit(2)
    }
  }
  const m = createMockServer(o)
  m.listen(o.port, o.host).then((url) => console.log(`airlock mock API on ${url} (UI from ${o.distDir ?? 'frontend/dist'})`))
  const stop = () => m.close().then(() => process.exit(0))
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main(process.argv.slice(2))
