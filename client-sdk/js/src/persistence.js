// Local persistence of one document: its state (y-indexeddb) and its outbox.
//
// The outbox holds every local update, in order, until the server acknowledges it as durably
// stored (SyncStatus true). It is what the document's `pending` count and `saved` status are
// computed from, and it survives a reload: a page that is closed offline comes back with its
// unsent edits (in the y-indexeddb state, and listed in the outbox) and sends them when it next
// connects. The server's answer to our sync step 2 (which always carries everything the server
// lacks) acknowledges the whole outbox at once.
//
// Backends:
//   - memory: nothing survives the process (Node scripts, tests, services with their own store);
//   - indexeddb: y-indexeddb for the state, a small IndexedDB database per document for the
//     outbox. Database names are `${prefix}${document name}` and `${prefix}${document name}#outbox`;
//     pick a prefix per server and principal so two accounts in one browser never mix.

import * as idb from 'lib0/indexeddb'
import { IndexeddbPersistence } from 'y-indexeddb'

/** The in-memory outbox; the IndexedDB one extends it with write-through. */
export class Outbox {
  constructor ({ ready = true } = {}) {
    /** @type {{id: number, update: Uint8Array}[]} */
    this.entries = []
    this._nextId = 1
    this._ready = ready
    this._early = [] // updates added before the saved entries were loaded: numbered after them
  }

  /** Restore entries saved earlier (ids kept, so acknowledgements still match). */
  restore (entries) {
    this.entries = entries.slice().sort((a, b) => a.id - b.id)
    if (this.entries.length) this._nextId = this.entries[this.entries.length - 1].id + 1
    this._ready = true
    const early = this._early
    this._early = []
    for (const update of early) this.add(update)
  }

  /** Append a local update; return its id (increasing; 0 before the outbox is loaded). */
  add (update) {
    if (!this._ready) {
      this._early.push(update)
      return 0
    }
    const entry = { id: this._nextId++, update }
    this.entries.push(entry)
    return entry.id
  }

  /** The highest id in the outbox, 0 when empty. */
  get lastId () {
    return this.entries.length ? this.entries[this.entries.length - 1].id : 0
  }

  get count () {
    return this.entries.length + this._early.length
  }

  /** The server stored everything up to `uptoId`: drop it. Returns how many entries left. */
  acknowledge (uptoId) {
    const before = this.entries.length
    this.entries = this.entries.filter((entry) => entry.id > uptoId)
    return before - this.entries.length
  }

  async clear () {
    this.entries = []
  }

  async flush () {}
  destroy () {}
}

const STORE = 'updates'

class IndexedDbOutbox extends Outbox {
  constructor (dbName) {
    super({ ready: false })
    this._dbName = dbName
    this._db = idb.openDB(dbName, (db) => idb.createStores(db, [[STORE]]))
    this._writes = Promise.resolve()
  }

  async load () {
    const db = await this._db
    const [store] = idb.transact(db, [STORE], 'readonly')
    const rows = await idb.getAllKeysValues(store)
    this.restore(rows.map(({ k, v }) => ({ id: k, update: new Uint8Array(v) })))
    return this.entries
  }

  add (update) {
    const id = super.add(update)
    if (id) this._write((store) => idb.put(store, update, id))
    return id
  }

  acknowledge (uptoId) {
    const removed = super.acknowledge(uptoId)
    if (removed) this._write((store) => idb.del(store, idb.createIDBKeyRangeUpperBound(uptoId, false)))
    return removed
  }

  async clear () {
    await super.clear()
    this._write((store) => idb.del(store, idb.createIDBKeyRangeLowerBound(0, false)))
    await this._writes
  }

  flush () {
    return this._writes
  }

  /** Writes are chained so they reach IndexedDB in the order they happened. */
  _write (op) {
    this._writes = this._writes.then(async () => {
      const db = await this._db
      const [store] = idb.transact(db, [STORE])
      await op(store)
    }).catch((err) => {
      console.error(`syncd-client: outbox write to ${this._dbName} failed`, err)
    })
  }

  destroy () {
    this._writes.then(async () => (await this._db).close())
  }
}

/**
 * Open the local persistence of document `name` for `ydoc`.
 * @returns {{state: object | null, outbox: Outbox, whenLoaded: Promise<void>, destroy(): Promise<void>, clear(): Promise<void>}}
 */
export function openPersistence (config, name, ydoc) {
  if (!config || config.type === 'memory') {
    const outbox = new Outbox()
    return { state: null, outbox, whenLoaded: Promise.resolve(), destroy: async () => {}, clear: () => outbox.clear() }
  }
  if (config.type !== 'indexeddb') throw new Error(`unknown persistence ${JSON.stringify(config.type)}`)
  const dbName = `${config.prefix ?? 'syncd:'}${name}`
  const state = new IndexeddbPersistence(dbName, ydoc)
  const outbox = new IndexedDbOutbox(`${dbName}#outbox`)
  // If IndexedDB cannot be opened (a private window, storage blocked), the document still works,
  // in memory only: better than never syncing at all.
  const unavailable = (what) => (err) => console.warn(`syncd-client: IndexedDB unavailable for ${dbName} (${what}); keeping it in memory`, err)
  const stateLoaded = Promise.race([state.whenSynced, state._db.then(() => new Promise(() => {}), unavailable('state'))])
  const outboxLoaded = outbox.load().catch((err) => { unavailable('outbox')(err); outbox.restore([]) })
  const whenLoaded = Promise.all([stateLoaded, outboxLoaded]).then(() => undefined)
  return {
    state,
    outbox,
    whenLoaded,
    destroy: async () => {
      await outbox.flush()
      outbox.destroy()
      await state.destroy()
    },
    clear: async () => {
      await outbox.clear()
      await state.clearData()
    }
  }
}

/** Normalise the `persistence` option of `createClient`. */
export function persistenceConfig (option) {
  if (option === undefined) {
    return typeof globalThis.indexedDB !== 'undefined' ? { type: 'indexeddb', prefix: 'syncd:' } : null
  }
  if (option === null || option === false || option === 'memory') return null
  if (option === 'indexeddb' || option === true) return { type: 'indexeddb', prefix: 'syncd:' }
  if (typeof option === 'object' && option.type) return option
  throw new Error(`persistence must be "indexeddb", "memory" or {type, prefix}, not ${JSON.stringify(option)}`)
}
