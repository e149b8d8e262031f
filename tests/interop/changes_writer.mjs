// Builds a journal/1 and a canvas/1 document with plain Yjs API calls, the way a JS client that
// knows only DESIGN.md §1.8 would, and prints every step's update for tests/test_changes_yjs.py.
//
// Usage: node changes_writer.mjs          (no arguments, no network, exits 0)
//
// Output: one JSON line per step, in order: {"doc": "journal"|"canvas", "label": "...",
// "update": "<base64 Yjs v1 update>"}. A step's update is everything its document emitted
// during the step, merged (Y.mergeUpdates): one transaction, or for the `*_merged` steps a
// local edit plus a concurrent one from a second replica that never saw it. Feeding a
// document's updates in order to a decoder reproduces the document. Ids and timestamps are fixed
// so that the test can name what it expects.
//
// Text indexes here are Yjs ones (UTF-16 code units); the emoji 🌙 is two of them, one
// character in Python.

import * as Y from 'yjs'

const STAMP = '2024-05-01T12:00:00.000Z'
const LATER = '2024-05-01T12:05:00.000Z'

const emit = (doc, label, update) => {
  const line = { doc, label, update: Buffer.from(update).toString('base64') }
  process.stdout.write(JSON.stringify(line) + '\n')
}

// Run `fn` and emit the updates `ydoc` produced meanwhile as one.
const stepper = (name, ydoc) => (label, fn) => {
  const seen = []
  const onUpdate = (update) => seen.push(update)
  ydoc.on('update', onUpdate)
  try {
    fn()
  } finally {
    ydoc.off('update', onUpdate)
  }
  if (seen.length === 0) throw new Error(`step ${label} changed nothing`)
  emit(name, label, Y.mergeUpdates(seen))
}

// A second replica that starts from `ydoc`, edits without seeing anything else, and hands its
// edit to `ydoc` (inside the step, so that both edits are one update).
const concurrently = (ydoc, edit) => {
  const other = new Y.Doc()
  Y.applyUpdate(other, Y.encodeStateAsUpdate(ydoc))
  const before = Y.encodeStateVector(other)
  edit(other)
  return () => Y.applyUpdate(ydoc, Y.encodeStateAsUpdate(other, before))
}

function journal () {
  const ydoc = new Y.Doc()
  const step = stepper('journal', ydoc)
  const meta = ydoc.getMap('meta')
  const entries = ydoc.getMap('entries')

  step('journal_created', () => ydoc.transact(() => {
    meta.set('schema', 'journal/1')
    meta.set('title', 'Dreams')
  }))
  step('entry_created', () => {
    entries.set('entry-1', new Y.Map([
      ['title', 'Monday'],
      ['body', new Y.Text('Moon 🌙 rising')],
      ['created_at', STAMP],
      ['updated_at', STAMP],
      ['mode', 'standalone'],
      ['session_id', null],
      ['prompt', 'What did you see?'],
      ['tags', Y.Array.from(['lucid', 'night'])]
    ]))
  })
  const entry = entries.get('entry-1')
  const body = entry.get('body')
  const touch = () => entry.set('updated_at', LATER)
  step('entry_title_changed', () => ydoc.transact(() => {
    entry.set('title', 'Monday night')
    touch()
  }))
  step('entry_text_inserted', () => ydoc.transact(() => {
    body.insert(8, 'high ') // after "Moon 🌙 " (🌙 is two UTF-16 units)
    touch()
  }))
  step('entry_text_deleted', () => ydoc.transact(() => {
    body.delete(5, 3) // "🌙 "
    touch()
  }))
  step('entry_tags_added', () => ydoc.transact(() => {
    entry.get('tags').push(['flying'])
    touch()
  }))
  step('entry_tags_removed', () => ydoc.transact(() => {
    entry.get('tags').delete(1, 1) // "night"
    touch()
  }))
  step('entry_mode_changed', () => ydoc.transact(() => {
    entry.set('mode', 'in-session')
    entry.set('session_id', 'session-7')
    touch()
  }))
  step('entry_text_merged', () => {
    const deliver = concurrently(ydoc, (other) => {
      other.getMap('entries').get('entry-1').get('body').insert(0, '[B] ')
    })
    body.insert(body.length, ' [A]')
    deliver()
  })
  step('journal_renamed', () => meta.set('title', 'Night log'))
  step('entry_created_and_deleted', () => {
    entries.set('entry-2', new Y.Map([['title', 'gone'], ['body', new Y.Text('x')]]))
    entries.set('entry-3', new Y.Map([
      ['title', 'Tuesday'],
      ['body', new Y.Text('')],
      ['created_at', LATER],
      ['updated_at', LATER],
      ['mode', 'standalone'],
      ['session_id', null],
      ['prompt', null],
      ['tags', new Y.Array()]
    ]))
    entries.delete('entry-2')
  })
  step('entry_deleted', () => entries.delete('entry-1'))
}

function canvas () {
  const ydoc = new Y.Doc()
  const step = stepper('canvas', ydoc)
  const meta = ydoc.getMap('meta')
  const elements = ydoc.getMap('elements')
  const element = (kind, z, fields) => new Y.Map([
    ['kind', kind], ['x', 10], ['y', 20], ['w', 120], ['h', 180], ['rotation', 0], ['z', z],
    ['color', null], ['author', 'node'], ['created_at', STAMP], ...fields
  ])

  step('canvas_created', () => ydoc.transact(() => {
    meta.set('schema', 'canvas/1')
    meta.set('title', 'Reading')
    meta.set('template', 'blank')
    meta.set('background', '#ffffff')
  }))
  step('card_added', () => {
    elements.set('card-1', element('card', 0, [['deck', 'tarot'], ['card_id', 'the-fool']]))
  })
  step('shape_added', () => {
    elements.set('shape-1', element('shape', 1, [['shape', 'ellipse']]))
  })
  step('text_added', () => {
    elements.set('text-1', element('text', 2, [['text', new Y.Text('Hello 🌙')]]))
  })
  step('stroke_added', () => {
    const stroke = element('stroke', 3, [
      ['points', Y.Array.from([0, 0, 0.5, 4, 3, 0.75])], ['width', 2.5]
    ])
    stroke.set('w', 4)
    stroke.set('h', 3)
    stroke.set('color', '#222222')
    elements.set('stroke-1', stroke)
  })
  const stroke = elements.get('stroke-1')
  step('stroke_extended', () => ydoc.transact(() => {
    stroke.get('points').push([8, 6, 1])
    stroke.set('w', 8)
    stroke.set('h', 6)
  }))
  step('connector_added', () => {
    elements.set('conn-1', element('connector', 4, [['from', 'card-1'], ['to', 'shape-1']]))
  })
  const card = elements.get('card-1')
  step('element_moved', () => ydoc.transact(() => {
    card.set('x', 40)
    card.set('y', 25.5)
  }))
  step('element_resized', () => ydoc.transact(() => {
    elements.get('shape-1').set('w', 60)
    elements.get('shape-1').set('h', 30)
  }))
  step('element_rotated', () => card.set('rotation', 90))
  step('element_recolored', () => elements.get('shape-1').set('color', '#ff0000'))
  step('element_reordered', () => card.set('z', 5))
  const text = elements.get('text-1').get('text')
  step('text_inserted', () => text.insert(8, '!')) // after "Hello 🌙"
  step('text_deleted', () => text.delete(0, 6)) // "Hello "
  step('canvas_meta_changed', () => meta.set('background', '#000000'))
  step('element_moved_merged', () => {
    const deliver = concurrently(ydoc, (other) => {
      other.getMap('elements').get('shape-1').set('x', 300)
    })
    card.set('color', '#00ff00')
    deliver()
  })
  step('element_deleted', () => ydoc.transact(() => {
    elements.delete('card-1')
    elements.delete('conn-1')
  }))
}

journal()
canvas()
