// A corpus of Yjs v1 updates written by stock yjs, one for every kind of struct and content a
// browser can send, for tests/test_update_format.py and tests/test_update_fuzz.py.
//
// Usage: node update_corpus.mjs          (no arguments, no network, exits 0)
//
// Output: one JSON line per update: {"label": "...", "update": "<base64>", "roots": {name:
// "Text"|"Map"|"Array"|"XmlFragment"}, "valid": true|false}. `valid: false` marks updates that
// yjs writes but yrs reads differently, which the strict decoder refuses (Y.XmlHook). Client
// ids are fixed so that runs are reproducible.

import * as Y from 'yjs'

const emit = (label, update, roots, valid = true) => {
  const line = { label, update: Buffer.from(update).toString('base64'), roots, valid }
  process.stdout.write(JSON.stringify(line) + '\n')
}

// A fresh document with a fixed client id, and its updates recorded one per transaction.
const recorded = (clientID, opts = {}) => {
  const doc = new Y.Doc(opts)
  doc.clientID = clientID
  const updates = []
  doc.on('update', (u) => updates.push(u))
  return { doc, updates }
}

// Every lib0 Any kind: undefined, null, small and large integers, floats (32- and 64-bit
// encodings), bigint, booleans, strings (astral too), objects, arrays, binary.
const anyValues = [
  undefined, null, 0, -1, 63, 64, -8191, 2147483647, -2147483648, 2 ** 40, -(2 ** 52),
  0.5, -1.25, 3.141592653589793, 1e300, -0, NaN, Infinity,
  12345678901234567890n, -5n, true, false, '', 'plain', 'héllo 🌙 wörld',
  { a: 1, b: [true, null, 'x'], c: { d: { e: 'deep' } } }, [], {}, [[1, [2, [3]]]],
  new Uint8Array([0, 1, 2, 255])
]

function maps () {
  const { doc, updates } = recorded(101)
  const m = doc.getMap('m')
  doc.transact(() => anyValues.forEach((v, i) => m.set(`k${i}`, v)))
  m.set('k0', 'overwritten') // ContentDeleted of the old value in later states
  m.delete('k1')
  m.set('bin', new Uint8Array([9, 8, 7])) // ContentBinary
  updates.forEach((u, i) => emit(`map_${i}`, u, { m: 'Map' }))
  emit('map_state', Y.encodeStateAsUpdate(doc), { m: 'Map' })
}

function arrays () {
  const { doc, updates } = recorded(102)
  const a = doc.getArray('a')
  // Array elements cannot be undefined or bigint themselves; inside an object they can.
  const plain = anyValues.filter((v) => v !== undefined && typeof v !== 'bigint')
  a.insert(0, [...plain, { big: -(2n ** 63n), none: undefined }])
  a.push([new Uint8Array([1, 2])])
  a.delete(3, 5)
  a.insert(2, ['between'])
  updates.forEach((u, i) => emit(`array_${i}`, u, { a: 'Array' }))
  emit('array_state', Y.encodeStateAsUpdate(doc), { a: 'Array' })
}

function texts () {
  const { doc, updates } = recorded(103)
  const t = doc.getText('t')
  t.insert(0, 'Hello 🌙 world, ünïcödé')
  t.format(0, 5, { bold: true, link: { href: 'https://example.com', n: [1, 2] } })
  t.insertEmbed(6, { image: 'https://example.com/a.png', size: [10, 20] }) // ContentEmbed
  t.insert(3, 'x', { italic: true })
  t.delete(1, 4)
  t.format(2, 3, { bold: null }) // a Format with JSON null
  t.applyDelta([{ retain: 2 }, { insert: '🌙🌙', attributes: { code: true } }])
  updates.forEach((u, i) => emit(`text_${i}`, u, { t: 'Text' }))
  emit('text_state', Y.encodeStateAsUpdate(doc), { t: 'Text' })
}

function nested () {
  const { doc, updates } = recorded(104)
  const root = doc.getMap('root')
  const inner = new Y.Map()
  root.set('inner', inner)
  const list = new Y.Array()
  inner.set('list', list)
  const text = new Y.Text('nested text')
  list.push([text, new Y.Map([['x', 1]]), new Y.Array()])
  text.insert(0, '>> ')
  root.delete('gone') // nothing to delete: no update
  root.set('temp', new Y.Map([['a', 'b']]))
  root.delete('temp') // deleted type: GC'd children
  updates.forEach((u, i) => emit(`nested_${i}`, u, { root: 'Map' }))
  emit('nested_state', Y.encodeStateAsUpdate(doc), { root: 'Map' })
}

function xml () {
  const { doc, updates } = recorded(105)
  const frag = doc.getXmlFragment('prosemirror')
  const p = new Y.XmlElement('paragraph')
  p.setAttribute('class', 'lead')
  const t = new Y.XmlText()
  t.insert(0, 'xml text', { bold: true })
  p.insert(0, [t])
  const quote = new Y.XmlElement('blockquote')
  quote.insert(0, [new Y.XmlElement('paragraph')])
  frag.insert(0, [p, quote])
  t.delete(0, 4)
  updates.forEach((u, i) => emit(`xml_${i}`, u, { prosemirror: 'XmlFragment' }))
  emit('xml_state', Y.encodeStateAsUpdate(doc), { prosemirror: 'XmlFragment' })

  const hooked = recorded(106)
  hooked.doc.getXmlFragment('h').insert(0, [new Y.XmlHook('my-hook')])
  emit('xml_hook', hooked.updates[0], { h: 'XmlFragment' }, false)
}

function subdocs () {
  const { doc, updates } = recorded(107)
  const docs = doc.getMap('docs')
  docs.set('a', new Y.Doc({ guid: 'sub-a' }))
  docs.set('b', new Y.Doc({ guid: 'sub-b', autoLoad: true, meta: { title: 'B' } }))
  const arr = doc.getArray('list')
  arr.push([new Y.Doc({ guid: 'sub-c', gc: false })])
  docs.delete('a')
  updates.forEach((u, i) => emit(`subdoc_${i}`, u, { docs: 'Map', list: 'Array' }))
  emit('subdoc_state', Y.encodeStateAsUpdate(doc), { docs: 'Map', list: 'Array' })
}

function merged () {
  // Two replicas editing the same text; merges that leave a gap in one client's clocks
  // (mergeUpdates writes a Skip) and deletions of another client's content.
  const a = recorded(201)
  const b = recorded(202)
  const ta = a.doc.getText('t')
  const tb = b.doc.getText('t')
  ta.insert(0, 'one ')
  ta.insert(4, 'two ')
  ta.insert(8, 'three ')
  Y.applyUpdate(b.doc, Y.encodeStateAsUpdate(a.doc))
  tb.delete(0, 4)
  tb.insert(0, 'zero ')
  emit('merged_skip', Y.mergeUpdates([a.updates[0], a.updates[2]]), { t: 'Text' })
  emit('merged_all', Y.mergeUpdates([...a.updates, ...b.updates]), { t: 'Text' })
  emit('remote_delete', b.updates[0], { t: 'Text' })
  Y.applyUpdate(a.doc, Y.encodeStateAsUpdate(b.doc))
  emit('diff', Y.encodeStateAsUpdate(a.doc, Y.encodeStateVector(b.doc)), { t: 'Text' })
  emit('both_state', Y.encodeStateAsUpdate(a.doc), { t: 'Text' })
  emit('empty', Y.encodeStateAsUpdate(new Y.Doc()), {})
}

function gc () {
  // With gc on (the default) deleted content becomes GC structs / ContentDeleted in states.
  const { doc } = recorded(108)
  const a = doc.getArray('a')
  a.insert(0, [new Y.Map([['x', new Y.Text('gone')]]), 'kept'])
  a.delete(0, 1)
  const t = doc.getText('t')
  t.insert(0, 'abcdef')
  t.delete(1, 3)
  emit('gc_state', Y.encodeStateAsUpdate(doc), { a: 'Array', t: 'Text' })
  const kept = recorded(109, { gc: false })
  kept.doc.getText('t').insert(0, 'abcdef')
  kept.doc.getText('t').delete(1, 3)
  emit('no_gc_state', Y.encodeStateAsUpdate(kept.doc), { t: 'Text' })
}

function bigClient () {
  // Client ids are random uint32s in yjs; the largest varint form must round-trip too.
  const { doc, updates } = recorded(4294967295)
  doc.getText('t').insert(0, 'big client')
  emit('big_client', updates[0], { t: 'Text' })
}

maps()
arrays()
texts()
nested()
xml()
subdocs()
merged()
gc()
bigClient()
