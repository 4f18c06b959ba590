// Durations as airlock writes them: 90s, 30m, 1h30m, 2d, 1d12h (DESIGN.md section 3).
const UNITS: Record<string, number> = { d: 86400, h: 3600, m: 60, s: 1 }
const ORDER = ['d', 'h', 'm', 's']
export const MAX_DURATION_S = 365 * 86400

/** Seconds, or null when the text is not a valid positive duration. */
export function parseDuration(text: string | null | undefined): number | null {
  if (!text) return null
  const s = text.trim()
  if (!/^(\d+[dhms])+$/.test(s)) return null
  let total = 0
  let last = -1
  for (const m of s.matchAll(/(\d+)([dhms])/g)) {
    const idx = ORDER.indexOf(m[2])
    if (idx <= last) return null // units in order, each once
    last = idx
    total += Number(m[1]) * UNITS[m[2]]
  }
  if (total <= 0 || total > MAX_DURATION_S) return null
  return total
}

/** Canonical short form: 5400 -> "1h30m". */
export function formatDuration(seconds: number): string {
  let rest = Math.max(0, Math.round(seconds))
  if (rest === 0) return '0s'
  let out = ''
  for (const u of ORDER) {
    const n = Math.floor(rest / UNITS[u])
    if (n > 0) {
      out += `${n}${u}`
      rest -= n * UNITS[u]
    }
  }
  return out
}

/** Human countdown: "1h 05m", "4m 09s", "12s". */
export function formatRemaining(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds))
  const d = Math.floor(s / 86400)
  const h = Math.floor((s % 86400) / 3600)
  const m = Math.floor((s % 3600) / 60)
  const sec = s % 60
  const p = (n: number) => String(n).padStart(2, '0')
  if (d > 0) return `${d}d ${h}h`
  if (h > 0) return `${h}h ${p(m)}m`
  if (m > 0) return `${m}m ${p(sec)}s`
  return `${sec}s`
}

/** Readable label for a duration string: "1h30m" -> "1 h 30 min". */
export function durationLabel(seconds: number): string {
  const parts: string[] = []
  let rest = seconds
  const names: [number, string][] = [
    [86400, 'd'],
    [3600, 'h'],
    [60, 'min'],
    [1, 's'],
  ]
  for (const [n, name] of names) {
    const k = Math.floor(rest / n)
    if (k) {
      parts.push(`${k} ${name}`)
      rest -= k * n
    }
  }
  return parts.join(' ') || '0 s'
}
