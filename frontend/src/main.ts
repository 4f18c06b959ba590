import { createApp, h } from 'vue'
import './style.css'
import App from './App.vue'
import { completeSilentRenew, loadConfig, restore, setSignedOutHandler } from './auth'
import { router } from './router'
import { errorMessage } from './api/client'
import { reportError } from './errors'

/** Shown instead of the app when the server's configuration cannot be read. */
function bootFailure(message: string) {
  const el = document.getElementById('app')!
  createApp({
    render: () =>
      h('main', { class: 'container boot-error' }, [
        h('h1', 'airlock is unavailable'),
        h('div', { class: 'flash flash-error', role: 'alert' }, 'Could not load the configuration from the server: ' + message),
        h('button', { class: 'btn', type: 'button', onClick: () => window.location.reload() }, 'Try again'),
      ]),
  }).mount(el)
}

async function boot() {
  try {
    await loadConfig()
  } catch (e) {
    bootFailure(errorMessage(e))
    return
  }
  if (window.location.pathname === '/auth/silent') {
    // hidden iframe of an OIDC silent renewal: hand the answer to the parent and stop
    await completeSilentRenew().catch(() => {})
    return
  }
  if (window.location.pathname !== '/auth/callback') await restore()

  setSignedOutHandler(() => {
    const here = router.currentRoute.value
    if (!here.meta.public) router.push({ path: '/login', query: { next: here.fullPath } })
  })
  const app = createApp(App)
  app.config.errorHandler = (err) => reportError(err)
  window.addEventListener('unhandledrejection', (ev) => reportError(ev.reason))
  app.use(router)
  await router.isReady().catch(() => {})
  app.mount('#app')
}

boot()
