// The recording player against a real airlockd in dev mode (docs/recording.md): an agent (its
// control WebSocket from here) uploads a session's recording in chunks with its credential, the
// way `airlock agent` does; alice opens the session page, is told the session is recorded, plays
// the recording in the asciinema-player and sees the recorded output in its terminal, with a
// marker on the player's timeline for each audit event; changing the speed keeps the place.
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import WebSocket from 'ws'
import { OUT, ROOT, api, assert, devToken, launch, shot, signedIn, sshPublicKey, startAirlockd, suite, waitFor } from './lib.mjs'

const bin = path.resolve(ROOT, process.env.AIRLOCKD || 'build/airlockd')
const t = suite('ui-recording', { dependent: true })
const CONFIG = `auth:
  dev: true
  agentRegistrars: { groups: [ops] }
templates:
  - name: recorded
    displayName: Recorded sandbox
    allowed: { groups: [developers] }
    constraints: { maxDuration: 2h }
    recording: { enabled: true, required: false }
`

t.step('an agent comes online; alice\'s recorded session becomes Active', async (c) => {
  const ops = await devToken(c.base, 'opsbot', ['ops'])
  const hostKey = sshPublicKey('rec-host').split(' ').slice(0, 2).join(' ')
  const r = await api(c.base, 'POST', '/api/v1/agents', ops, { name: 'rec', hostKeys: [hostKey], version: 'test' })
  assert(r.status === 201, `register: HTTP ${r.status} ${JSON.stringify(r.body)}`)
  c.cred = r.body.credential
  c.ws = new WebSocket(c.base.replace(/^http/, 'ws') + '/api/v1/agents/rec/control', { headers: { Authorization: `Bearer ${c.cred}` } })
  await new Promise((res, rej) => {
    c.ws.once('open', res)
    c.ws.once('error', rej)
  })
  c.ws.send(JSON.stringify({ type: 'hello', version: 'test', hostKeys: [hostKey] }))
  c.alice = await signedIn(c.browser, c.base, 'alice')
  const s = await api(c.base, 'POST', '/api/v1/debug-sessions', await c.alice.token(), { template: 'recorded', agent: 'rec' })
  assert(s.status === 201, `create: HTTP ${s.status} ${JSON.stringify(s.body)}`)
  c.name = s.body.name
  await waitFor(async () => (await api(c.base, 'GET', `/api/v1/debug-sessions/${c.name}`, await c.alice.token())).body?.status?.state === 'Active', { what: 'session Active' })
})

t.step('before anything is recorded the page already says the session is recorded', async (c) => {
  const p = c.alice.page
  await p.goto(`/debug-sessions/${c.name}`)
  const notice = p.getByTestId('recorded-notice')
  await notice.waitFor()
  assert((await notice.innerText()).includes('This session is recorded'), 'no recorded notice')
  assert((await p.getByTestId('recording-load').count()) === 0, 'a play button with nothing to play')
})

t.step('the agent uploads the recording in three chunks, the last one final', async (c) => {
  const t0 = Math.floor(Date.now() / 1000) - 5 // the session's events fall after the start
  const lines = [
    JSON.stringify({ version: 2, width: 80, height: 24, timestamp: t0, title: 'ui test', env: { TERM: 'xterm-256color' } }) + '\n',
    JSON.stringify([0.2, 'o', '$ ']) + '\n' + JSON.stringify([1.0, 'o', 'echo recorded-in-ui-$((6*7))\r\n']) + '\n',
    JSON.stringify([1.5, 'o', 'recorded-in-ui-42\r\n$ ']) + '\n' + JSON.stringify([8.0, 'o', 'echo caf\u00e9-done\r\ncaf\u00e9-done\r\n$ ']) + '\n',
  ]
  for (let i = 0; i < lines.length; i++) {
    const r = await fetch(`${c.base}/api/v1/agents/rec/recordings/${c.name}/chunks/${i}`, {
      method: 'PUT',
      headers: {
        Authorization: `Bearer ${c.cred}`,
        'Content-Type': 'application/x-asciicast',
        'X-Chunk-SHA256': crypto.createHash('sha256').update(lines[i]).digest('hex'),
        ...(i === lines.length - 1 ? { 'X-Recording-Final': '1' } : {}),
      },
      body: lines[i],
    })
    assert(r.status === 200, `chunk ${i}: HTTP ${r.status} ${await r.text()}`)
  }
})

t.step('alice plays the recording: the player shows the recorded output, with markers for the audit events', async (c) => {
  const p = c.alice.page
  await p.reload()
  await p.getByTestId('recording-state').filter({ hasText: 'finished' }).waitFor({ timeout: 15000 })
  await p.getByTestId('recording-load').click()
  await p.locator('[data-testid=recording-player] .ap-term').waitFor()
  const markers = await p.getByTestId('recording-markers').locator('li').allInnerTexts()
  assert(markers.some((m) => /activated/.test(m)) && markers.some((m) => /recording finished/.test(m)),
    `markers: ${JSON.stringify(markers)}`)
  await p.getByTestId('recording-toggle').click()
  const term = p.locator('[data-testid=recording-player] .ap-term')
  await waitFor(async () => (await term.innerText()).includes('recorded-in-ui-42'), { what: 'the recorded output in the player', timeout: 15000 })
  const onTimeline = await p.locator('[data-testid=recording-player] .ap-marker-container').count()
  assert(onTimeline === markers.length, `${onTimeline} markers on the player's timeline, ${markers.length} audit events`)
  assert((await p.getByTestId('recording-toggle').innerText()) === 'Pause', 'the button does not offer Pause while playing')
  await p.getByTestId('recording-toggle').click()
  await p.getByTestId('recording-toggle').filter({ hasText: 'Play' }).waitFor()
  await shot(p, 'recording-player')
})

t.step('speed 4× goes on from the same place and reaches the end; seeking to a marker works', async (c) => {
  const p = c.alice.page
  await p.getByTestId('recording-speed').selectOption('4')
  await p.getByTestId('recording-toggle').click()
  const term = p.locator('[data-testid=recording-player] .ap-term')
  await waitFor(async () => (await term.innerText()).includes('café-done'), { what: 'the end of the recording (UTF-8 intact)', timeout: 15000 })
  await p.getByTestId('recording-markers').locator('button').first().click()
  assert(c.alice.errors.length === 0, `page errors: ${c.alice.errors.join('; ')}`)
})

t.step('Check integrity says intact', async (c) => {
  const p = c.alice.page
  await p.getByTestId('recording-verify').click()
  await p.getByTestId('recording-check').filter({ hasText: 'intact' }).waitFor()
})

async function before() {
  if (!fs.existsSync(bin)) throw new Error(`${bin} does not exist (set AIRLOCKD, or build it with make bin)`)
  if (!fs.existsSync(path.join(ROOT, 'frontend/dist/index.html'))) throw new Error('frontend/dist is not built')
  const cfg = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-ui-rec-')), 'airlock.yaml')
  fs.writeFileSync(cfg, CONFIG)
  const server = await startAirlockd(bin, { config: cfg })
  console.log(`# airlockd pid ${server.pid} on ${server.url} (log: ${path.relative(ROOT, OUT)}/airlockd.log)`)
  const browser = await launch()
  return { server, base: server.url, browser, cfg }
}

async function after(c) {
  if (!c) return
  c.ws?.terminate()
  await c.browser?.close().catch(() => {})
  await c.server?.stop()
  fs.rmSync(path.dirname(c.cfg), { recursive: true, force: true })
}

process.exitCode = (await t.run({ before, after })) ? 1 : 0
