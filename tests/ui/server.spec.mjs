// The UI against a real airlockd in dev mode (DESIGN.md 5-7): alice requests a ci-debug session on
// agent demo, carol approves it in her own browser context, alice joins, copies the attach command,
// renews and terminates; bob (a non-approver) and alice (the requester) get no Approve button, and
// the API refuses them. Screenshots of each main view, at 1280 and at 375 px, go to tests/out/ui/.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import WebSocket from 'ws'
import {
  OUT, ROOT, api, assert, devToken, launch, noHorizontalScroll, shot, signedIn, sshPublicKey, startAirlockd, suite, waitFor,
} from './lib.mjs'

const bin = path.resolve(ROOT, process.env.AIRLOCKD || 'build/airlockd')
const airlockBin = path.resolve(ROOT, process.env.AIRLOCK || 'build/airlock')
const t = suite('ui-airlockd', { dependent: true })
const XSS = '<img src=x onerror="window.__xss=1">'

t.step('agent demo registers (as ops) and stays online over its control WebSocket', async (c) => {
  const ops = await devToken(c.base, 'opsbot', ['ops'])
  const hostKey = sshPublicKey('demo-host').split(' ').slice(0, 2).join(' ')
  const r = await api(c.base, 'POST', '/api/v1/agents', ops, { name: 'demo', hostKeys: [hostKey], version: 'test', labels: { env: 'ui-test' } })
  assert(r.status === 201, `register: HTTP ${r.status} ${JSON.stringify(r.body)}`)
  const wsUrl = c.base.replace(/^http/, 'ws') + '/api/v1/agents/demo/control'
  c.ws = new WebSocket(wsUrl, { headers: { Authorization: `Bearer ${r.body.credential}` } })
  c.ws.on('message', (m) => c.control.push(String(m)))
  c.ws.on('error', (e) => c.control.push('error: ' + e.message))
  await new Promise((res, rej) => {
    c.ws.once('open', res)
    c.ws.once('unexpected-response', (_q, resp) => rej(new Error(`control upgrade: HTTP ${resp.statusCode}`)))
    c.ws.once('error', rej)
  })
  c.ws.send(JSON.stringify({ type: 'hello', version: 'test', hostKeys: [hostKey] }))
  const alice = await devToken(c.base, 'alice', ['developers'])
  await waitFor(async () => (await api(c.base, 'GET', '/api/v1/agents/demo', alice)).body?.online === true, { what: 'agent demo online' })
})

t.step('alice signs in with the dev user picker and sees the development-mode banner', async (c) => {
  c.alice = await signedIn(c.browser, c.base, 'alice')
  const p = c.alice.page
  assert(await p.getByTestId('dev-banner').isVisible(), 'no development mode banner')
  assert((await p.getByTestId('whoami').innerText()).includes('alice'), 'header does not name alice')
  await shot(p, 'sessions-empty')
})

t.step('alice fills in a ci-debug request on agent demo; the form says approval by sre-leads is needed', async (c) => {
  const p = c.alice.page
  await p.getByRole('link', { name: 'New session' }).first().click()
  await p.getByRole('heading', { name: 'New debug session' }).waitFor()
  await p.getByRole('radio', { name: /CI job debug/ }).check()
  await p.locator('#ns-agent').selectOption('demo')
  const preview = await p.getByTestId('approval-preview').innerText()
  assert(/Approval needed/.test(preview) && preview.includes('sre-leads'), `approval preview: ${preview}`)
  await p.locator('#ns-reason').fill('short')
  await p.getByRole('button', { name: 'Request approval' }).click()
  await p.getByText('at least 10 characters').first().waitFor()
  await p.locator('#ns-reason').fill('The integration job hangs after the cache step')
  await p.locator('#ns-invite').fill('bob')
  await shot(p, 'new-session')
})

t.step('alice submits: the session is PendingApproval and she has no Approve button (self-approval impossible)', async (c) => {
  const p = c.alice.page
  await p.getByRole('button', { name: 'Request approval' }).click()
  await p.waitForURL(/\/debug-sessions\/ds-[0-9a-z]{10}$/)
  c.name = p.url().split('/').pop()
  await p.locator('.session-head [data-testid=state]').filter({ hasText: 'Pending approval' }).waitFor()
  await p.getByRole('button', { name: 'Withdraw…' }).waitFor()
  assert((await p.getByRole('button', { name: 'Approve' }).count()) === 0, 'alice sees Approve on her own request')
  const r = await api(c.base, 'POST', `/api/v1/debug-sessions/${c.name}/approve`, await c.alice.token(), {})
  assert(r.status === 403, `alice approving her own request: HTTP ${r.status}`)
})

t.step('bob (invited, developers) sees the request without an Approve button, and the API refuses his approve with 403', async (c) => {
  c.bob = await signedIn(c.browser, c.base, 'bob')
  const p = c.bob.page
  const row = p.locator(`tr[data-session=${c.name}]`)
  await row.waitFor()
  assert((await row.getByRole('button', { name: 'Approve' }).count()) === 0, 'bob sees Approve in the list')
  await p.goto(`/debug-sessions/${c.name}`)
  await p.locator('.session-head [data-testid=state]').waitFor()
  assert((await p.getByRole('button', { name: 'Approve' }).count()) === 0, 'bob sees Approve on the details page')
  const r = await api(c.base, 'POST', `/api/v1/debug-sessions/${c.name}/approve`, await c.bob.token(), {})
  assert(r.status === 403, `bob approving: HTTP ${r.status} ${JSON.stringify(r.body)}`)
  assert(typeof r.body?.error === 'string' && r.body.code === 'FORBIDDEN', `envelope: ${JSON.stringify(r.body)}`)
  await c.bob.ctx.close()
})

t.step('carol (sre-leads), in a second browser context, approves it from the sessions list', async (c) => {
  c.carol = await signedIn(c.browser, c.base, 'carol')
  const p = c.carol.page
  const row = p.locator(`tr[data-session=${c.name}]`)
  await row.waitFor()
  await row.getByRole('button', { name: 'Approve' }).click()
  await row.locator('[data-testid=state]').filter({ hasText: 'Active' }).waitFor({ timeout: 10_000 })
  await shot(p, 'sessions-approver')
})

t.step('alice sees it Active without reloading (polling), with a live countdown', async (c) => {
  const p = c.alice.page
  await p.locator('.session-head [data-testid=state]').filter({ hasText: 'Active' }).waitFor({ timeout: 10_000 })
  const t1 = await p.locator('.session-head .time-left').innerText()
  await p.waitForFunction((before) => document.querySelector('.session-head .time-left')?.innerText !== before, t1, { timeout: 10_000 })
  const t2 = await p.locator('.session-head .time-left').innerText()
  assert(t1 !== t2 && /\d+m \d\ds/.test(t2), `countdown did not move: ${t1} -> ${t2}`)
  assert((await p.getByTestId('approval').innerText()).includes('carol'), 'approval record does not name carol')
})

t.step('alice joins with her SSH public key and copies the attach command', async (c) => {
  const p = c.alice.page
  const key = sshPublicKey('alice@laptop')
  await p.locator('#join-key').fill(key)
  await p.getByRole('button', { name: /Join session|Get a new attach command/ }).click()
  const cmd = p.getByTestId('attach-command')
  await cmd.waitFor()
  const text = (await cmd.locator('pre').innerText()).trim()
  assert(text.startsWith('ssh ') && text.includes('ProxyCommand') && text.endsWith(c.name), `attach command: ${text}`)
  await cmd.getByRole('button', { name: /Copy/ }).click()
  await cmd.getByRole('button', { name: /Copy/ }).filter({ hasText: 'Copied' }).waitFor()
  const clip = await p.evaluate(() => navigator.clipboard.readText())
  assert(clip === text, `clipboard holds ${JSON.stringify(clip)}`)
  const kh = (await p.getByTestId('known-hosts').locator('pre').innerText()).trim()
  assert(kh.startsWith(c.name + ' ssh-ed25519 '), `known_hosts line: ${kh}`)
  const cli = (await p.getByTestId('cli-join').locator('pre').innerText()).trim()
  assert(cli === `airlock --server ${c.base} join ${c.name}`, `CLI line: ${cli}`)
  await p.getByText('owner').first().waitFor()
  await shot(p, 'session-details')
})

t.step('the attach command pins the host key itself; the page says where the known_hosts line goes', async (c) => {
  const p = c.alice.page
  const cmd = (await p.getByTestId('attach-command').locator('pre').innerText()).trim()
  const kh = (await p.getByTestId('known-hosts').locator('pre').innerText()).trim()
  assert(cmd.includes(`-o KnownHostsCommand='/bin/echo ${kh}'`), `command does not carry the pin: ${cmd}`)
  assert(cmd.includes('StrictHostKeyChecking=yes'), `command does not insist on the pin: ${cmd}`)
  const where = await p.getByTestId('known-hosts-where').innerText()
  assert(where.includes('~/.config/airlock/known_hosts') && where.includes('UserKnownHostsFile'),
    `no word on where the known_hosts line goes: ${where}`)
})

t.step('alice renews within the template limits; renewals left drops', async (c) => {
  const p = c.alice.page
  const before = (await api(c.base, 'GET', `/api/v1/debug-sessions/${c.name}`, await c.alice.token())).body
  await p.getByRole('button', { name: 'Renew…' }).click()
  const opts = await p.locator('.action-panel select option').evaluateAll((os) => os.map((o) => o.value))
  assert(opts.includes('30m') && !opts.includes('4h'), `renew choices: ${opts}`)
  await p.locator('.action-panel select').selectOption('30m')
  await p.locator('.action-panel').getByRole('button', { name: 'Renew' }).click()
  await p.getByTestId('renewals-left').filter({ hasText: /^2 of 3/ }).waitFor()
  const after = (await api(c.base, 'GET', `/api/v1/debug-sessions/${c.name}`, await c.alice.token())).body
  assert(Date.parse(after.status.expiresAt) - Date.parse(before.status.expiresAt) === 30 * 60_000, 'expiresAt did not move by 30m')
})

t.step('sessions list: row with template, agent online, requester, countdown, participants', async (c) => {
  const p = c.alice.page
  await p.getByRole('link', { name: 'Sessions' }).first().click()
  const row = p.locator(`tr[data-session=${c.name}]`)
  await row.waitFor()
  const text = await row.innerText()
  for (const want of ['ci-debug', 'demo', 'online', 'alice', 'Active']) assert(text.includes(want), `row lacks ${want}: ${text}`)
  await shot(p, 'sessions')
})

t.step('agents view lists demo and gives the CI snippet airlock snippet prints: the action, this server, a template', async (c) => {
  const p = c.alice.page
  await p.getByRole('link', { name: 'Agents' }).click()
  const row = p.locator('tr[data-agent=demo]')
  await row.waitFor()
  const text = await row.innerText()
  assert(text.includes('online') && text.includes('test') && text.includes('env=ui-test') && text.includes(c.name), `agent row: ${text}`)
  const pre = p.getByTestId('agent-snippet').locator('pre')
  await waitFor(async () => (await pre.innerText()).includes('uses: '), { what: 'the GitHub snippet' })
  const snip = await pre.innerText()
  for (const want of [`server: ${c.base}`, 'template: ci-debug', 'id-token: write', 'if: failure()']) {
    assert(snip.includes(want), `snippet lacks ${want}: ${snip}`)
  }
  // the page and the CLI say the same thing (both render GET /api/v1/snippets/{ci})
  const cli = (ci) => execFileSync(airlockBin, ['--server', c.base, 'snippet', ci, '--template', 'ci-debug'], {
    env: { PATH: process.env.PATH, HOME: fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-ui-cli-')), AIRLOCK_TOKEN: c.aliceToken },
  }).toString()
  c.aliceToken = await devToken(c.base, 'alice', ['developers'])
  assert(cli('github').trim() === snip.trim(), `airlock snippet github differs:\n${cli('github')}\n--- page:\n${snip}`)
  await p.getByRole('tab', { name: 'GitHub Actions' }).focus()
  await p.keyboard.press('ArrowRight')
  assert((await p.getByRole('tab', { selected: true }).innerText()) === 'GitLab CI', 'arrow key does not move between tabs')
  await waitFor(async () => (await pre.innerText()).includes('include:'), { what: 'the GitLab snippet' })
  assert((await pre.innerText()).trim() === cli('gitlab').trim(), `the GitLab snippet differs from airlock snippet gitlab: ${await pre.innerText()}`)
  await p.keyboard.press('ArrowLeft')
  await shot(p, 'agents')
})

t.step('a hostile reason is shown as text, no element is created', async (c) => {
  const tok = await c.alice.token()
  const r = await api(c.base, 'POST', '/api/v1/debug-sessions', tok, { template: 'sandbox', agent: 'demo', reason: XSS })
  assert(r.status === 201, `create: HTTP ${r.status} ${JSON.stringify(r.body)}`)
  c.xssName = r.body.name
  const p = c.alice.page
  await p.goto(`/debug-sessions/${c.xssName}`)
  const reason = p.getByTestId('reason')
  await reason.waitFor()
  assert((await reason.innerText()) === XSS, 'reason not shown verbatim')
  const imgs = await p.evaluate(() => document.querySelectorAll('img, [onerror]').length)
  const flag = await p.evaluate(() => window.__xss)
  assert(imgs === 0 && flag === undefined, `injected: ${imgs} elements, __xss=${flag}`)
  await api(c.base, 'POST', `/api/v1/debug-sessions/${c.xssName}/terminate`, tok, {})
})

t.step('at 375 px every main view fits the width', async (c) => {
  const m = await signedIn(c.browser, c.base, 'alice', { width: 375, height: 812 })
  const p = m.page
  await p.locator(`tr[data-session=${c.name}]`).waitFor()
  await noHorizontalScroll(p)
  await shot(p, 'sessions-375')
  await p.goto(`/debug-sessions/${c.name}`)
  await p.locator('.session-head [data-testid=state]').waitFor()
  // a new tab has no attach command yet: joining again gives a fresh ticket
  await p.locator('#join-key').fill(sshPublicKey('alice@phone'))
  await p.getByRole('button', { name: 'Get a new attach command' }).click()
  await p.getByTestId('attach-command').waitFor()
  await noHorizontalScroll(p)
  await shot(p, 'session-details-375')
  await p.goto('/debug-sessions/new')
  await p.getByRole('radio', { name: /CI job debug/ }).check()
  await noHorizontalScroll(p)
  await shot(p, 'new-session-375')
  await p.goto('/agents')
  await p.locator('tr[data-agent=demo]').waitFor()
  await noHorizontalScroll(p)
  await shot(p, 'agents-375')
  assert(m.errors.length === 0, `page errors: ${m.errors.join('; ')}`)
  await m.ctx.close()
})

t.step('alice terminates the session; it ends for carol too', async (c) => {
  const p = c.alice.page
  await p.goto(`/debug-sessions/${c.name}`)
  await p.getByRole('button', { name: 'Terminate…' }).click()
  await p.locator('.action-panel input').fill('found it')
  await p.getByRole('button', { name: 'Terminate session' }).click()
  await p.locator('.session-head [data-testid=state]').filter({ hasText: 'Terminated' }).waitFor()
  await p.getByTestId('timeline').getByText('alice ended the session').first().waitFor()
  assert((await p.getByTestId('attach-command').count()) === 0, 'attach command still shown after the end')
  await shot(p, 'session-terminated')
  // carol's list (Active, Pending, PendingApproval by default) drops it without a reload
  await c.carol.page.locator(`tr[data-session=${c.name}]`).waitFor({ state: 'detached', timeout: 10_000 })
})

t.step('no uncaught errors in any page', async (c) => {
  const all = [...c.alice.errors, ...c.carol.errors]
  assert(all.length === 0, all.join('; '))
})

async function before() {
  if (!fs.existsSync(bin)) throw new Error(`${bin} does not exist (set AIRLOCKD, or build it with make bin)`)
  if (!fs.existsSync(path.join(ROOT, 'frontend/dist/index.html'))) throw new Error('frontend/dist is not built')
  const server = await startAirlockd(bin)
  console.log(`# airlockd pid ${server.pid} on ${server.url} (log: ${path.relative(ROOT, OUT)}/airlockd.log)`)
  const browser = await launch()
  return { server, base: server.url, browser, control: [] }
}

async function after(c) {
  if (!c) return
  c.ws?.terminate()
  await c.browser?.close().catch(() => {})
  await c.server?.stop()
}

process.exitCode = (await t.run({ before, after })) ? 1 : 0
