// The daemon's HTTP endpoints that the JS SDK does not wrap: the listing of one's documents
// (`GET /v1/docs`, docs/protocol.md "Listing documents") and the privacy endpoints of
// DESIGN.md §1.11 (consent, export). Same token as the SDK: the session's, renewed through the
// dev login when it is about to expire.
import { loadSession, saveSession, tokenProvider } from './auth'

/** A refusal from the server (`status` set) or no answer at all (`status` undefined: offline). */
export class ApiError extends Error {
  constructor (message: string, readonly status?: number, readonly code?: string) {
    super(message)
  }
}

const token = tokenProvider(loadSession, saveSession)
const base = () => window.location.pathname.replace(/[^/]*$/, '')

export async function apiFetch (path: string, init: RequestInit = {}): Promise<Response> {
  let response: Response
  try {
    response = await fetch(base() + path.replace(/^\//, ''), {
      ...init,
      headers: { authorization: `Bearer ${await token()}`, ...init.headers }
    })
  } catch {
    throw new ApiError('The server cannot be reached.')
  }
  if (!response.ok) {
    const body = await response.json().catch(() => ({})) as { error?: string, message?: string }
    throw new ApiError(body.message ?? `${response.status} ${response.statusText}`, response.status, body.error)
  }
  return response
}

export type ListedRole = 'owner' | 'editor' | 'viewer'

export interface ListedDoc {
  id: string
  owner: string
  role: ListedRole
  mode: 'private' | 'shared'
  seq: number
  size_bytes: number
  created_at: string
  updated_at: string
}

/** `GET /v1/docs?shared=1` (or `owned=1`): the documents of the signed-in principal. */
export async function listDocs (which: { owned?: boolean, shared?: boolean } = {}): Promise<ListedDoc[]> {
  const query = new URLSearchParams()
  if (which.owned !== undefined) query.set('owned', which.owned ? '1' : '0')
  if (which.shared !== undefined) query.set('shared', which.shared ? '1' : '0')
  query.set('limit', '1000')
  const body = await (await apiFetch(`v1/docs?${query}`)).json() as { docs: ListedDoc[] }
  return body.docs
}

/** What a document is (its schema) and its title, from its JSON view; null when unreadable. */
export async function describeDoc (id: string): Promise<{ kind: 'journal' | 'canvas', title: string } | null> {
  try {
    const view = await (await apiFetch(`v1/docs/${id}/state`, { headers: { accept: 'application/json' } })).json()
    const schema = view?.meta?.schema
    const kind = schema === 'journal/1' ? 'journal' : schema === 'canvas/1' ? 'canvas' : null
    return kind ? { kind, title: typeof view.meta.title === 'string' ? view.meta.title : '' } : null
  } catch {
    return null
  }
}

export type Consents = Record<string, boolean>

const principalPath = (sub: string) => `v1/principals/${encodeURIComponent(sub)}`

/** The purposes of an answer: §1.11 says "the consents" without the wrapping, so both
 * `{"analytics": true}` and `{"consents": {"analytics": true}}` are read; only booleans count. */
function readConsents (body: unknown): Consents {
  const object = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>
  const inner = object.consents && typeof object.consents === 'object' ? object.consents as Record<string, unknown> : object
  return Object.fromEntries(Object.entries(inner).filter(([, v]) => typeof v === 'boolean')) as Consents
}

/** `GET /v1/principals/{sub}/consent` → `{"analytics": bool, …}`. */
export async function getConsent (sub: string): Promise<Consents> {
  return readConsents(await (await apiFetch(`${principalPath(sub)}/consent`)).json())
}

/** `PUT /v1/principals/{sub}/consent` with the purposes to change; the server's consents. */
export async function putConsent (sub: string, change: Consents): Promise<Consents> {
  const response = await apiFetch(`${principalPath(sub)}/consent`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(change)
  })
  return readConsents(await response.json())
}

/** `GET /v1/principals/{sub}/export`: the zip of everything the server holds of `sub`. */
export async function fetchExport (sub: string): Promise<Blob> {
  return await (await apiFetch(`${principalPath(sub)}/export`)).blob()
}
