// Typed helpers for the `journal/1` schema (DESIGN.md §1.8): the JS twin of
// crdt/schemas/journal.py, writing exactly the same structure.
//
//   meta:    Y.Map {schema: "journal/1", title: string}
//   entries: Y.Map {<entry id>: Y.Map {
//       title: string, body: Y.Text,
//       created_at: string, updated_at: string,      // "...T12:00:00.000Z"
//       mode: "standalone" | "in-session",
//       session_id: string | null, prompt: string | null,
//       tags: Y.Array<string>,
//   }}
//
// Every mutating method is one transaction, so it reaches peers as one Yjs update. Tags behave as
// a set: `addTag` skips a tag already present, but two replicas adding the same tag offline both
// append it, so `toJSON()` (the raw document) may show it twice while `entry()`/`entries()` show
// each tag once; `removeTag` removes every copy.

import * as Y from 'yjs'

import { checkStr, compareStrings, isoUtc, newId, plain, spliceText, transact, utcNow } from './common.js'

export const JOURNAL_SCHEMA = 'journal/1'
export const MODES = Object.freeze(['standalone', 'in-session'])

export class Journal {
  /**
   * Wrap `doc`; throws if it already carries another schema (a doc without `meta.schema` is
   * accepted: it may be empty or still syncing).
   */
  constructor (doc, { now = utcNow, newId: makeId = newId } = {}) {
    this.doc = doc
    this._now = now
    this._newId = makeId
    this._meta = doc.getMap('meta')
    this._entries = doc.getMap('entries')
    const schema = this._meta.get('schema')
    if (schema !== undefined && schema !== JOURNAL_SCHEMA) {
      throw new Error(`document has schema ${JSON.stringify(schema)}, not "${JOURNAL_SCHEMA}"`)
    }
  }

  /** A journal on a fresh Y.Doc, with its `meta` written. */
  static create (title = '', options = {}) {
    const journal = new Journal(new Y.Doc(), options)
    journal.init(title)
    return journal
  }

  /** The journal title, or null before `meta` has arrived. */
  get title () {
    return this._meta.get('title') ?? null
  }

  /** The `meta` map and `entries` map, for observers (`observeDeep`). */
  get metaMap () { return this._meta }
  get entriesMap () { return this._entries }

  /** Write `meta` (schema and title). Safe on replicas that do it concurrently. */
  init (title = '') {
    checkStr('title', title)
    transact(this.doc, () => {
      this._meta.set('schema', JOURNAL_SCHEMA)
      this._meta.set('title', title)
    })
  }

  /** Set the journal title (last writer wins). */
  rename (title) {
    checkStr('title', title)
    transact(this.doc, () => this._meta.set('title', title))
  }

  /**
   * Add an entry; return its new random id. `mode: "in-session"` needs the `sessionId` of the
   * session it was written in; a standalone entry has none.
   */
  createEntry (title, body = '', { mode = 'standalone', sessionId = null, prompt = null, tags = [] } = {}) {
    checkStr('title', title)
    checkStr('body', body)
    if (!MODES.includes(mode)) throw new RangeError(`mode must be one of ${MODES.join(', ')}, not ${JSON.stringify(mode)}`)
    if (mode === 'in-session') {
      if (sessionId === null || sessionId === undefined) throw new RangeError('an in-session entry needs a sessionId')
      checkStr('sessionId', sessionId, { allowEmpty: false })
    } else if (sessionId !== null && sessionId !== undefined) {
      throw new RangeError('a standalone entry has no sessionId')
    }
    if (prompt !== null && prompt !== undefined) checkStr('prompt', prompt)
    const tagList = unique([...tags].map((tag) => checkStr('tag', tag, { allowEmpty: false })))
    const id = this._newId()
    const stamp = this._stamp()
    transact(this.doc, () => {
      const entry = new Y.Map()
      entry.set('title', title)
      entry.set('body', new Y.Text(body))
      entry.set('created_at', stamp)
      entry.set('updated_at', stamp)
      entry.set('mode', mode)
      entry.set('session_id', sessionId ?? null)
      entry.set('prompt', prompt ?? null)
      entry.set('tags', Y.Array.from(tagList))
      this._entries.set(id, entry)
    })
    return id
  }

  /** Set an entry's title (last writer wins). */
  setTitle (entryId, title) {
    checkStr('title', title)
    const entry = this._entryMap(entryId)
    const stamp = this._stamp()
    transact(this.doc, () => {
      entry.set('title', title)
      entry.set('updated_at', stamp)
    })
  }

  /** Delete `delete` characters at `index` of the body, then insert `insert` (JS indexes). */
  editBody (entryId, index, { delete: remove = 0, insert = '' } = {}) {
    const entry = this._entryMap(entryId)
    const stamp = this._stamp()
    transact(this.doc, () => {
      spliceText(entry.get('body'), index, remove, insert) // validates before writing
      entry.set('updated_at', stamp)
    })
  }

  /** Replace the whole body with `body`, as the smallest splice (keeps concurrent edits around it). */
  setBody (entryId, body) {
    checkStr('body', body)
    const current = this._entryMap(entryId).get('body').toString()
    if (current === body) return
    const { index, remove, insert } = diffStrings(current, body)
    this.editBody(entryId, index, { delete: remove, insert })
  }

  /** Append `tag` unless present; return whether it was added. */
  addTag (entryId, tag) {
    checkStr('tag', tag, { allowEmpty: false })
    const entry = this._entryMap(entryId)
    const tags = entry.get('tags')
    if (tags.toArray().includes(tag)) return false
    const stamp = this._stamp()
    transact(this.doc, () => {
      tags.push([tag])
      entry.set('updated_at', stamp)
    })
    return true
  }

  /** Remove every copy of `tag`; return whether there was one. */
  removeTag (entryId, tag) {
    const entry = this._entryMap(entryId)
    const tags = entry.get('tags')
    const positions = tags.toArray().flatMap((value, i) => (value === tag ? [i] : []))
    if (!positions.length) return false
    const stamp = this._stamp()
    transact(this.doc, () => {
      for (const i of positions.reverse()) tags.delete(i, 1)
      entry.set('updated_at', stamp)
    })
    return true
  }

  /** Remove an entry; concurrent edits to it are dropped once peers sync. */
  deleteEntry (entryId) {
    this._entryMap(entryId)
    transact(this.doc, () => this._entries.delete(entryId))
  }

  /** Whether an entry with this id exists. */
  has (entryId) {
    return this._entries.get(entryId) instanceof Y.Map
  }

  /** The entry's Y.Text body, for binding an editor to it. */
  bodyText (entryId) {
    return this._entryMap(entryId).get('body')
  }

  /** One entry as plain values, with its `id` and de-duplicated `tags`. */
  entry (entryId) {
    return entryView(entryId, this._entryMap(entryId))
  }

  /** All entries (see `entry`), oldest first, ties broken by id. */
  entries () {
    const views = []
    for (const [key, value] of this._entries.entries()) {
      if (value instanceof Y.Map) views.push(entryView(key, value))
    }
    return views.sort((a, b) => compareStrings(String(a.created_at), String(b.created_at)) || compareStrings(a.id, b.id))
  }

  /** The whole document as plain JSON values, keys sorted, nothing cleaned up (= Python's). */
  toJSON () {
    return { meta: plain(this._meta), entries: plain(this._entries) }
  }

  _entryMap (entryId) {
    const entry = typeof entryId === 'string' ? this._entries.get(entryId) : undefined
    if (!(entry instanceof Y.Map)) throw new RangeError(`unknown entry id ${JSON.stringify(entryId)}`)
    return entry
  }

  _stamp () {
    return isoUtc(this._now())
  }
}

function entryView (id, entry) {
  const view = plain(entry)
  view.id = id
  view.tags = unique(view.tags ?? [])
  return view
}

function unique (values) {
  return [...new Set(values)]
}

/** The one splice turning `before` into `after`: common prefix and suffix kept. */
export function diffStrings (before, after) {
  let start = 0
  const max = Math.min(before.length, after.length)
  while (start < max && before.charCodeAt(start) === after.charCodeAt(start)) start++
  let end = 0
  while (end < max - start &&
    before.charCodeAt(before.length - 1 - end) === after.charCodeAt(after.length - 1 - end)) end++
  // Never split a surrogate pair.
  if (start > 0 && isHighSurrogate(before.charCodeAt(start - 1))) start--
  if (end > 0 && isLowSurrogate(before.charCodeAt(before.length - end))) end--
  return {
    index: start,
    remove: before.length - start - end,
    insert: after.slice(start, after.length - end)
  }
}

const isHighSurrogate = (code) => code >= 0xd800 && code <= 0xdbff
const isLowSurrogate = (code) => code >= 0xdc00 && code <= 0xdfff
