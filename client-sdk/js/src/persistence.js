// Local persistence of one document: its state (y-indexeddb), its outbox, and its metadata (the
// epoch its state belongs to, and recovered copies: epoch.js).
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
//     outbox, another for the metadata. Database names are `${prefix}${document name}`,
//     `${prefix}${document name}#outbox` and `${prefix}${document name}#meta`; pick a prefix per
//     server and principal so two accounts in one browser never mix.
//
// A reset (the server's epoch changed) is written in an order that a crash cannot turn into the
// old state under the new epoch: the recovered copy, then the outbox cleared, then the state
// database deleted, and only then the new epoch. Interrupted anywhere, the stored epoch is still
// the old one and the next connection resets again (with nothing left to recover, no new copy).

import * as idb from 'lib0/indexeddb'
import { IndexeddbPersistence } from 'y-indexeddb'

import { RecoveredCopy } from './epoch.js'

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

  /** Forget every entry; `after` (a promise) must settle first for the stored ones. */
  async clear (after) {
    this.entries = []
  }

  async flush () {}
  destroy () {}
}

/** A document's epoch and recovered copies, in memory; the IndexedDB one writes through. */
export class DocumentMeta {
  constructor () {
    /** @type {string | null} */
    this.epoch = null
    /** @type {RecoveredCopy[]} */
    this.recovered = []
  }

  async load () {}
  async saveEpoch (epoch) { this.epoch = epoch }
  async addRecovered (copy) {
    if (!this.recovered.some((known) => known.id === copy.id)) this.recovered.push(copy)
  }
  async discardRecovered (id) {
    const before = this.recovered.length
    this.recovered = this.recovered.filter((copy) => copy.id !== id)
    return this.recovered.length < before
  }

  async clear () {
    this.epoch = null
    this.recovered = []
  }

  destroy () {}
}

const META = 'meta'
const RECOVERED = 'recovered/'

class IndexedDbDocumentMeta extends DocumentMeta {
  constructor (dbName) {
    super()
    this._dbName = dbName
    this._db = idb.openDB(dbName, (db) => idb.createStores(db, [[META]]))
  }

  async load () {
    const db = await this._db
    const [store] = idb.transact(db, [META], 'readonly')
    const rows = await idb.getAllKeysValues(store)
    for (const { k, v } of rows) {
      if (k === 'epoch') this.epoch = v
      else if (typeof k === 'string' && k.startsWith(RECOVERED)) this.recovered.push(RecoveredCopy.fromRecord(v))
    }
    this.recovered.sort((a, b) => (a.id < b.id ? -1 : 1))
  }

  async saveEpoch (epoch) {
    await super.saveEpoch(epoch)
    await this._put('epoch', epoch)
  }

  async addRecovered (copy) {
    await super.addRecovered(copy)
    await this._put(RECOVERED + copy.id, copy.toRecord())
  }

  async discardRecovered (id) {
    const found = await super.discardRecovered(id)
    const db = await this._db
    const [store] = idb.transact(db, [META])
    await idb.del(store, RECOVERED + id)
    return found
  }

  async clear () {
    await super.clear()
    const db = await this._db
    const [store] = idb.transact(db, [META])
    await idb.del(store, idb.createIDBKeyRangeLowerBound('', false))
  }

  async _put (key, value) {
    const db = await this._db
    const [store] = idb.transact(db, [META])
    await idb.put(store, value, key)
  }

  destroy () {
    this._db.then((db) => db.close(), () => {})
  }
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

  async clear (after) {
    await super.clear()
    const gate = Promise.resolve(after)
    this._write(async (store) => {
      await gate // throws (and skips the deletion) when what had to come first failed
      await idb.del(store, idb.createIDBKeyRangeLowerBound(0, false))
    })
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
 *
 * `reset(ydoc, {copy, epoch})` starts the document again under a new epoch, with `ydoc` (a new,
 * empty Y.Doc) as its state: `copy` (a RecoveredCopy, or null) is stored first, then the outbox
 * and the old state are erased, then `epoch` is stored (see the top of this file).
 * @returns {{state: object | null, outbox: Outbox, meta: DocumentMeta, whenLoaded: Promise<void>, reset(ydoc: object, change: {copy: RecoveredCopy | null, epoch: string}): Promise<void>, destroy(): Promise<void>, clear(): Promise<void>}}
 */
export function openPersistence (config, name, ydoc) {
  if (!config || config.type === 'memory') {
    const outbox = new Outbox()
    const meta = new DocumentMeta()
    return {
      state: null,
      outbox,
      meta,
      whenLoaded: Promise.resolve(),
      reset: async (_ydoc, { copy, epoch }) => {
        if (copy) await meta.addRecovered(copy)
        await outbox.clear()
        await meta.saveEpoch(epoch)
      },
      destroy: async () => {},
      clear: async () => {
        await outbox.clear()
        await meta.clear()
      }
    }
  }
  if (config.type !== 'indexeddb') throw new Error(`unknown persistence ${JSON.stringify(config.type)}`)
  const dbName = `${config.prefix ?? 'syncd:'}${name}`
  const state = new IndexeddbPersistence(dbName, ydoc)
  const outbox = new IndexedDbOutbox(`${dbName}#outbox`)
  const meta = new IndexedDbDocumentMeta(`${dbName}#meta`)
  // If IndexedDB cannot be opened (a private window, storage blocked), the document still works,
  // in memory only: better than never syncing at all.
  const unavailable = (what) => (err) => console.warn(`syncd-client: IndexedDB unavailable for ${dbName} (${what}); keeping it in memory`, err)
  const stateLoaded = Promise.race([state.whenSynced, state._db.then(() => new Promise(() => {}), unavailable('state'))])
  const outboxLoaded = outbox.load().catch((err) => { unavailable('outbox')(err); outbox.restore([]) })
  const metaLoaded = meta.load().catch(unavailable('metadata'))
  const whenLoaded = Promise.all([stateLoaded, outboxLoaded, metaLoaded]).then(() => undefined)
  let resetting = Promise.resolve()
  const persistence = {
    state,
    outbox,
    meta,
    whenLoaded,
    reset: (fresh, { copy, epoch }) => {
      const old = persistence.state
      // The new state database is opened only once the old one is deleted (below); until then
      // the fresh Y.Doc lives in memory, and y-indexeddb stores all of it when it attaches.
      persistence.state = null
      resetting = resetting.then(async () => {
        const saved = copy ? meta.addRecovered(copy) : Promise.resolve()
        await outbox.clear(saved)
        await saved
        await old?.destroy()
        await idb.deleteDB(dbName)
        const next = new IndexeddbPersistence(dbName, fresh)
        persistence.state = next
        await next.whenSynced
        await meta.saveEpoch(epoch)
      })
      return resetting
    },
    destroy: async () => {
      await resetting.catch(() => {})
      await outbox.flush()
      outbox.destroy()
      meta.destroy()
      await persistence.state?.destroy()
    },
    clear: async () => {
      await resetting.catch(() => {})
      await outbox.clear()
      await meta.clear()
      await persistence.state?.clearData()
    }
  }
  return persistence
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
