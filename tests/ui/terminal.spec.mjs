// The browser terminal (issue 13) end to end: a real airlockd (dev mode), a real `airlock agent`
// with its tmux, the real OpenSSH client through `airlock proxy`, and Debian's chromium.
//   - carol (an approver) watches in the browser what alice types over ssh;
//   - bob (a participant) types in the browser, and alice's ssh shows it;
//   - carol's keystrokes change nothing (her terminal is read-only, and the server refuses input);
//   - bob leaves: his browser stream closes within 1 s;
//   - a template with terminalSharing.browser: false shows a note instead.
// Every process gets a temporary HOME; servers listen on 127.0.0.1 and are stopped by PID.
import { spawn, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { OUT, ROOT, api, assert, devToken, launch, shot, signedIn, startAirlockd, suite, waitFor } from './lib.mjs'

const bin = path.resolve(ROOT, process.env.AIRLOCKD || 'build/airlockd')
const agentBin = path.resolve(ROOT, process.env.AIRLOCK || 'build/airlock')
const t = suite('ui-terminal', { dependent: true })
const AGENT = 'term-host'

const CONFIG = `
approvalTimeout: 1h
auth:
  dev: true
  admins: { groups: [airlock-admins] }
  agentRegistrars: { groups: [ops] }
templates:
  - name: term
    allowed: { groups: [developers], agents: ["*"] }
    approvers: { groups: [sre-leads], autoApproveFor: { groups: [developers] } }
    constraints: { maxDuration: 1h, idleTimeout: 10m }
    terminalSharing: { enabled: true, provider: tmux, maxParticipants: 5, browser: true }
    allowedOperations: { shell: true, exec: true, sftp: false, portForward: false }
  - name: term-off
    allowed: { groups: [developers], agents: ["*"] }
    approvers: { groups: [sre-leads], autoApproveFor: { groups: [developers] } }
    constraints: { maxDuration: 1h }
    terminalSharing: { enabled: true, provider: tmux, maxParticipants: 5, browser: false }
`

/** The text xterm.js shows in page p (its DOM renderer's rows). */
const screenText = (p) => p.getByTestId('terminal-screen').locator('.xterm-rows').innerText()

/** Opens the browser terminal on the session page of page p; resolves its mode. */
async function openTerminal(p, name) {
  await p.goto(`/debug-sessions/${name}`)
  await p.getByTestId('terminal-open').click()
  const mode = await p.getByTestId('terminal-mode').getAttribute('data-mode')
  await p.getByTestId('terminal-screen').locator('.xterm-rows').waitFor()
  return mode
}

t.step('a real airlock agent registers and comes online', async (c) => {
  fs.writeFileSync(path.join(c.tmp, 'ops.tok'), await devToken(c.base, 'opsbot', ['ops']))
  const log = fs.openSync(path.join(OUT, 'terminal-agent.log'), 'w')
  c.agent = spawn(agentBin, ['--server', c.base, 'agent', '--name', AGENT, '--token-file', path.join(c.tmp, 'ops.tok'),
    '--run-dir', c.run, '--host-key', path.join(c.tmp, 'host.key')], { cwd: c.tmp, env: c.env, stdio: ['ignore', log, log] })
  c.alice = await devToken(c.base, 'alice', ['developers'])
  await waitFor(async () => (await api(c.base, 'GET', `/api/v1/agents/${AGENT}`, c.alice)).body?.online === true, { timeout: 20_000, what: 'agent online' })
})

t.step('alice opens a session and types over real ssh; carol (approver) watches it appear in her browser, read-only', async (c) => {
  const r = await api(c.base, 'POST', '/api/v1/debug-sessions', c.alice, { template: 'term', agent: AGENT, invitedParticipants: ['bob'] })
  assert(r.status === 201, `create: ${r.status} ${JSON.stringify(r.body)}`)
  c.name = r.body.name
  await waitFor(async () => (await api(c.base, 'GET', `/api/v1/debug-sessions/${c.name}`, c.alice)).body?.status?.state === 'Active', { what: 'Active' })
  c.ssh = await sshShell(c, 'alice')
  c.carol = await signedIn(c.browser, c.base, 'carol')
  const mode = await openTerminal(c.carol.page, c.name)
  assert(mode === 'ro', `carol's mode: ${mode}`)
  assert(await c.carol.page.getByTestId('terminal-notice').isVisible(), 'no visible-to-server notice')
  c.ssh.type('echo VIEWER-SEES-$((6*7))\r')
  await waitFor(async () => (await screenText(c.carol.page)).includes('VIEWER-SEES-42'), { timeout: 15_000, what: 'the ssh command in carol\'s browser' })
  await shot(c.carol.page, 'terminal-viewer')
})

t.step('bob (participant) types in the browser; alice sees it over ssh', async (c) => {
  c.bobTok = await devToken(c.base, 'bob', ['developers'])
  const j = await api(c.base, 'POST', `/api/v1/debug-sessions/${c.name}/join`, c.bobTok, { sshPublicKey: c.keys.bob.pub })
  assert(j.status === 200, `bob joins: ${j.status} ${JSON.stringify(j.body)}`)
  c.bob = await signedIn(c.browser, c.base, 'bob')
  const mode = await openTerminal(c.bob.page, c.name)
  assert(mode === 'rw', `bob's mode: ${mode}`)
  await c.bob.page.getByTestId('terminal-screen').click()
  // Nobody else types during this step: only bob's keys can move the idle end past typedAt + 10m.
  const typedAt = Math.floor(Date.now() / 1000) * 1000
  await c.bob.page.keyboard.type('echo BOB-TYPED-$((2*3))')
  await c.bob.page.keyboard.press('Enter')
  await waitFor(() => c.ssh.output().includes('BOB-TYPED-6'), { timeout: 15_000, what: 'bob\'s command in alice\'s ssh' })
  await waitFor(async () => (await screenText(c.carol.page)).includes('BOB-TYPED-6'), { timeout: 15_000, what: 'and in carol\'s browser' })
  const idleEnd = async () => Date.parse((await api(c.base, 'GET', `/api/v1/debug-sessions/${c.name}`, c.alice)).body?.status?.idleEndsAt ?? 0)
  await waitFor(async () => (await idleEnd()) >= typedAt + 600_000, { timeout: 20_000, what: 'bob\'s browser keystrokes to count as input (idleEndsAt)' })
  await shot(c.bob.page, 'terminal-participant')
})

t.step('carol\'s keystrokes change nothing', async (c) => {
  const p = c.carol.page
  await p.getByTestId('terminal-screen').click()
  await p.keyboard.type('echo CAROL-WAS-HERE-$((1+1))')
  await p.keyboard.press('Enter')
  // A marker typed after hers: once it has come back, her keys would have arrived before it.
  c.ssh.type('echo MARKER-$((3*3))\r')
  await waitFor(async () => (await screenText(p)).includes('MARKER-9'), { timeout: 15_000, what: 'the marker in carol\'s browser' })
  const pane = execFileSync('tmux', ['-S', path.join(c.run, 'tmux.sock'), 'capture-pane', '-p', '-J', '-S', '-', '-t', `${c.name}:`], { env: c.env }).toString()
  assert(pane.includes('MARKER-9'), `pane lacks the marker: ${pane.slice(-400)}`)
  assert(!pane.includes('CAROL-WAS-HERE') && !c.ssh.output().includes('CAROL-WAS-HERE'), 'carol\'s keystrokes reached the shell')
  assert(await p.getByTestId('terminal-closed').count() === 0, 'carol\'s terminal is still open')
})

t.step('bob leaves: his browser stream closes within 1 s', async (c) => {
  const closed = c.bob.page.getByTestId('terminal-closed')
  const r = await api(c.base, 'POST', `/api/v1/debug-sessions/${c.name}/leave`, c.bobTok, {})
  assert(r.status === 200, `leave: ${r.status}`)
  const t0 = Date.now()
  await closed.waitFor({ timeout: 1000 }) // the 1 s the issue allows
  console.log(`#   closed ${Date.now() - t0} ms after the leave answered`)
  assert(/left/.test(await closed.innerText()), await closed.innerText())
  assert(await c.carol.page.getByTestId('terminal-closed').count() === 0, 'carol\'s stream stays')
})

t.step('a template with terminalSharing.browser: false shows a note and no terminal', async (c) => {
  const r = await api(c.base, 'POST', '/api/v1/debug-sessions', c.alice, { template: 'term-off', agent: AGENT })
  assert(r.status === 201, `create: ${r.status}`)
  const p = c.carol.page
  const a = await signedIn(c.browser, c.base, 'alice')
  await a.page.goto(`/debug-sessions/${r.body.name}`)
  await a.page.getByTestId('terminal-off').waitFor()
  assert(await a.page.getByTestId('terminal-open').count() === 0, 'an Open button despite browser: false')
  await shot(a.page, 'terminal-off')
  c.extra = a
  void p
})

t.step('no uncaught errors in any page', async (c) => {
  const all = [...c.carol.errors, ...c.bob.errors, ...(c.extra?.errors ?? [])]
  assert(all.length === 0, all.join('; '))
})

/** ssh -tt as user through `airlock proxy`, under script(1): { type(text), output() } */
async function sshShell(c, user) {
  const tok = user === 'alice' ? c.alice : await devToken(c.base, user, ['developers'])
  const j = await api(c.base, 'POST', `/api/v1/debug-sessions/${c.name}/join`, tok, { sshPublicKey: c.keys[user].pub })
  assert(j.status === 200, `${user} joins: ${j.status} ${JSON.stringify(j.body)}`)
  const kh = path.join(c.tmp, `kh.${user}`)
  fs.writeFileSync(kh, j.body.attach.knownHostsLine + '\n')
  const q = (s) => `'${s.replace(/'/g, `'\\''`)}'`
  const cmd = ['ssh', '-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'StrictHostKeyChecking=yes',
    '-o', `UserKnownHostsFile=${kh}`, '-o', 'LogLevel=ERROR', '-i', c.keys[user].file,
    '-o', `ProxyCommand=${agentBin} --server ${c.base} proxy %n --ticket ${j.body.attach.ticket}`, '-tt', c.name].map(q).join(' ')
  const child = spawn('script', ['-qfec', cmd, '/dev/null'], { env: c.env, stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d) => (out += d.toString()))
  child.stderr.on('data', (d) => (out += d.toString()))
  c.children.push(child)
  await waitFor(() => /\$ |# /.test(out), { timeout: 20_000, what: `${user}'s shell prompt over ssh` })
  return { type: (s) => child.stdin.write(s), output: () => out }
}

function sshKey(dir, user) {
  const file = path.join(dir, `id_${user}`)
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${user}@ui`, '-f', file])
  return { file, pub: fs.readFileSync(file + '.pub', 'utf8').trim() }
}

async function before() {
  for (const f of [bin, agentBin]) if (!fs.existsSync(f)) throw new Error(`${f} does not exist (make bin)`)
  if (!fs.existsSync(path.join(ROOT, 'frontend/dist/index.html'))) throw new Error('frontend/dist is not built')
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-ui-term-'))
  fs.writeFileSync(path.join(tmp, 'airlock.yaml'), CONFIG)
  const server = await startAirlockd(bin, { config: path.join(tmp, 'airlock.yaml'), logName: 'terminal-airlockd.log' })
  console.log(`# airlockd pid ${server.pid} on ${server.url}`)
  const home = path.join(tmp, 'home')
  fs.mkdirSync(home)
  // A temporary HOME (root's rc files run pyenv and are slow) and a plain prompt for the shells.
  const env = { ...process.env, HOME: home, SHELL: '/bin/sh', PS1: '$ ', TERM: 'xterm-256color' }
  const keys = { alice: sshKey(tmp, 'alice'), bob: sshKey(tmp, 'bob') }
  const browser = await launch()
  return { server, base: server.url, browser, tmp, run: path.join(tmp, 'run'), env, keys, children: [] }
}

async function after(c) {
  if (!c) return
  for (const ch of c.children) ch.kill('SIGTERM')
  await c.browser?.close().catch(() => {})
  if (c.agent) {
    c.agent.kill('SIGTERM')
    await new Promise((r) => {
      if (c.agent.exitCode !== null) return r()
      const t = setTimeout(() => { c.agent.kill('SIGKILL'); r() }, 10_000) // the agent's shutdown deadline
      c.agent.once('exit', () => { clearTimeout(t); r() })
    })
  }
  await c.server?.stop()
  fs.rmSync(c.tmp, { recursive: true, force: true })
}

process.exitCode = (await t.run({ before, after })) ? 1 : 0
