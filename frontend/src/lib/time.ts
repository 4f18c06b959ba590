import { ref } from 'vue'

/** Wall clock in ms, updated every second while anything uses it (live countdowns). */
export const now = ref(Date.now())
let timer: ReturnType<typeof setInterval> | null = null
let users = 0
export function useNow() {
  users++
  if (!timer) {
    now.value = Date.now() // not the time of the last tick, which may be long ago
    timer = setInterval(() => (now.value = Date.now()), 1000)
  }
  return {
    now,
    stop() {
      users = Math.max(0, users - 1)
      if (users === 0 && timer) {
        clearInterval(timer)
        timer = null
      }
    },
  }
}

export function parseTime(t: string | null | undefined): number | null {
  if (!t) return null
  const ms = Date.parse(t)
  return Number.isNaN(ms) ? null : ms
}

/** The one format for a moment everywhere in the UI: UTC, with the zone shown ("2026-12-05 07:20:03 UTC"). */
export function formatTime(t: string | null | undefined): string {
  const ms = parseTime(t)
  if (ms === null) return '—'
  const d = new Date(ms)
  const p = (n: number) => String(n).padStart(2, '0')
  return `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} UTC`
}

export function relativeTime(t: string | null | undefined, nowMs = Date.now()): string {
  const ms = parseTime(t)
  if (ms === null) return 'never'
  const s = Math.round((nowMs - ms) / 1000)
  if (s < 5) return 'just now'
  if (s < 60) return `${s} s ago`
  if (s < 3600) return `${Math.floor(s / 60)} min ago`
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`
  return `${Math.floor(s / 86400)} d ago`
}
