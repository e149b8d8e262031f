// Signing in for the demo: the daemon's development login (`syncd serve --dev-login`):
//   POST /v1/dev/login {"name": "alice"} -> {"token", "sub", "expires_at"}
// or a token pasted by hand (production deployments hand tokens out from their own identity
// system). The session is kept in localStorage so the app starts signed in, offline too.

export interface Session {
  name: string
  token: string
  /** ISO 8601, or null when unknown (a pasted token without exp). */
  expiresAt: string | null
  /** 'dev': the token can be renewed through the dev login; 'pasted': it cannot. */
  source: 'dev' | 'pasted'
}

const KEY = 'syncd.session'

export function loadSession (): Session | null {
  try {
    const raw = localStorage.getItem(KEY)
    const session = raw ? JSON.parse(raw) as Session : null
    return session && typeof session.token === 'string' && typeof session.name === 'string' ? session : null
  } catch {
    return null
  }
}

export function saveSession (session: Session | null): void {
  if (session) localStorage.setItem(KEY, JSON.stringify(session))
  else localStorage.removeItem(KEY)
}

export class SignInError extends Error {
  constructor (message: string, readonly unavailable = false) {
    super(message)
  }
}

export async function devLogin (name: string): Promise<Session> {
  let response: Response
  try {
    response = await fetch('./v1/dev/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name })
    })
  } catch {
    throw new SignInError('The server cannot be reached. Signing in needs a connection once.')
  }
  if (response.status === 404 || response.status === 405) {
    throw new SignInError('This server has no development login (start it with --dev-login), paste a token instead.', true)
  }
  const body = await response.json().catch(() => ({}))
  if (!response.ok) throw new SignInError(body.message ?? `Sign-in failed (${response.status})`)
  return { name: body.sub, token: body.token, expiresAt: body.expires_at ?? null, source: 'dev' }
}

/** A session from a token pasted by hand (its `sub` and `exp` are read, not verified). */
export function pastedSession (token: string): Session {
  const claims = decodeClaims(token.trim())
  if (!claims || typeof claims.sub !== 'string') throw new SignInError('That does not look like a syncd token.')
  const expiresAt = typeof claims.exp === 'number' ? new Date(claims.exp * 1000).toISOString() : null
  return { name: claims.sub, token: token.trim(), expiresAt, source: 'pasted' }
}

export function decodeClaims (token: string): Record<string, unknown> | null {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')
    const json = decodeURIComponent(escape(atob(part.padEnd(part.length + (4 - part.length % 4) % 4, '='))))
    return JSON.parse(json)
  } catch {
    return null
  }
}

/**
 * The token callback handed to the SDK: the stored token while it has more than a minute left,
 * else a fresh one from the dev login (when that is where it came from).
 */
export function tokenProvider (get: () => Session | null, set: (s: Session) => void): () => Promise<string> {
  return async () => {
    const session = get()
    if (!session) throw new Error('signed out')
    const left = session.expiresAt ? Date.parse(session.expiresAt) - Date.now() : Infinity
    if (left > 60_000 || session.source !== 'dev') return session.token
    const fresh = await devLogin(session.name)
    set(fresh)
    return fresh.token
  }
}
