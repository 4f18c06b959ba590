import { onBeforeUnmount, onMounted } from 'vue'

export const POLL_MS = 3000

/**
 * Run `fn` now and then every `ms` after each run finishes (never two at once), while the
 * component is mounted. `refresh()` runs it at once (after an action).
 */
export function usePolling(fn: () => Promise<void>, ms = POLL_MS) {
  let timer: ReturnType<typeof setTimeout> | null = null
  let stopped = false
  let running: Promise<void> | null = null

  async function tick() {
    if (timer) clearTimeout(timer)
    timer = null
    if (running) return running
    running = fn()
      .catch(() => {})
      .finally(() => {
        running = null
        if (!stopped) timer = setTimeout(tick, ms)
      })
    return running
  }
  onMounted(() => {
    stopped = false
    tick()
  })
  onBeforeUnmount(() => {
    stopped = true
    if (timer) clearTimeout(timer)
  })
  return {
    refresh: async () => {
      if (running) await running
      return tick()
    },
  }
}
