import { createRouter, createWebHistory, type RouteLocationNormalized } from 'vue-router'
import { ApiError } from './api/client'
import { auth, loadMe } from './auth'
import SessionsView from './views/SessionsView.vue'
import LoginView from './views/LoginView.vue'

export const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: '/', redirect: '/debug-sessions' },
    { path: '/login', component: LoginView, meta: { public: true, title: 'Sign in' } },
    { path: '/auth/callback', component: () => import('./views/CallbackView.vue'), meta: { public: true, title: 'Signing in' } },
    { path: '/debug-sessions', component: SessionsView, meta: { title: 'Sessions' } },
    { path: '/debug-sessions/new', component: () => import('./views/NewSessionView.vue'), meta: { title: 'New session' } },
    { path: '/debug-sessions/:name', component: () => import('./views/SessionView.vue'), meta: { title: 'Session' } },
    { path: '/agents', component: () => import('./views/AgentsView.vue'), meta: { title: 'Agents' } },
    { path: '/:rest(.*)*', component: () => import('./views/NotFoundView.vue'), meta: { public: true, title: 'Not found' } },
  ],
})

router.beforeEach(async (to: RouteLocationNormalized) => {
  if (to.meta.public) return true
  if (!auth.token) return { path: '/login', query: { next: to.fullPath } }
  if (!auth.me) {
    try {
      await loadMe()
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return { path: '/login', query: { next: to.fullPath } }
      // any other failure: let the page load and show its own error
    }
  }
  return true
})

router.afterEach((to) => {
  const t = to.meta.title
  document.title = typeof t === 'string' ? `${t} · airlock` : 'airlock'
})

// A failed lazy chunk (after a redeploy) would leave the page empty: reload once instead.
router.onError((err, to) => {
  if (/dynamically imported module|Importing a module script failed/i.test(String(err?.message))) {
    if (!sessionStorage.getItem('airlock.reloaded')) {
      sessionStorage.setItem('airlock.reloaded', '1')
      window.location.assign(to.fullPath)
    }
  }
})
