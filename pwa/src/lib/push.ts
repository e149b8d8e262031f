// Web Push in the page (docs/push.md, DESIGN.md §1.12): subscribing this browser with the
// daemon's VAPID key and handing the subscription to the daemon, and the reverse.
//   GET /v1/push/key -> {public_key}    POST /v1/push/subscriptions (PushSubscription JSON)
//   DELETE /v1/push/subscriptions?endpoint=…
// Permission is asked only from `enablePush`, which the "Notify me" switch calls from its tap:
// iOS (an installed web app) refuses a permission prompt outside a user gesture, and asking on
// page load is how sites teach people to click "Block".
import { loadSession, saveSession, tokenProvider } from './auth'

const token = tokenProvider(loadSession, saveSession)
const base = () => window.location.pathname.replace(/[^/]*$/, '')
// Who the daemon holds this browser's endpoint for ("principal endpoint"), so that a changed
// endpoint, or another person signed in on this browser, is posted again on start: the
// notifications then follow whoever uses the device (the daemon moves the endpoint to them).
const POSTED = 'syncd.push.posted'
const postedKey = (endpoint: string) => `${loadSession()?.name ?? ''} ${endpoint}`
// Where the service worker finds a token for `pushsubscriptionchange` (it has no localStorage).
const SW_STORE = 'syncd-push'
const SW_TOKEN = './push-token'

export type PushState = 'unsupported' | 'denied' | 'off' | 'on'

export class PushError extends Error {}

export function pushSupported (): boolean {
  return typeof window !== 'undefined' && 'serviceWorker' in navigator &&
    'PushManager' in window && 'Notification' in window
}

async function registration (): Promise<ServiceWorkerRegistration> {
  const found = await navigator.serviceWorker.getRegistration()
  if (!found) throw new PushError('Notifications need the app to be installed by its service worker: reload the page once online.')
  return await navigator.serviceWorker.ready
}

async function api (path: string, init: RequestInit = {}): Promise<Response> {
  let response: Response
  try {
    response = await fetch(base() + path, {
      ...init,
      headers: { authorization: `Bearer ${await token()}`, ...init.headers }
    })
  } catch {
    throw new PushError('The server cannot be reached: notifications can be turned on once online.')
  }
  if (!response.ok) {
    const body = await response.json().catch(() => ({})) as { message?: string }
    throw new PushError(body.message ?? `The server refused (${response.status}).`)
  }
  return response
}

function keyBytes (base64url: string): Uint8Array<ArrayBuffer> {
  const text = atob(base64url.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - base64url.length % 4) % 4))
  const bytes = new Uint8Array(new ArrayBuffer(text.length))
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i)
  return bytes
}

/** Give the service worker the current token, for re-subscribing while no page is open. */
async function shareTokenWithWorker (): Promise<void> {
  if (!('caches' in window)) return
  const cache = await caches.open(SW_STORE)
  await cache.put(SW_TOKEN, new Response(await token()))
}

async function post (subscription: PushSubscription): Promise<void> {
  await api('v1/push/subscriptions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(subscription.toJSON())
  })
  localStorage.setItem(POSTED, postedKey(subscription.endpoint))
  await shareTokenWithWorker().catch(() => {})
}

export async function pushState (): Promise<PushState> {
  if (!pushSupported()) return 'unsupported'
  if (Notification.permission === 'denied') return 'denied'
  const found = await navigator.serviceWorker.getRegistration()
  const subscription = found ? await found.pushManager.getSubscription() : null
  return subscription && Notification.permission === 'granted' ? 'on' : 'off'
}

/** Turn notifications on: call it from a tap (see above). */
export async function enablePush (): Promise<void> {
  if (!pushSupported()) throw new PushError('This browser cannot show notifications from a web app.')
  // First, before any other await: the prompt must stay inside the user's gesture.
  const permission = await Notification.requestPermission()
  if (permission !== 'granted') {
    throw new PushError(permission === 'denied'
      ? 'Notifications are blocked for this site: allow them in the browser settings.'
      : 'Notifications stay off: the browser did not allow them.')
  }
  const reg = await registration()
  const { public_key: key } = await (await api('v1/push/key')).json() as { public_key: string }
  let subscription = await reg.pushManager.getSubscription()
  if (subscription && !sameKey(subscription, key)) {
    await subscription.unsubscribe() // made with another server key: pushes would be refused
    subscription = null
  }
  subscription ??= await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(key) })
  await post(subscription)
}

function sameKey (subscription: PushSubscription, key: string): boolean {
  const current = subscription.options?.applicationServerKey
  if (!current) return true // unknown: keep it
  const a = new Uint8Array(current)
  const b = keyBytes(key)
  return a.length === b.length && a.every((v, i) => v === b[i])
}

/** Turn notifications off: the daemon forgets this browser, the browser its subscription. */
export async function disablePush (): Promise<void> {
  const found = await navigator.serviceWorker.getRegistration()
  const subscription = found ? await found.pushManager.getSubscription() : null
  if (!subscription) return
  await api(`v1/push/subscriptions?endpoint=${encodeURIComponent(subscription.endpoint)}`, { method: 'DELETE' })
  localStorage.removeItem(POSTED)
  await subscription.unsubscribe()
}

/** On start: if the browser's subscription changed while the app was closed (the service
 * worker could not post it, e.g. its token had expired), or someone else signed in, post it. */
export async function resyncPush (): Promise<void> {
  if (!pushSupported() || Notification.permission !== 'granted') return
  const found = await navigator.serviceWorker.getRegistration()
  const subscription = found ? await found.pushManager.getSubscription() : null
  if (!subscription) return
  if (localStorage.getItem(POSTED) !== postedKey(subscription.endpoint)) await post(subscription)
  else await shareTokenWithWorker()
}

// A notification clicked while the app was open in a window the service worker could not
// navigate: it asks the page to go there (same origin only).
if (typeof navigator !== 'undefined' && 'serviceWorker' in navigator) {
  navigator.serviceWorker.addEventListener('message', (event: MessageEvent) => {
    const data = event.data as { type?: string, url?: string } | null
    if (data?.type !== 'syncd-open' || typeof data.url !== 'string') return
    const url = new URL(data.url, window.location.href)
    if (url.origin === window.location.origin) window.location.assign(url.href)
  })
}
