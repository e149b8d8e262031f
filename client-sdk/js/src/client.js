// The SDK's client: many documents over one /v1/sync WebSocket, offline first.
//
//   const client = createClient({ url: 'ws://127.0.0.1:8787', token: () => fetchToken() })
//   const doc = client.open('alice/journal')          // usable at once, even offline
//   const journal = doc.journal()
//   journal.createEntry('Monday', 'Wrote this on the train')
//   doc.on('status', (status) => render(status))       // offline | syncing | saved | denied
//   await doc.whenSaved()                               // the server durably holds it
//
// The connection reconnects by itself with jittered exponential backoff while the server is
// unreachable or restarting, asks the token callback for a fresh token at every connection (and
// when the server closes a document because its token expired), and drops a silent socket after
// `livenessMs` (the server echoes presence every 15 s). A close in the permanent band 4400-4499
// (malformed data, a message over the limit) stops reconnecting: `closedReason` says why and the
// `closed` event fires. In a browser, the `offline` event drops the socket at once (a phone that
// lost its signal may take minutes to notice) and `online` reconnects without waiting.

import { SyncedDocument } from './document.js'
import { Emitter } from './emitter.js'
import { decodeFrame } from './framing.js'
import { DocumentHistory } from './history.js'
import { persistenceConfig } from './persistence.js'

const DEFAULTS = { backoff: [200, 15000], livenessMs: 30000, connectTimeoutMs: 10000 }

/** Create a client; see the `ClientOptions` type in index.d.ts. */
export function createClient (options) {
  return new SyncClient(options)
}

export class SyncClient extends Emitter {
  constructor ({
    url, token, persistence, WebSocket: WebSocketImpl, backoff = DEFAULTS.backoff,
    livenessMs = DEFAULTS.livenessMs, connectTimeoutMs = DEFAULTS.connectTimeoutMs,
    autoConnect = true, principal
  } = {}) {
    super()
    if (!url) throw new Error('createClient: url is required (ws://host:port)')
    if (typeof token !== 'string' && typeof token !== 'function') {
      throw new Error('createClient: token must be a string or a function returning one')
    }
    this.url = syncUrl(url)
    this.httpUrl = httpBase(this.url)
    this._tokenSource = token
    this._WebSocket = WebSocketImpl ?? globalThis.WebSocket
    if (!this._WebSocket) throw new Error('createClient: no WebSocket here; pass one (e.g. the `ws` package)')
    this._persistence = persistenceConfig(persistence)
    this.backoff = backoff
    this.livenessMs = livenessMs
    this.connectTimeoutMs = connectTimeoutMs
    /** @type {Map<string, SyncedDocument>} */
    this.documents = new Map()
    this.connected = false
    this.closedReason = null
    this.closedCode = null
    this.principal = principal ?? (typeof token === 'string' ? tokenSubject(token) : null)
    this._token = null
    this._ws = null
    this._attempt = 0
    this._retryTimer = null
    this._livenessTimer = null
    this._lastMessageAt = 0
    this._destroyed = false
    this._paused = !autoConnect
    this._refreshing = null

    this._onOnline = () => { if (!this._paused) this.reconnect() }
    this._onOffline = () => this._drop('the browser went offline')
    if (typeof globalThis.addEventListener === 'function' && typeof globalThis.navigator !== 'undefined') {
      globalThis.addEventListener('online', this._onOnline)
      globalThis.addEventListener('offline', this._onOffline)
    }
    if (autoConnect) this._connect()
  }

  get _canRefresh () {
    return typeof this._tokenSource === 'function'
  }

  /** Open (or return) the document `OWNER/NAME`; usable at once, even offline. */
  open (name) {
    if (this._destroyed) throw new Error('this client was destroyed')
    let doc = this.documents.get(name)
    if (!doc) {
      doc = new SyncedDocument(this, name, this._persistence)
      this.documents.set(name, doc)
      if (this.connected) doc._connected()
    }
    return doc
  }

  /** Resolve once every open document is saved (see `SyncedDocument.whenSaved`). */
  whenSaved (options) {
    return Promise.all([...this.documents.values()].map((doc) => doc.whenSaved(options)))
  }

  /** Connect again now (after `disconnect()`, a permanent close, or to skip a backoff wait). */
  reconnect () {
    if (this._destroyed) return
    this._paused = false
    this.closedReason = null
    this.closedCode = null
    this._attempt = 0
    if (this._ws) this._drop('reconnecting', { retry: false })
    clearTimeout(this._retryTimer)
    this._retryTimer = null
    this._connect()
  }

  /** Go offline on purpose (edits keep going to the outbox) until `reconnect()`. */
  disconnect () {
    this._paused = true
    clearTimeout(this._retryTimer)
    this._retryTimer = null
    this._drop('disconnected by the application', { retry: false })
  }

  /** Close every document and the socket; the client cannot be used afterwards. */
  async destroy () {
    this._destroyed = true
    this.disconnect()
    if (typeof globalThis.removeEventListener === 'function') {
      globalThis.removeEventListener('online', this._onOnline)
      globalThis.removeEventListener('offline', this._onOffline)
    }
    await Promise.all([...this.documents.values()].map((doc) => doc.close()))
  }

  // -- HTTP API (DESIGN.md §1.6) ----------------------------------------------------------------

  /** `GET /v1/docs/{id}`: `{id, owner, mode, grants, seq, ...}`, or null when not visible. */
  async metadata (name) {
    const response = await this._http('GET', `/v1/docs/${name}`, undefined, [404])
    return response.status === 404 ? null : response.json()
  }

  /** `PUT /v1/docs/{id}/access` with `{mode, grants}` (owner or admin); returns the metadata. */
  async setAccess (name, { mode, grants = {} }) {
    return (await this._http('PUT', `/v1/docs/${name}/access`, { mode, grants })).json()
  }

  /** `GET /v1/docs/{id}/state` as JSON (the journal/1 or canvas/1 view). */
  async stateJSON (name) {
    return (await this._http('GET', `/v1/docs/${name}/state`, undefined, [], { accept: 'application/json' })).json()
  }

  /** Versions, restore and activity of `name` (history.js). */
  history (name) {
    return new DocumentHistory(this, name)
  }

  /** `DELETE /v1/docs/{id}`: to the trash (live clients are closed), or erased with `purge`. */
  async deleteDocument (name, { purge = false } = {}) {
    await this._http('DELETE', `/v1/docs/${name}${purge ? '?purge=true' : ''}`)
  }

  /** `GET /v1/trash`: `[{id, deleted_at, purge_at}]`, this principal's, newest deletion first. */
  async trash () {
    return (await (await this._http('GET', '/v1/trash')).json()).trash
  }

  /** `PUT /v1/docs/{id}`: create the document, also where a purged one was (a new epoch). */
  async createDocument (name) {
    return (await this._http('PUT', `/v1/docs/${name}`)).json()
  }

  /** `POST /v1/docs/{id}/restore`: bring a document back from the trash, whole. */
  async restoreDocument (name) {
    const response = await this._http('POST', `/v1/docs/${name}/restore`)
    return response.status === 204 ? null : response.json().catch(() => null)
  }

  async _http (method, path, body, okStatuses = [], headers = {}) {
    const token = this._token ?? await this._freshToken()
    const response = await fetch(this.httpUrl + path, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers
      },
      body: body === undefined ? undefined : JSON.stringify(body)
    })
    if (!response.ok && !okStatuses.includes(response.status)) {
      let detail = ''
      try { detail = (await response.json()).message ?? '' } catch { /* not JSON */ }
      const err = new Error(`${method} ${path}: ${response.status} ${detail}`.trim())
      err.status = response.status
      throw err
    }
    return response
  }

  // -- connection ---------------------------------------------------------------------------------

  async _freshToken () {
    const source = this._tokenSource
    const token = typeof source === 'string' ? source : await source()
    if (typeof token !== 'string' || !token) throw new Error('the token callback returned no token')
    if (this.principal === null) this.principal = tokenSubject(token)
    return token
  }

  /** A fresh token, fetched once however many documents ask at the same time. */
  _refreshToken (stale) {
    if (this._token !== stale) return Promise.resolve(this._token)
    if (!this._refreshing) {
      this._refreshing = this._freshToken().then((token) => {
        this._token = token
        return token
      }).finally(() => { this._refreshing = null })
    }
    return this._refreshing
  }

  async _connect () {
    if (this._destroyed || this._paused || this._ws || this.closedReason) return
    const placeholder = {}
    this._ws = placeholder // claims the slot while the token is fetched
    let token
    try {
      token = await this._freshToken()
    } catch (err) {
      this._ws = null
      console.warn('syncd-client: no token, retrying', err)
      this._scheduleRetry()
      return
    }
    if (this._ws !== placeholder) return // dropped or destroyed meanwhile
    this._token = token
    let ws
    try {
      ws = new this._WebSocket(this.url)
    } catch (err) {
      this._ws = null
      this._scheduleRetry()
      return
    }
    ws.binaryType = 'arraybuffer'
    this._ws = ws
    const openTimer = setTimeout(() => this._drop('connection timed out'), this.connectTimeoutMs)
    ws.onopen = () => {
      clearTimeout(openTimer)
      if (this._ws !== ws) return
      this._attempt = 0
      this.connected = true
      this._lastMessageAt = Date.now()
      this._startLiveness()
      this.emit('connection', [{ connected: true }])
      for (const doc of this.documents.values()) doc._connected()
    }
    ws.onmessage = (event) => {
      if (this._ws !== ws) return
      this._lastMessageAt = Date.now()
      let message
      try {
        message = decodeFrame(new Uint8Array(event.data))
      } catch (err) {
        console.warn('syncd-client: undecodable frame from the server', err)
        return
      }
      this.documents.get(message.address)?._receive(message)
    }
    ws.onerror = () => {} // a close event follows
    ws.onclose = (event) => {
      clearTimeout(openTimer)
      if (this._ws !== ws) return
      this._closed(event.code, event.reason ?? '')
    }
  }

  _startLiveness () {
    clearInterval(this._livenessTimer)
    this._livenessTimer = setInterval(() => {
      // Only a socket with an open document is echoed presence, so only then is silence a sign.
      const open = [...this.documents.values()].some((doc) => doc._phase === 'open')
      if (!open) this._lastMessageAt = Date.now()
      else if (Date.now() - this._lastMessageAt > this.livenessMs) this._drop(`no message for ${this.livenessMs} ms`)
    }, Math.min(5000, this.livenessMs / 2))
  }

  /** Abandon the current socket at once (without waiting for a close handshake). */
  _drop (reason, { retry = true } = {}) {
    const ws = this._ws
    if (!ws) return
    this._ws = null
    if (typeof ws.close === 'function') {
      ws.onopen = ws.onmessage = ws.onclose = null
      try { ws.close(1000, reason.slice(0, 120)) } catch { /* already closing */ }
    }
    this._afterClose(1006, reason, retry)
  }

  _closed (code, reason) {
    this._ws = null
    this._afterClose(code, reason, true)
  }

  _afterClose (code, reason, retry) {
    clearInterval(this._livenessTimer)
    const wasConnected = this.connected
    this.connected = false
    for (const doc of this.documents.values()) doc._disconnected()
    if (wasConnected) this.emit('connection', [{ connected: false, code, reason }])
    if (code >= 4400 && code <= 4499) {
      // Permanent: retrying would fail the same way. The application decides (e.g. sign in again).
      this.closedCode = code
      this.closedReason = `${code} ${reason}`.trim()
      this.emit('closed', [{ code, reason, permanent: true }])
      return
    }
    if (retry) this._scheduleRetry()
  }

  _scheduleRetry () {
    if (this._destroyed || this._paused || this._retryTimer) return
    const [first, longest] = this.backoff
    const delay = Math.min(longest, first * 2 ** this._attempt) * (0.5 + Math.random() / 2)
    this._attempt++
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null
      this._connect()
    }, delay)
  }

  _send (bytes) {
    const ws = this._ws
    if (!this.connected || !ws || ws.readyState !== 1) return false
    ws.send(bytes)
    return true
  }

  _forget (doc) {
    if (this.documents.get(doc.name) === doc) this.documents.delete(doc.name)
  }
}

/** `ws://host:port` (or http(s)://, or a full `/v1/sync` URL) → the `/v1/sync` WebSocket URL. */
export function syncUrl (url) {
  let base = String(url).replace(/^http/, 'ws').replace(/\/+$/, '')
  if (!base.endsWith('/v1/sync')) base += '/v1/sync'
  return base
}

function httpBase (wsUrl) {
  return wsUrl.replace(/^ws/, 'http').replace(/\/v1\/sync$/, '')
}

/** The `sub` claim of a JWT (not verified: the server does that), or null. */
export function tokenSubject (token) {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')
    const json = typeof atob === 'function'
      ? atob(payload.padEnd(payload.length + (4 - payload.length % 4) % 4, '='))
      : Buffer.from(payload, 'base64').toString('utf8')
    const sub = JSON.parse(json).sub
    return typeof sub === 'string' ? sub : null
  } catch {
    return null
  }
}
