import { vi } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { createMemoryHistory, createRouter } from 'vue-router'
import type { Component } from 'vue'
import { auth } from '../src/auth'
import type { Me } from '../src/api/types'

export type Handler = (body: unknown, url: URL) => [number, unknown] | unknown
export interface Call {
  method: string
  path: string
  body: unknown
}

/** Replace fetch with a table of "METHOD /path" handlers; returns the list of calls made. */
export function stubApi(routes: Record<string, Handler>): Call[] {
  const calls: Call[] = []
  vi.stubGlobal(
    'fetch',
    vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
      const url = new URL(String(input), 'http://airlock.test')
      const method = init?.method ?? 'GET'
      const body = init?.body ? JSON.parse(String(init.body)) : undefined
      calls.push({ method, path: url.pathname, body })
      const h = routes[`${method} ${url.pathname}`]
      if (!h) return json(404, { error: `no stub for ${method} ${url.pathname}`, code: 'NOT_FOUND' })
      const r = h(body, url)
      const [status, payload] = Array.isArray(r) && typeof r[0] === 'number' && r.length === 2 ? (r as [number, unknown]) : [200, r]
      return json(status, payload)
    }),
  )
  return calls
}

function json(status: number, body: unknown) {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })
}

export function signIn(me: Partial<Me> = {}) {
  auth.config = { version: 'test', dev: true, publicUrl: 'https://airlock.example.com', oidc: null }
  auth.token = 'test-token'
  auth.expiresAt = Date.now() + 3600_000
  auth.me = { user: 'alice', email: 'alice@example.com', displayName: 'Alice', groups: ['developers'], admin: false, ...me }
}

/** Mount a view at `path` under a memory router whose one route is `pattern`. */
export async function mountView(view: Component, pattern: string, path: string) {
  const router = createRouter({
    history: createMemoryHistory(),
    routes: [
      { path: pattern, component: view },
      { path: '/:rest(.*)*', component: { template: '<div>elsewhere</div>' } },
    ],
  })
  await router.push(path)
  await router.isReady()
  const wrapper = mount({ template: '<RouterView />' }, { global: { plugins: [router] }, attachTo: document.body })
  await settle()
  return { wrapper, router }
}

export async function settle() {
  for (let i = 0; i < 5; i++) {
    await flushPromises()
    await new Promise((r) => setTimeout(r, 0))
  }
}
