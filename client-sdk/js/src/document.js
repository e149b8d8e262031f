// One document opened through a client: a Y.Doc that syncs over the client's shared socket.
//
// The JS twin of client-sdk/python/syncd_client/document.py, with the same rules:
//
// Acknowledgements: the server answers every sync step 2 / update this client sends on /v1/sync
// with SyncStatus (true: durably stored; false: refused), in order, per document. Each message
// sent is remembered with the highest outbox id it covers; when its acknowledgement arrives, the
// outbox is cleared up to that id. A sync step 2 covers the whole outbox (it is everything the
// server lacks), a live update covers its own entry.
//
// Status: `offline` (no socket: edits wait in the outbox), `syncing` (authenticating, exchanging
// state, or edits not yet acknowledged), `saved` (the server durably holds everything this replica
// has), `denied` (the server refused or closed the document: `deniedReason` says why).
//
// Epoch (epoch.js): after `Authenticated`, nothing of the document is sent until the server's
// epoch message has been checked against the stored epoch; local edits wait in the outbox
// meanwhile. A different epoch replaces `ydoc` and `awareness` by new ones (`reset` event: bind
// views again) and sets the old replica aside as a recovered copy if it held unacknowledged
// edits (`recovered` event, `doc.recovered`).

import * as awarenessProtocol from 'y-protocols/awareness'
import * as Y from 'yjs'

import { Emitter } from './emitter.js'
import { RecoveredCopy, parseEpochMessage, recoveredId } from './epoch.js'
import { MessageType, SyncStep, encodeAwareness, encodeClose, encodeSync, encodeToken } from './framing.js'
import { openPersistence } from './persistence.js'
import { Canvas } from './schemas/canvas.js'
import { Journal } from './schemas/journal.js'

const REMOTE = Symbol('syncd-remote')
const CONNECTION = Symbol('syncd-connection')

export class SyncedDocument extends Emitter {
  /** Use `client.open(name)`, not this constructor. */
  constructor (client, name, persistenceConfig) {
    super()
    this.client = client
    this.name = name
    this.ydoc = new Y.Doc()
    this.awareness = new awarenessProtocol.Awareness(this.ydoc)
    /** @type {'readonly' | 'read-write' | null} */
    this.scope = null
    this.deniedReason = null
    this.loaded = false
    this.closed = false
    this._status = 'offline'
    this._phase = 'offline' // offline | authenticating | epoch (awaiting it) | open | denied
    this._inflight = [] // outbox id covered by each unacknowledged message, in send order
    this._serverSynced = false
    this._tokenUsed = null

    /** Times `ydoc` was replaced after the server's epoch changed. */
    this.resets = 0

    this._persistence = openPersistence(persistenceConfig, name, this.ydoc)
    this.outbox = this._persistence.outbox
    this._meta = this._persistence.meta
    this.whenLoaded = this._persistence.whenLoaded.then(() => {
      // Edits made before a restart and not acknowledged: already in the y-indexeddb state, but
      // applying them again is idempotent and covers a state that was not written in time.
      for (const { update } of this.outbox.entries) Y.applyUpdate(this.ydoc, update, REMOTE)
      this.loaded = true
      this.emit('loaded', [this])
      if (this.client.connected && this._phase === 'offline') this._authenticate()
    })

    this._onUpdate = (update, origin) => {
      this._localUpdate(update, origin)
      const remote = origin === REMOTE || (this._persistence.state && origin === this._persistence.state)
      this.emit('change', [this, remote ? 'remote' : 'local'])
    }
    this.ydoc.on('update', this._onUpdate)
    this._onAwareness = ({ added, updated, removed }, origin) => {
      if (origin !== 'local') return
      this._sendAwareness([...added, ...updated, ...removed])
    }
    this.awareness.on('update', this._onAwareness)
  }

  /** The server epoch this replica belongs to; null before its first sync here. */
  get epoch () {
    return this._meta.epoch
  }

  /** Replicas set aside because the server's history was rewritten under unsent edits. */
  get recovered () {
    return this._meta.recovered.slice()
  }

  /** Erase a recovered copy (by id or the copy); resolves to whether it was there. */
  discardRecovered (copy) {
    return this._meta.discardRecovered(typeof copy === 'string' ? copy : copy.id)
  }

  /** `offline` | `syncing` | `saved` | `denied` */
  get status () {
    return this._status
  }

  /** Whether the server gave this principal read-only access (a viewer). */
  get readonly () {
    return this.scope === 'readonly'
  }

  /** Local edits the server has not acknowledged yet. */
  get pending () {
    return this.outbox.count
  }

  /** A `journal/1` view of this document. */
  journal (options) {
    return new Journal(this.ydoc, options)
  }

  /** A `canvas/1` view of this document; `author` defaults to the client's principal. */
  canvas (options = {}) {
    return new Canvas(this.ydoc, { author: this.client.principal, ...options })
  }

  /**
   * Resolve once the server durably holds everything this replica has; reject if the document
   * is denied, the client stops for good, or `timeout` (ms) passes.
   */
  whenSaved ({ timeout } = {}) {
    return this.when((doc) => doc.status === 'saved', { timeout, what: 'saved' })
  }

  /** Resolve once `predicate(this)` holds, re-checked after every status or content change. */
  when (predicate, { timeout, what = 'the condition' } = {}) {
    return new Promise((resolve, reject) => {
      let timer = null
      const check = () => {
        if (predicate(this)) return finish(null)
        if (this._status === 'denied') return finish(new Error(`${this.name}: ${this.deniedReason}`))
        if (this.client.closedReason) return finish(new Error(`closed for good: ${this.client.closedReason}`))
      }
      const finish = (err) => {
        this.off('status', check)
        this.off('change', check)
        this.client.off('closed', check)
        if (timer) clearTimeout(timer)
        err ? reject(err) : resolve(this)
      }
      this.on('status', check)
      this.on('change', check)
      this.client.on('closed', check)
      if (timeout) {
        timer = setTimeout(() => finish(new Error(`${this.name}: not ${what} after ${timeout} ms (status ${this._status})`)), timeout)
      }
      check()
    })
  }

  /** Open the document again after it was denied or closed by the server (e.g. access granted). */
  reopen () {
    if (this.closed) return
    this._phase = 'offline'
    this.deniedReason = null
    if (this.client.connected && this.loaded) this._authenticate()
    else this._updateStatus()
  }

  /** Leave the document: tell the server, stop syncing, close local persistence. */
  async close () {
    if (this.closed) return
    if (['open', 'authenticating', 'epoch'].includes(this._phase)) this.client._send(encodeClose(this.name))
    this.closed = true
    this.client._forget(this)
    this.ydoc.off('update', this._onUpdate)
    this.awareness.off('update', this._onAwareness)
    this.awareness.destroy()
    await this.whenLoaded.catch(() => {})
    await this._persistence.destroy()
    this.ydoc.destroy()
  }

  /** Forget this document locally (state and outbox), e.g. when signing out. */
  async clearLocal () {
    await this.whenLoaded.catch(() => {})
    await this._persistence.clear()
  }

  // -- connection events (called by the client) ---------------------------------------------

  _connected () {
    if (this.loaded && this._phase !== 'denied') this._authenticate()
  }

  _disconnected () {
    this._inflight = []
    this._serverSynced = false
    const others = [...this.awareness.getStates().keys()].filter((id) => id !== this.ydoc.clientID)
    awarenessProtocol.removeAwarenessStates(this.awareness, others, CONNECTION)
    if (this._phase !== 'denied') this._phase = 'offline'
    this._updateStatus()
  }

  _authenticate () {
    const token = this.client._token
    if (token === null) return
    this._inflight = []
    this._serverSynced = false
    this.deniedReason = null
    this._tokenUsed = token
    this._phase = 'authenticating'
    this.client._send(encodeToken(this.name, token))
    this._updateStatus()
  }

  _receive (message) {
    if (this.closed) return
    switch (message.type) {
      case MessageType.AUTH:
        if (message.auth === 'authenticated') {
          this.scope = message.scope
          if (this._phase === 'authenticating') this._phase = 'epoch'
          this.emit('scope', [message.scope, this])
        } else if (message.auth === 'denied') {
          this._denied(message.reason)
        } else if (message.auth === 'token' && this._phase !== 'denied') {
          this._authenticate() // the server asks for the token again
        }
        break
      case MessageType.CLOSE:
        this._denied(message.reason || 'closed by the server')
        break
      case MessageType.STATELESS: {
        const epoch = parseEpochMessage(message.payload)
        if (epoch !== null && this._phase === 'epoch') {
          this._checkEpoch(epoch)
          this._open()
        }
        break
      }
      case MessageType.SYNC:
        if (this._phase === 'epoch') {
          // Only a server that predates epochs sends its sync step 1 without one first.
          console.info(`syncd-client: ${this.name}: the server sent no epoch; syncing anyway`)
          this._open()
        }
        if (message.step === SyncStep.STEP1) {
          const update = Y.encodeStateAsUpdate(this.ydoc, message.data)
          this._sendUpdate(SyncStep.STEP2, update, this.outbox.lastId)
        } else {
          Y.applyUpdate(this.ydoc, message.data, REMOTE)
          if (message.step === SyncStep.STEP2) this._serverSynced = true
        }
        break
      case MessageType.SYNC_STATUS: {
        const covered = this._inflight.shift() ?? 0
        if (message.stored && covered) this.outbox.acknowledge(covered)
        if (!message.stored) this.emit('refused', [this])
        break
      }
      case MessageType.AWARENESS:
        awarenessProtocol.applyAwarenessUpdate(this.awareness, message.update, REMOTE)
        break
      case MessageType.QUERY_AWARENESS:
        this._sendAwareness([...this.awareness.getStates().keys()])
        break
      default:
        break
    }
    this._updateStatus()
  }

  // -- internals --------------------------------------------------------------------------------

  /** The epoch is checked: our sync step 1 and presence; live edits flow from now on. */
  _open () {
    this._phase = 'open'
    this._send(encodeSync(this.name, SyncStep.STEP1, Y.encodeStateVector(this.ydoc)))
    this._sendAwareness([this.ydoc.clientID])
  }

  _checkEpoch (epoch) {
    const stored = this._meta.epoch
    if (stored === null) {
      // The first sync of this document here: adopt the epoch, merge as usual.
      this._meta.saveEpoch(epoch).catch((err) => console.error(`syncd-client: ${this.name}: storing the epoch failed`, err))
    } else if (stored !== epoch) {
      this._reset(epoch)
    }
  }

  /**
   * The server's history is not the one this replica grew from: set the replica aside and
   * start again from an empty Y.Doc under `epoch`. Synchronous in memory (nothing of the old
   * replica can be sent after this); the stored side follows in order (persistence.js).
   */
  _reset (epoch) {
    const old = this.ydoc
    const unsent = this.outbox.entries.map((entry) => entry.update)
    const copy = unsent.length
      ? new RecoveredCopy({
        id: recoveredId(),
        name: this.name,
        epoch: this._meta.epoch,
        serverEpoch: epoch,
        state: Y.encodeStateAsUpdate(old),
        updates: unsent,
        recoveredAt: new Date().toISOString()
      })
      : null
    console.warn(`syncd-client: ${this.name}: the server's history was rewritten (epoch ${epoch}); ${unsent.length} unsent edits kept in a recovered copy, not merged`)
    const localPresence = this.awareness.getLocalState()
    old.off('update', this._onUpdate)
    this.awareness.off('update', this._onAwareness)
    this.awareness.destroy()
    this.ydoc = new Y.Doc()
    this.awareness = new awarenessProtocol.Awareness(this.ydoc)
    if (localPresence) this.awareness.setLocalState(localPresence)
    this.ydoc.on('update', this._onUpdate)
    this.awareness.on('update', this._onAwareness)
    this._meta.epoch = epoch // in memory now; stored last, once the old state is gone
    if (copy) this._meta.recovered.push(copy) // readable now; stored first
    this._persistence.reset(this.ydoc, { copy, epoch }).catch((err) => {
      console.error(`syncd-client: ${this.name}: storing the reset failed (it is done again at the next connection)`, err)
    })
    this.resets += 1
    this.emit('reset', [this, old])
    if (copy) {
      this.emit('recovered', [copy, this])
      this.client.emit('recovered', [{ name: this.name, copy, document: this }])
    }
  }

  _denied (reason) {
    this._inflight = []
    this._serverSynced = false
    // An expired token is not a refusal: fetch a fresh one (when the client has a callback) and
    // open the document again with it. The same token is never tried twice.
    if (/expired/i.test(reason) && this.client._canRefresh) {
      const used = this._tokenUsed
      this._phase = 'offline'
      this.client._refreshToken(used).then((token) => {
        if (!this.closed && this.client.connected && token !== used) this._authenticate()
        else if (!this.closed && token === used) this._deny(reason)
      }, (err) => this._deny(`${reason}; refreshing the token failed: ${err?.message ?? err}`))
      this._updateStatus()
      return
    }
    this._deny(reason)
  }

  _deny (reason) {
    this._phase = 'denied'
    this.deniedReason = reason
    const others = [...this.awareness.getStates().keys()].filter((id) => id !== this.ydoc.clientID)
    awarenessProtocol.removeAwarenessStates(this.awareness, others, CONNECTION)
    this.emit('denied', [reason, this])
    this._updateStatus()
  }

  _localUpdate (update, origin) {
    if (origin === REMOTE || (this._persistence.state && origin === this._persistence.state)) return
    const id = this.outbox.add(update)
    if (this._phase === 'open' && !this.readonly) this._sendUpdate(SyncStep.UPDATE, update, id)
    this._updateStatus()
  }

  _sendUpdate (step, update, covers) {
    if (this._send(encodeSync(this.name, step, update))) this._inflight.push(covers)
  }

  _sendAwareness (clients) {
    if (this._phase !== 'open' || !clients.length) return
    this._send(encodeAwareness(this.name, awarenessProtocol.encodeAwarenessUpdate(this.awareness, clients)))
  }

  _send (bytes) {
    return this.client._send(bytes)
  }

  _updateStatus () {
    let status
    if (this._phase === 'denied') status = 'denied'
    else if (this._phase === 'offline') status = 'offline'
    else if (this._phase === 'open' && this._serverSynced && !this._inflight.length && this.outbox.count === 0) status = 'saved'
    else status = 'syncing'
    if (status !== this._status) {
      this._status = status
      this.emit('status', [status, this])
      this.client.emit('status', [{ name: this.name, status, document: this }])
    }
  }
}
