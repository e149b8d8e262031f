// The journal/1 and canvas/1 helpers: the structure they write (the same as crdt/schemas in
// Python, which tests/test_js_sdk.py checks across the real daemon) and what they refuse.

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'

import * as Y from 'yjs'

import { Canvas, Journal, NANOID_ALPHABET, diffStrings, isoUtc, newId } from '../src/index.js'

const fixedClock = (...stamps) => {
  let i = 0
  return () => new Date(stamps[Math.min(i++, stamps.length - 1)])
}
const ids = (...values) => {
  let i = 0
  return () => values[i++]
}

describe('common', () => {
  test('ids are 21-character nanoids over the Python alphabet', () => {
    const seen = new Set()
    for (let i = 0; i < 200; i++) {
      const id = newId()
      assert.equal(id.length, 21)
      for (const ch of id) assert.ok(NANOID_ALPHABET.includes(ch))
      seen.add(id)
    }
    assert.equal(seen.size, 200)
    assert.equal(NANOID_ALPHABET, 'useandom-26T198340PX75pxJACKVERYMINDBUSHWOLF_GQZbfghjklqvwyzrict')
  })

  test('timestamps are ISO 8601 UTC with milliseconds, as Python writes them', () => {
    assert.equal(isoUtc(new Date(Date.UTC(2024, 4, 1, 12, 0, 0, 7))), '2024-05-01T12:00:00.007Z')
    assert.throws(() => isoUtc(new Date('nope')), TypeError)
  })

  test('diffStrings finds the one splice and never splits a surrogate pair', () => {
    assert.deepEqual(diffStrings('hello world', 'hello brave world'), { index: 6, remove: 0, insert: 'brave ' })
    assert.deepEqual(diffStrings('abc', 'abc'), { index: 3, remove: 0, insert: '' })
    assert.deepEqual(diffStrings('abc', ''), { index: 0, remove: 3, insert: '' })
    const { index, remove, insert } = diffStrings('a😀b', 'a😃b')
    assert.equal('a😀b'.slice(0, index) + insert + 'a😀b'.slice(index + remove), 'a😃b')
    assert.equal(remove, 2)
  })
})

describe('journal/1', () => {
  test('writes the documented structure', () => {
    const journal = Journal.create('Dream log', {
      now: fixedClock('2024-05-01T12:00:00.000Z', '2024-05-01T12:05:00.000Z'),
      newId: ids('entry-000000000000001')
    })
    const id = journal.createEntry('Monday', 'Flying again', {
      mode: 'in-session', sessionId: 'session-1', prompt: 'What did you see?', tags: ['dream', 'dream', 'sky']
    })
    journal.editBody(id, 0, { insert: 'Note: ' })
    assert.deepEqual(journal.toJSON(), {
      meta: { schema: 'journal/1', title: 'Dream log' },
      entries: {
        'entry-000000000000001': {
          body: 'Note: Flying again',
          created_at: '2024-05-01T12:00:00.000Z',
          mode: 'in-session',
          prompt: 'What did you see?',
          session_id: 'session-1',
          tags: ['dream', 'sky'],
          title: 'Monday',
          updated_at: '2024-05-01T12:05:00.000Z'
        }
      }
    })
    // The shared types are the ones the schema names.
    const entry = journal.doc.getMap('entries').get(id)
    assert.ok(entry.get('body') instanceof Y.Text)
    assert.ok(entry.get('tags') instanceof Y.Array)
    assert.equal(Object.keys(journal.toJSON().entries[id]).join(), 'body,created_at,mode,prompt,session_id,tags,title,updated_at')
  })

  test('tags behave as a set for the application, the raw document keeps both copies', () => {
    const a = Journal.create('j')
    const id = a.createEntry('t')
    const b = new Journal(new Y.Doc())
    Y.applyUpdate(b.doc, Y.encodeStateAsUpdate(a.doc))
    assert.equal(a.addTag(id, 'x'), true)
    assert.equal(a.addTag(id, 'x'), false)
    b.addTag(id, 'x')
    Y.applyUpdate(a.doc, Y.encodeStateAsUpdate(b.doc))
    assert.deepEqual(a.toJSON().entries[id].tags, ['x', 'x'])
    assert.deepEqual(a.entry(id).tags, ['x'])
    assert.equal(a.removeTag(id, 'x'), true)
    assert.deepEqual(a.toJSON().entries[id].tags, [])
    assert.equal(a.removeTag(id, 'x'), false)
  })

  test('entries are oldest first, ties broken by id; setBody splices', () => {
    const journal = Journal.create('j', {
      now: fixedClock('2024-01-02T00:00:00.000Z', '2024-01-01T00:00:00.000Z', '2024-01-01T00:00:00.000Z'),
      newId: ids('c', 'b', 'a')
    })
    journal.createEntry('late')
    journal.createEntry('tie b')
    journal.createEntry('tie a')
    assert.deepEqual(journal.entries().map((e) => e.id), ['a', 'b', 'c'])
    const body = journal.bodyText('a')
    journal.setBody('a', 'hello world')
    journal.setBody('a', 'hello brave world')
    assert.equal(body.toString(), 'hello brave world')
    journal.deleteEntry('a')
    assert.equal(journal.has('a'), false)
  })

  test('refuses what Python refuses', () => {
    const journal = Journal.create('j')
    assert.throws(() => journal.createEntry('t', '', { mode: 'in-session' }), /needs a sessionId/)
    assert.throws(() => journal.createEntry('t', '', { sessionId: 's' }), /standalone entry has no sessionId/)
    assert.throws(() => journal.createEntry('t', '', { mode: 'other' }), /mode must be/)
    assert.throws(() => journal.createEntry(5), /title must be a string/)
    assert.throws(() => journal.createEntry('bad \uD800 surrogate'), /lone surrogate/)
    assert.throws(() => journal.createEntry('t', '', { tags: [''] }), /tag must not be empty/)
    assert.throws(() => journal.setTitle('missing', 'x'), /unknown entry id/)
    const id = journal.createEntry('t', 'abc')
    assert.throws(() => journal.editBody(id, 4, { insert: 'x' }), /outside the text/)
    assert.throws(() => journal.editBody(id, 1, { delete: 5 }), /cannot delete/)
    const canvas = new Y.Doc()
    canvas.getMap('meta').set('schema', 'canvas/1')
    assert.throws(() => new Journal(canvas), /schema "canvas\/1"/)
  })
})

describe('canvas/1', () => {
  const make = () => Canvas.create('Reading', {
    template: 'tarot-3', background: '#fffdf6', author: 'ana',
    now: fixedClock('2024-05-01T12:00:00.000Z'),
    newId: ids('card-00000000000000001', 'stroke-000000000000001', 'shape-0000000000000001', 'text-00000000000000001', 'conn-00000000000000001')
  })

  test('writes the documented structure', () => {
    const canvas = make()
    const card = canvas.addCard('tarot', 'the-fool', 10, 20)
    const stroke = canvas.addStroke(5, 6, [0, 0, 0.5, 10, 4, 0.7], { width: 3, color: '#222222' })
    canvas.extendStroke(stroke, [-2, 9, 1])
    const shape = canvas.addShape('ellipse', 0, 0, 50, 40, { rotation: -90 })
    const text = canvas.addText('Hi', 1.5, 2.25)
    canvas.editText(text, 2, { insert: ' there' })
    const connector = canvas.addConnector(card, shape, { color: '#ff0000' })
    const base = { author: 'ana', color: null, created_at: '2024-05-01T12:00:00.000Z', rotation: 0 }
    assert.deepEqual(canvas.toJSON(), {
      meta: { background: '#fffdf6', schema: 'canvas/1', template: 'tarot-3', title: 'Reading' },
      elements: {
        [card]: { ...base, card_id: 'the-fool', deck: 'tarot', h: 180, kind: 'card', w: 120, x: 10, y: 20, z: 0 },
        [stroke]: { ...base, color: '#222222', h: 9, kind: 'stroke', points: [0, 0, 0.5, 10, 4, 0.7, -2, 9, 1], w: 12, width: 3, x: 5, y: 6, z: 1 },
        [shape]: { ...base, h: 40, kind: 'shape', rotation: 270, shape: 'ellipse', w: 50, x: 0, y: 0, z: 2 },
        [text]: { ...base, h: 40, kind: 'text', text: 'Hi there', w: 200, x: 1.5, y: 2.25, z: 3 },
        [connector]: { ...base, color: '#ff0000', from: card, h: 0, kind: 'connector', to: shape, w: 0, x: 0, y: 0, z: 4 }
      }
    })
    assert.ok(canvas.elementsMap.get(stroke).get('points') instanceof Y.Array)
    assert.ok(canvas.elementsMap.get(text).get('text') instanceof Y.Text)
  })

  test('moves, rotates modulo 360 as Python does, paints by z then id', () => {
    const canvas = make()
    const card = canvas.addCard('tarot', 'the-fool', 0, 0)
    const stroke = canvas.addStroke(0, 0)
    canvas.move(card, 40.5, -3)
    canvas.rotate(card, 725)
    assert.equal(canvas.element(card).rotation, 5)
    canvas.rotate(card, -1e-20)
    assert.equal(canvas.element(card).rotation, 0)
    canvas.rotate(card, -720)
    assert.ok(Object.is(canvas.element(card).rotation, 0))
    assert.deepEqual([canvas.element(card).x, canvas.element(card).y], [40.5, -3])
    assert.deepEqual(canvas.elements().map((e) => e.id), [card, stroke])
    canvas.bringToFront(card)
    assert.deepEqual(canvas.elements().map((e) => e.id), [stroke, card])
    canvas.resize(card, 60, 90)
    canvas.setColor(card, '#abcdef')
    assert.deepEqual([canvas.element(card).w, canvas.element(card).h, canvas.element(card).color], [60, 90, '#abcdef'])
  })

  test('delete removes the connectors of an element', () => {
    const canvas = make()
    const a = canvas.addCard('tarot', 'a', 0, 0)
    const b = canvas.addShape('rect', 0, 0, 1, 1)
    const c = canvas.addText('t', 0, 0)
    const ab = canvas.addConnector(a, b)
    canvas.addConnector(b, c)
    assert.deepEqual(canvas.delete(a).sort(), [a, ab].sort())
    assert.equal(canvas.elements().length, 3)
  })

  test('refuses what Python refuses', () => {
    const canvas = make()
    const card = canvas.addCard('tarot', 'x', 0, 0)
    const stroke = canvas.addStroke(0, 0)
    const connector = canvas.addConnector(card, stroke)
    assert.throws(() => canvas.addCard('tarot', 'x', NaN, 0), /finite/)
    assert.throws(() => canvas.addCard('tarot', 'x', true, 0), /must be a number/)
    assert.throws(() => canvas.addCard('tarot', 'x', 10n, 0), /must be a number/)
    assert.throws(() => canvas.addCard('', 'x', 0, 0), /deck must not be empty/)
    assert.throws(() => canvas.addShape('rect', 0, 0, -1, 1), /must not be negative/)
    assert.throws(() => canvas.addStroke(0, 0, [1, 2]), /triples/)
    assert.throws(() => canvas.extendStroke(card, [1, 2, 3]), /is a card, not a stroke/)
    assert.throws(() => canvas.move(connector, 1, 1), /cannot change that on a connector/)
    assert.throws(() => canvas.resize(stroke, 1, 1), /cannot change that on a stroke/)
    assert.throws(() => canvas.addConnector(card, card), /two different/)
    assert.throws(() => canvas.addConnector(card, connector), /cannot connect connector/)
    assert.throws(() => canvas.setColor(card, ''), /color must not be empty/)
    assert.throws(() => canvas.move('nope', 0, 0), /unknown element id/)
    assert.throws(() => new Canvas(Journal.create('j').doc), /schema "journal\/1"/)
  })

  test('two replicas converge after concurrent edits', () => {
    const a = make()
    const card = a.addCard('tarot', 'x', 0, 0)
    const b = new Canvas(new Y.Doc(), { author: 'bo' })
    Y.applyUpdate(b.doc, Y.encodeStateAsUpdate(a.doc))
    a.move(card, 10, 10)
    b.move(card, 20, 20)
    b.addText('bo was here', 5, 5)
    Y.applyUpdate(a.doc, Y.encodeStateAsUpdate(b.doc))
    Y.applyUpdate(b.doc, Y.encodeStateAsUpdate(a.doc))
    assert.deepEqual(a.toJSON(), b.toJSON())
  })
})
