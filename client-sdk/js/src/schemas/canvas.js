// Typed helpers for the `canvas/1` schema (DESIGN.md §1.8): the JS twin of
// crdt/schemas/canvas.py, writing exactly the same structure.
//
//   meta:     Y.Map {schema: "canvas/1", title: string, template: string, background: string}
//   elements: Y.Map {<element id>: Y.Map {
//       kind: "card" | "stroke" | "shape" | "text" | "connector",
//       x, y, w, h, rotation, z: number, color: string | null,
//       author: string | null, created_at: string,
//       // card: deck, card_id   stroke: points (Y.Array<number>, flat x,y,pressure), width
//       // shape: shape          text: text (Y.Text)        connector: from, to
//   }}
//
// Geometry as in Python: (x, y) is the top-left corner; rotation in degrees, clockwise, kept in
// [0, 360); stroke points are relative to (x, y) and a stroke's w/h are its points' bounding box;
// a connector's geometry follows its ends, so it is stored as zeros and cannot be moved. Paint
// order is ascending z, ties broken by id. Every mutating method is one transaction.

import * as Y from 'yjs'

import { asNumber, checkStr, compareStrings, isoUtc, newId, plain, spliceText, transact, utcNow } from './common.js'

export const CANVAS_SCHEMA = 'canvas/1'
export const KINDS = Object.freeze(['card', 'stroke', 'shape', 'text', 'connector'])

export class Canvas {
  /** Wrap `doc`; `author` is stamped on the elements it adds. Throws on another schema. */
  constructor (doc, { author = null, now = utcNow, newId: makeId = newId } = {}) {
    if (author !== null) checkStr('author', author)
    this.doc = doc
    this.author = author
    this._now = now
    this._newId = makeId
    this._meta = doc.getMap('meta')
    this._elements = doc.getMap('elements')
    const schema = this._meta.get('schema')
    if (schema !== undefined && schema !== CANVAS_SCHEMA) {
      throw new Error(`document has schema ${JSON.stringify(schema)}, not "${CANVAS_SCHEMA}"`)
    }
  }

  /** A canvas on a fresh Y.Doc, with its `meta` written. */
  static create (title = '', { template = 'blank', background = '#ffffff', ...options } = {}) {
    const canvas = new Canvas(new Y.Doc(), options)
    canvas.init(title, { template, background })
    return canvas
  }

  /** `meta` as plain values (empty before it has arrived). */
  get meta () {
    return plain(this._meta)
  }

  get metaMap () { return this._meta }
  get elementsMap () { return this._elements }

  /** Write `meta`. Safe on replicas that do it concurrently (last writer wins). */
  init (title = '', { template = 'blank', background = '#ffffff' } = {}) {
    const meta = { title, template, background }
    for (const [name, value] of Object.entries(meta)) checkStr(name, value)
    transact(this.doc, () => {
      this._meta.set('schema', CANVAS_SCHEMA)
      for (const [name, value] of Object.entries(meta)) this._meta.set(name, value)
    })
  }

  /** Set the canvas title. */
  rename (title) { this._setMeta('title', title) }

  /** Set the canvas background (a CSS colour or a background name). */
  setBackground (background) { this._setMeta('background', background) }

  /** Place card `cardId` of `deck`; return the new element id. */
  addCard (deck, cardId, x, y, { w = 120, h = 180, rotation = 0, color = null } = {}) {
    const fields = {
      deck: checkStr('deck', deck, { allowEmpty: false }),
      card_id: checkStr('card_id', cardId, { allowEmpty: false })
    }
    return this._add('card', x, y, w, h, rotation, color, fields)
  }

  /** Start a stroke at (x, y) with relative x,y,pressure `points`; return its id. */
  addStroke (x, y, points = [], { width = 2, color = null } = {}) {
    const values = checkPoints(points)
    const [w, h] = extent(values)
    const fields = { points: Y.Array.from(values), width: positive('width', width) }
    return this._add('stroke', x, y, w, h, 0, color, fields)
  }

  /** Append x,y,pressure triples to a stroke while it is being drawn. */
  extendStroke (elementId, points) {
    const values = checkPoints(points)
    const element = this._element(elementId, 'stroke')
    const array = element.get('points')
    const [w, h] = extent(array.toArray().concat(values))
    transact(this.doc, () => {
      array.push(values)
      element.set('w', w)
      element.set('h', h)
    })
  }

  /** Add a shape ("rect", "ellipse", ... as the client knows them); return its id. */
  addShape (shape, x, y, w, h, { rotation = 0, color = null } = {}) {
    const fields = { shape: checkStr('shape', shape, { allowEmpty: false }) }
    return this._add('shape', x, y, w, h, rotation, color, fields)
  }

  /** Add a text box whose `text` is a collaborative Y.Text; return its id. */
  addText (text, x, y, { w = 200, h = 40, rotation = 0, color = null } = {}) {
    const fields = { text: new Y.Text(checkStr('text', text)) }
    return this._add('text', x, y, w, h, rotation, color, fields)
  }

  /** Delete `delete` characters at `index` of a text element, then insert `insert`. */
  editText (elementId, index, { delete: remove = 0, insert = '' } = {}) {
    const element = this._element(elementId, 'text')
    transact(this.doc, () => spliceText(element.get('text'), index, remove, insert))
  }

  /** Connect two (non-connector) elements; return the connector id. */
  addConnector (fromId, toId, { color = null } = {}) {
    if (fromId === toId) throw new RangeError('a connector needs two different elements')
    for (const end of [fromId, toId]) {
      if (this._element(end).get('kind') === 'connector') {
        throw new RangeError(`cannot connect connector ${JSON.stringify(end)}`)
      }
    }
    return this._add('connector', 0, 0, 0, 0, 0, color, { from: fromId, to: toId })
  }

  /** Move an element's top-left corner to (x, y). */
  move (elementId, x, y) {
    this._set(elementId, { x: asNumber('x', x), y: asNumber('y', y) }, ['connector'])
  }

  /** Set a card's, shape's or text box's size (strokes follow their points). */
  resize (elementId, w, h) {
    this._set(elementId, { w: positive('w', w), h: positive('h', h) }, ['connector', 'stroke'])
  }

  /** Set the rotation in degrees, clockwise; stored modulo 360. */
  rotate (elementId, rotation) {
    this._set(elementId, { rotation: degrees(rotation) }, ['connector'])
  }

  /** Set an element's colour (a CSS colour), or null for the client's default. */
  setColor (elementId, color) {
    this._set(elementId, { color: checkColor(color) })
  }

  /** Put an element above every other one. */
  bringToFront (elementId) {
    this._element(elementId)
    this._set(elementId, { z: this._topZ(elementId) })
  }

  /** Remove an element and the connectors attached to it; return the removed ids. */
  delete (elementId) {
    this._element(elementId)
    const doomed = [elementId]
    for (const [key, value] of this._elements.entries()) {
      if (key !== elementId && value instanceof Y.Map && value.get('kind') === 'connector' &&
        (value.get('from') === elementId || value.get('to') === elementId)) doomed.push(key)
    }
    transact(this.doc, () => { for (const key of doomed) this._elements.delete(key) })
    return doomed
  }

  /** Whether an element with this id exists. */
  has (elementId) {
    return this._elements.get(elementId) instanceof Y.Map
  }

  /** The element's shared map (for observers and the text element's Y.Text). */
  elementMap (elementId) {
    return this._element(elementId)
  }

  /** One element as plain values, with its `id`. */
  element (elementId) {
    return { ...plain(this._element(elementId)), id: elementId }
  }

  /** All elements in paint order (ascending z, then id). */
  elements () {
    const views = []
    for (const [key, value] of this._elements.entries()) {
      if (value instanceof Y.Map) views.push({ ...plain(value), id: key })
    }
    return views.sort((a, b) => (zOf(a.z) - zOf(b.z)) || compareStrings(a.id, b.id))
  }

  /** The whole document as plain JSON values, keys sorted (= Python's `to_json()`). */
  toJSON () {
    return { meta: plain(this._meta), elements: plain(this._elements) }
  }

  _add (kind, x, y, w, h, rotation, color, fields) {
    const element = {
      kind,
      x: asNumber('x', x),
      y: asNumber('y', y),
      w: positive('w', w),
      h: positive('h', h),
      rotation: degrees(rotation),
      z: this._topZ(),
      color: checkColor(color),
      author: this.author,
      created_at: isoUtc(this._now()),
      ...fields
    }
    const id = this._newId()
    transact(this.doc, () => {
      const map = new Y.Map()
      for (const [key, value] of Object.entries(element)) map.set(key, value)
      this._elements.set(id, map)
    })
    return id
  }

  _set (elementId, values, forbid = []) {
    const element = this._element(elementId)
    const kind = element.get('kind')
    if (forbid.includes(kind)) {
      throw new RangeError(`cannot change that on a ${kind} (${JSON.stringify(elementId)})`)
    }
    transact(this.doc, () => {
      for (const [key, value] of Object.entries(values)) element.set(key, value)
    })
  }

  _setMeta (key, value) {
    checkStr(key, value)
    transact(this.doc, () => this._meta.set(key, value))
  }

  _element (elementId, kind = null) {
    const element = typeof elementId === 'string' ? this._elements.get(elementId) : undefined
    if (!(element instanceof Y.Map)) throw new RangeError(`unknown element id ${JSON.stringify(elementId)}`)
    if (kind !== null && element.get('kind') !== kind) {
      throw new RangeError(`element ${JSON.stringify(elementId)} is a ${element.get('kind')}, not a ${kind}`)
    }
    return element
  }

  _topZ (exclude = null) {
    let top = null
    for (const [key, value] of this._elements.entries()) {
      if (key === exclude || !(value instanceof Y.Map)) continue
      const z = zOf(value.get('z'))
      if (top === null || z > top) top = z
    }
    return top === null ? 0 : top + 1
  }
}

/** A tolerant read of `z`: a peer's bad value sorts as 0 rather than breaking rendering. */
function zOf (value) {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0
}

function positive (name, value) {
  const number = asNumber(name, value)
  if (number < 0) throw new RangeError(`${name} must not be negative, not ${value}`)
  return number
}

/** Python's `value % 360.0` (floored), so both sides store the same angle. */
function degrees (value) {
  const number = asNumber('rotation', value)
  const turned = ((number % 360) + 360) % 360
  return turned === 360 || Object.is(turned, -0) ? 0 : turned
}

function checkColor (value) {
  return value === null || value === undefined ? null : checkStr('color', value, { allowEmpty: false })
}

function checkPoints (points) {
  const values = [...points].map((value) => asNumber('point', value))
  if (values.length % 3) {
    throw new RangeError(`points must be x,y,pressure triples, got ${values.length} numbers`)
  }
  return values
}

function extent (values) {
  if (!values.length) return [0, 0]
  let minX = Infinity; let maxX = -Infinity; let minY = Infinity; let maxY = -Infinity
  for (let i = 0; i + 2 < values.length; i += 3) {
    minX = Math.min(minX, values[i]); maxX = Math.max(maxX, values[i])
    minY = Math.min(minY, values[i + 1]); maxY = Math.max(maxY, values[i + 1])
  }
  return [maxX - minX, maxY - minY]
}
