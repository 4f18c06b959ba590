import { api } from '../auth'
import type { Template } from '../api/types'

// Templates change only with the server's configuration; one fetch per name per sign-in.
const cache = new Map<string, Promise<Template | null>>()

/** The template, or null when the caller may not read it (the server still decides everything). */
export function templateFor(name: string): Promise<Template | null> {
  let p = cache.get(name)
  if (!p) {
    p = api.getTemplate(name).catch(() => {
      cache.delete(name) // ask again next time
      return null
    })
    cache.set(name, p)
  }
  return p
}

export function rememberTemplates(ts: Template[]) {
  for (const t of ts) cache.set(t.name, Promise.resolve(t))
}

export function clearTemplateCache() {
  cache.clear()
}
