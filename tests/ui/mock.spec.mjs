// The UI against mock-api (fixtures in every state): keyboard sign-in, filters, error and empty
// states, XSS in a real browser, and screenshots of the views with varied data.
import path from 'node:path'
import fs from 'node:fs'
import { ROOT, api, assert, launch, noHorizontalScroll, shot, signedIn, startMock, suite } from './lib.mjs'

const t = suite('ui-mock')
const XSS = '<img src=x onerror="window.__xss=1">'

t.step('keyboard only: Tab to a quick-pick user and press Enter to sign in', async (c) => {
  const ctx = await c.browser.newContext({ viewport: { width: 1280, height: 900 }, baseURL: c.base })
  const p = await ctx.newPage()
  await p.goto('/agents')
  await p.waitForURL(/\/login\?next=(%2F|\/)agents/)
  await p.getByTestId('dev-banner').waitFor()
  await shot(p, 'mock-login')
  let focused = ''
  for (let i = 0; i < 20 && focused !== 'pick-dave'; i++) {
    await p.keyboard.press('Tab')
    focused = await p.evaluate(() => document.activeElement?.getAttribute('data-testid') ?? '')
  }
  assert(focused === 'pick-dave', 'could not reach the quick-pick buttons with Tab')
  await p.keyboard.press('Enter')
  await p.waitForURL(/\/agents$/)
  await p.getByTestId('whoami').filter({ hasText: 'dave' }).waitFor()
  await ctx.close()
})

t.step('sessions list: default filters, every state on demand, search, mine', async (c) => {
  c.alice = await signedIn(c.browser, c.base, 'alice')
  const p = c.alice.page
  const rows = p.locator('tbody tr')
  await rows.first().waitFor()
  const states = async () => (await p.locator('tbody [data-testid=state]').allInnerTexts()).sort()
  assert(JSON.stringify(await states()) === JSON.stringify(['Active', 'Pending']), `default states: ${await states()}`)
  for (const s of ['Expired', 'Terminated', 'Failed']) await p.getByRole('checkbox', { name: s }).check()
  await p.locator('tbody [data-testid=state]', { hasText: 'Failed' }).waitFor()
  await shot(p, 'mock-sessions-all-states')
  await p.getByRole('searchbox').fill('packaging')
  await p.waitForFunction(() => document.querySelectorAll('tbody tr').length === 1)
  await p.getByRole('searchbox').fill('')
  assert(p.url().includes('state=') , 'filters are not kept in the URL')
  await p.reload()
  await p.locator('tbody [data-testid=state]', { hasText: 'Expired' }).waitFor()
})

t.step('API errors appear in plain words, never as a blank page', async (c) => {
  const p = c.alice.page
  await p.route('**/api/v1/debug-sessions?**', (r) =>
    r.fulfill({ status: 500, contentType: 'application/json', body: JSON.stringify({ error: 'database is locked', code: 'INTERNAL_ERROR', details: null }) }),
  )
  await p.goto('/debug-sessions')
  await p.getByRole('alert').filter({ hasText: 'database is locked' }).waitFor()
  await shot(p, 'mock-error')
  await p.unroute('**/api/v1/debug-sessions?**')
  await p.getByRole('button', { name: 'Try again' }).click()
  await p.locator('tbody tr').first().waitFor()
  await p.goto('/debug-sessions/ds-zzzzzzzzzz')
  await p.getByRole('heading', { name: 'Session not found' }).waitFor()
  await p.goto('/no/such/page')
  await p.getByRole('heading', { name: 'Page not found' }).waitFor()
})

t.step('server unreachable at start: an error page with a retry button', async (c) => {
  const ctx = await c.browser.newContext({ baseURL: c.base })
  const p = await ctx.newPage()
  await p.route('**/api/v1/config', (r) => r.abort('connectionrefused'))
  await p.goto('/')
  await p.getByRole('alert').filter({ hasText: /Cannot reach the airlock server/ }).waitFor()
  await p.getByRole('button', { name: 'Try again' }).waitFor()
  await ctx.close()
})

t.step('a hostile reason renders as text in a real browser', async (c) => {
  const r = await api(c.base, 'POST', '/api/v1/debug-sessions', await c.alice.token(), { template: 'sandbox', agent: 'demo', reason: XSS })
  assert(r.status === 201, `create: ${r.status}`)
  const p = c.alice.page
  await p.goto(`/debug-sessions/${r.body.name}`)
  await p.getByTestId('reason').filter({ hasText: XSS }).waitFor()
  const n = await p.evaluate(() => document.querySelectorAll('img, [onerror]').length)
  assert(n === 0 && (await p.evaluate(() => window.__xss)) === undefined, 'markup from the API was rendered')
})

t.step('details of an active session with participants and an approval', async (c) => {
  const p = c.alice.page
  await p.goto('/debug-sessions/ds-act1vea2b3')
  await p.getByTestId('timeline').waitFor()
  await shot(p, 'mock-session-details')
})

t.step('carol rejects with a mandatory reason', async (c) => {
  const carol = await signedIn(c.browser, c.base, 'carol')
  const p = carol.page
  const row = p.locator('tr[data-session=ds-pendapr4k7]')
  await row.getByRole('button', { name: 'Reject…' }).click()
  await row.getByRole('button', { name: 'Reject request' }).click()
  await row.getByRole('alert').filter({ hasText: 'reason is required' }).waitFor()
  await shot(p, 'mock-reject-reason')
  await row.getByRole('textbox').fill('Please use the sandbox template')
  await row.getByRole('button', { name: 'Reject request' }).click()
  await row.waitFor({ state: 'detached' }) // Terminated: not in the default filter
  await carol.ctx.close()
})

t.step('new session and agents views with fixtures; 375 px', async (c) => {
  const p = c.alice.page
  await p.goto('/debug-sessions/new')
  await p.getByRole('radio', { name: /CI job debug/ }).check()
  await p.locator('#ns-agent').selectOption('demo')
  await shot(p, 'mock-new-session')
  await p.goto('/agents')
  await p.locator('tr[data-agent="gh/acme/web/4242-1"]').waitFor()
  await shot(p, 'mock-agents')
  const m = await signedIn(c.browser, c.base, 'alice', { width: 375, height: 812 })
  for (const [url, name] of [['/debug-sessions', 'mock-sessions-375'], ['/debug-sessions/ds-act1vea2b3', 'mock-session-details-375'], ['/agents', 'mock-agents-375']]) {
    await m.page.goto(url)
    await m.page.locator('tbody tr, [data-testid=timeline]').first().waitFor()
    await noHorizontalScroll(m.page)
    await shot(m.page, name)
  }
  await m.ctx.close()
  assert(c.alice.errors.length === 0, c.alice.errors.join('; '))
})

async function before() {
  if (!fs.existsSync(path.join(ROOT, 'frontend/dist/index.html'))) throw new Error('frontend/dist is not built')
  const mock = await startMock()
  console.log(`# mock-api pid ${mock.pid} on ${mock.url}`)
  return { mock, base: mock.url, browser: await launch() }
}

async function after(c) {
  if (!c) return
  await c.browser?.close().catch(() => {})
  await c.mock?.stop()
}

process.exitCode = (await t.run({ before, after })) ? 1 : 0
