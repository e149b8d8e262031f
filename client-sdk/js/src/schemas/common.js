// Helpers shared by the journal/1 and canvas/1 wrappers (the JS twin of crdt/schemas/_common.py).
//
// Ids are 21-character nanoids over the same alphabet as Python's `new_id()` (and the `nanoid`
// package), drawn from `crypto.getRandomValues`, so clients that create entries or elements
// offline never collide.
//
// Timestamps are `Date.prototype.toISOString()` strings (`2024-05-01T12:00:00.000Z`), exactly what
// Python's `iso_utc()` writes: fixed width, so string order is time order on every client.
//
// Numbers: every numeric value must be a finite JS number; booleans, BigInts, NaN and infinities
// are refused (Python refuses the same, so both sides write one shape).
//
// Text: Y.Text indexes count UTF-16 code units in JS (JS string indexes), Python's helpers count
// code points. Each side indexes its own strings; the document is the same.

import * as Y from 'yjs'

export const NANOID_ALPHABET = 'useandom-26T198340PX75pxJACKVERYMINDBUSHWOLF_GQZbfghjklqvwyzrict'
const NANOID_SIZE = 21

/** A random 21-character nanoid (URL-safe), safe to mint offline. */
export function newId () {
  const bytes = new Uint8Array(NANOID_SIZE)
  globalThis.crypto.getRandomValues(bytes)
  let id = ''
  for (const byte of bytes) id += NANOID_ALPHABET[byte & 63]
  return id
}

/** The current time (the default clock). */
export const utcNow = () => new Date()

/** Format a Date like Python's `iso_utc`: `YYYY-MM-DDTHH:MM:SS.mmmZ`. */
export function isoUtc (moment) {
  if (!(moment instanceof Date) || Number.isNaN(moment.getTime())) {
    throw new TypeError('timestamps must be valid Date objects')
  }
  return moment.toISOString()
}

/** `value` if it is a finite number, else throw (the number rule above). */
export function asNumber (name, value) {
  if (typeof value !== 'number') {
    throw new TypeError(`${name} must be a number, not ${value === null ? 'null' : typeof value}`)
  }
  if (!Number.isFinite(value)) throw new RangeError(`${name} must be finite, not ${value}`)
  return value
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/** `value` if it is a string that UTF-8 (and so Yjs and Python) can carry, else throw. */
export function checkStr (name, value, { allowEmpty = true } = {}) {
  if (typeof value !== 'string') {
    throw new TypeError(`${name} must be a string, not ${value === null ? 'null' : typeof value}`)
  }
  if (!allowEmpty && !value) throw new RangeError(`${name} must not be empty`)
  if (LONE_SURROGATE.test(value)) throw new RangeError(`${name} contains a lone surrogate`)
  return value
}

/** Delete `remove` characters at `index` of a Y.Text, then insert `insert` there (JS indexes). */
export function spliceText (text, index, remove, insert) {
  if (!Number.isInteger(index)) throw new TypeError('index must be an integer')
  if (!Number.isInteger(remove)) throw new TypeError('delete must be an integer')
  checkStr('insert', insert)
  const length = text.length
  if (index < 0 || index > length) {
    throw new RangeError(`index ${index} is outside the text (length ${length})`)
  }
  if (remove < 0 || index + remove > length) {
    throw new RangeError(`cannot delete ${remove} characters at ${index} of ${length}`)
  }
  if (remove) text.delete(index, remove)
  if (insert) text.insert(index, insert)
}

/** A shared type as plain JSON values: Map → object (sorted keys), Array → list, Text → string. */
export function plain (value) {
  if (value instanceof Y.Map) {
    const out = {}
    for (const key of [...value.keys()].sort(compareStrings)) out[key] = plain(value.get(key))
    return out
  }
  if (value instanceof Y.Array) return value.toArray().map(plain)
  if (value instanceof Y.Text) return value.toString()
  if (typeof value === 'bigint') return Number(value)
  return value
}

/** Code-point order, as Python sorts strings (ids and keys are ASCII, where it equals `<`). */
export function compareStrings (a, b) {
  if (a === b) return 0
  const left = [...a]
  const right = [...b]
  for (let i = 0; i < Math.min(left.length, right.length); i++) {
    const diff = left[i].codePointAt(0) - right[i].codePointAt(0)
    if (diff) return diff
  }
  return left.length - right.length
}

/** Run `fn` in one transaction of `doc` (one Yjs update), joining an open one if any. */
export function transact (doc, fn, origin) {
  let result
  doc.transact(() => { result = fn() }, origin)
  return result
}
