// Shared pieces of the Playwright UI tests: Debian's chromium through playwright-core (no browser
// download), a tiny sequential test harness, servers started and stopped by PID, screenshots.
import { chromium } from 'playwright-core'
import { spawn, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
export const OUT = path.join(ROOT, 'tests/out/ui')
fs.mkdirSync(OUT, { recursive: true })

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium'
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

/**
 * Start chromium. Playwright gives every launch a fresh, temporary --user-data-dir of its own
 * (it refuses one in args), removed when the browser closes; each newContext() is a further
 * isolated profile (cookies, storage) inside it.
 */
export async function launch() {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 })
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

// A plain timer: tests wait for events (waitFor, Playwright's waitFor); sleep is only a poll interval.
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

export async function waitFor(fn, { timeout = 10_000, interval = 100, what = 'condition' } = {}) {
  const end = Date.now() + timeout
  let last
  while (Date.now() < end) {
    try {
      const v = await fn()
      if (v) return v
    } catch (e) {
      last = e
    }
    await sleep(interval) // the poll interval of this wait for fn
  }
  throw new Error(`timed out waiting for ${what}${last ? ': ' + last.message : ''}`)
}

/** Start a process; returns {pid, url, stop()}. Killed by PID only. */
function startProcess(cmd, args, { logName, readyUrl, timeout = 20_000 }) {
  const log = fs.openSync(path.join(OUT, logName), 'w')
  const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', log, log] })
  let exited = null
  child.on('exit', (code, sig) => (exited = { code, sig }))
  const stop = async () => {
    if (exited) return
    child.kill('SIGTERM')
    for (let i = 0; i < 50 && !exited; i++) await sleep(100) // polls for the exit, 5 s deadline
    if (!exited) child.kill('SIGKILL')
  }
  const ready = waitFor(
    async () => {
      if (exited) throw new Error(`${cmd} exited (${JSON.stringify(exited)}); see tests/out/ui/${logName}`)
      const r = await fetch(readyUrl).catch(() => null)
      return r && r.status === 200
    },
    { timeout, what: `${readyUrl} == 200` },
  ).catch(async (e) => {
    await stop()
    throw e
  })
  return { pid: child.pid, stop, ready }
}

export async function startMock(extraArgs = [], { port = null, logName = 'mock-api.log' } = {}) {
  port = port ?? (await freePort())
  const url = `http://127.0.0.1:${port}`
  const p = startProcess(process.execPath, ['mock-api/server.mjs', '--port', String(port), ...extraArgs], { logName, readyUrl: url + '/readyz' })
  await p.ready
  return { ...p, url }
}

export async function startAirlockd(bin, { config = 'docs/examples/airlock.yaml' } = {}) {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-ui-'))
  const p = startProcess(
    bin,
    ['--dev', '--config', config, '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`, '--ui-dir', 'frontend/dist'],
    { logName: 'airlockd.log', readyUrl: url + '/readyz' },
  )
  await p.ready
  const stop = async () => {
    await p.stop()
    fs.rmSync(dataDir, { recursive: true, force: true })
  }
  return { ...p, stop, url, dataDir }
}

/** A fresh ed25519 public key ("ssh-ed25519 AAAA… comment"). */
export function sshPublicKey(comment = 'ui-test') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-key-'))
  try {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path.join(dir, 'k')])
    return fs.readFileSync(path.join(dir, 'k.pub'), 'utf8').trim()
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** JSON API call; returns {status, body}. */
export async function api(base, method, p, token, body) {
  const headers = { Accept: 'application/json' }
  if (token) headers.Authorization = `Bearer ${token}`
  if (body !== undefined) headers['Content-Type'] = 'application/json'
  const r = await fetch(base + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await r.text()
  let json
  try {
    json = text ? JSON.parse(text) : undefined
  } catch {
    json = text
  }
  return { status: r.status, body: json }
}

export async function devToken(base, user, groups, email = `${user}@example.com`) {
  const r = await api(base, 'POST', '/api/v1/dev/token', null, { user, email, groups })
  if (r.status !== 200) throw new Error(`dev token for ${user}: HTTP ${r.status} ${JSON.stringify(r.body)}`)
  return r.body.token
}

/** A signed-in browser context for a sample user (through the UI's quick-pick buttons). */
export async function signedIn(browser, base, user, { width = 1280, height = 900 } = {}) {
  const ctx = await browser.newContext({ viewport: { width, height }, baseURL: base })
  await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base })
  const page = await ctx.newPage()
  const errors = []
  page.on('pageerror', (e) => errors.push(e.message))
  page.on('dialog', (d) => {
    errors.push(`unexpected dialog: ${d.message()}`)
    d.dismiss().catch(() => {})
  })
  await page.goto('/')
  await page.waitForURL(/\/login/)
  await page.click(`[data-testid=pick-${user}]`)
  await page.waitForURL(/\/debug-sessions/)
  await page.getByRole('heading', { name: 'Debug sessions' }).waitFor()
  /** The bearer the UI holds (for API calls "as this user"). */
  const token = async () => page.evaluate(() => JSON.parse(sessionStorage.getItem('airlock.dev') || '{}').token)
  return { ctx, page, errors, token }
}

export async function shot(page, name) {
  const file = path.join(OUT, `${name}.png`)
  await page.screenshot({ path: file, fullPage: true })
  return file
}

/** Assert the page does not scroll sideways (usable at 375 px). */
export async function noHorizontalScroll(page) {
  const w = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth])
  if (w[0] > w[1] + 1) {
    const wide = await page.evaluate(() =>
      [...document.querySelectorAll('body *')]
        .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
        .slice(0, 5)
        .map((e) => `${e.tagName.toLowerCase()}.${[...e.classList].join('.')} (${Math.round(e.getBoundingClientRect().right)} px)`),
    )
    throw new Error(`page is ${w[0]} px wide in a ${w[1]} px window; too wide: ${wide.join(', ')}`)
  }
}

export function assert(cond, msg) {
  if (!cond) throw new Error(msg)
}

// ---- a tiny sequential harness ------------------------------------------------------------

/**
 * Steps run in order. A failed step marks the rest of a `dependent` suite as skipped (they would
 * only fail for the same reason). Results go to tests/out/ui/<suite>.result.json for tests/ui/run.
 */
export function suite(name, { dependent = false } = {}) {
  const steps = []
  const api = {
    step: (title, fn) => steps.push({ title, fn }),
    async run({ before, after } = {}) {
      let passed = 0
      let failed = 0
      let skipped = 0
      let broken = false
      const t0 = Date.now()
      console.log(`# ${name}`)
      let ctx
      try {
        ctx = before ? await before() : undefined
      } catch (e) {
        console.log(`not ok - setup: ${e.message}`)
        failed++
        broken = true
      }
      for (const s of steps) {
        if (broken) {
          console.log(`skip - ${s.title}`)
          skipped++
          continue
        }
        const st = Date.now()
        try {
          await s.fn(ctx)
          passed++
          console.log(`ok - ${s.title} (${Date.now() - st} ms)`)
        } catch (e) {
          failed++
          console.log(`not ok - ${s.title}: ${String(e?.message ?? e).split('\n').slice(0, 6).join('\n    ')}`)
          if (dependent) broken = true
        }
      }
      try {
        if (after) await after(ctx)
      } catch (e) {
        console.log(`# teardown failed: ${e.message}`)
      }
      console.log(`# ${name}: ${passed} passed, ${failed} failed, ${skipped} skipped (${((Date.now() - t0) / 1000).toFixed(1)} s)`)
      fs.writeFileSync(path.join(OUT, `${name}.result.json`), JSON.stringify({ passed, failed, skipped }))
      return failed
    },
  }
  return api
}
