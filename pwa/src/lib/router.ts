// Hash routes, so that the static server (and the service worker) only ever serve `/`:
//   #/                         home
//   #/journal/OWNER/NAME       a journal
//   #/canvas/OWNER/NAME        a canvas
//   #/privacy                  consents and the data export
import { useSyncExternalStore } from 'react'

export type Route =
  | { page: 'home' }
  | { page: 'privacy' }
  | { page: 'journal', doc: string, entry?: string }
  | { page: 'canvas', doc: string }

const subscribe = (fn: () => void) => {
  window.addEventListener('hashchange', fn)
  return () => window.removeEventListener('hashchange', fn)
}

export function parseRoute (hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent)
  if ((parts[0] === 'journal' || parts[0] === 'canvas') && parts.length >= 3) {
    const doc = `${parts[1]}/${parts[2]}`
    return parts[0] === 'journal' ? { page: 'journal', doc, entry: parts[3] } : { page: 'canvas', doc }
  }
  if (parts[0] === 'privacy') return { page: 'privacy' }
  return { page: 'home' }
}

export function useRoute (): Route {
  const hash = useSyncExternalStore(subscribe, () => window.location.hash)
  return parseRoute(hash)
}

export function href (route: Route): string {
  if (route.page === 'home') return '#/'
  if (route.page === 'privacy') return '#/privacy'
  const [owner, name] = route.doc.split('/')
  const base = `#/${route.page}/${encodeURIComponent(owner)}/${encodeURIComponent(name)}`
  return route.page === 'journal' && route.entry ? `${base}/${encodeURIComponent(route.entry)}` : base
}

export function navigate (route: Route, { replace = false } = {}): void {
  const target = href(route)
  if (replace) window.location.replace(target)
  else window.location.hash = target
}
