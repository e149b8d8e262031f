// The shared fixture of tests/test_js_sdk.py: the JS SDK writes and reads journal/1 and canvas/1
// documents through a real daemon, so that Python (crdt/schemas) can check them and the other way
// round. Prints one JSON line on stdout; on failure, a message on stderr and exit code 1.
//
//   node test/fixture.mjs write '{"url": "ws://127.0.0.1:PORT", "token": "JWT",
//                                 "journal": "alice/j", "canvas": "alice/c"}'
//       writes both documents with the JS helpers, waits until the daemon acknowledged them as
//       durable, prints {"journal": toJSON(), "canvas": toJSON(), "ids": {...}}.
//   node test/fixture.mjs read '{"url", "token", "docs": ["alice/j", ...]}'
//       opens the documents, waits until synced, prints {name: toJSON()} (journal/1 or canvas/1
//       chosen by meta.schema) and the entries()/elements() views.
//   node test/fixture.mjs live '{"url", "token", "doc": "alice/c", "expect": ID, "card": ID}'
//       opens a canvas, moves card `card` to (300, 300) and adds a text, prints
//       {"event": "edited"} once the daemon holds them, then waits until element `expect`
//       (written offline by someone else) is there and everything is saved, prints toJSON().

import WebSocket from 'ws'

import { createClient } from '../src/index.js'

const [command, raw] = process.argv.slice(2)
const config = JSON.parse(raw ?? 'null')
const TIMEOUT = config?.timeoutMs ?? 10000

const fail = (message) => {
  process.stderr.write(`fixture ${command}: ${message}\n`)
  process.exit(1)
}
const timer = setTimeout(() => fail(`timed out after ${TIMEOUT} ms`), TIMEOUT + 2000)

const client = createClient({ url: config.url, token: config.token, WebSocket, persistence: 'memory' })

async function write () {
  const jdoc = client.open(config.journal)
  const cdoc = client.open(config.canvas)
  const journal = jdoc.journal()
  journal.init('Carnet de voyage')
  const standalone = journal.createEntry('Monday', 'Wrote this on the train', { tags: ['train', 'morning'] })
  const session = journal.createEntry('שלום — session', 'مرحبا بالعالم 👋', {
    mode: 'in-session', sessionId: 'session-42', prompt: 'What did you notice?', tags: ['rtl']
  })
  journal.editBody(standalone, 0, { insert: '✍️ ' })
  journal.addTag(standalone, 'evening')
  journal.removeTag(standalone, 'morning')
  journal.setTitle(session, 'שלום — session 1')

  const canvas = cdoc.canvas({ author: 'alice' })
  canvas.init('Reading', { template: 'tarot-3', background: '#fdf6e3' })
  const card = canvas.addCard('tarot', 'the-fool', 10, 20.5, { rotation: -30, color: '#e9c46a' })
  const stroke = canvas.addStroke(100, 100, [0, 0, 0.5, 12.25, 3, 0.75], { width: 3, color: '#264653' })
  canvas.extendStroke(stroke, [20, -4, 1])
  const shape = canvas.addShape('ellipse', 200, 40, 80, 60)
  const text = canvas.addText('Hello', 50, 300, { w: 180 })
  canvas.editText(text, 5, { insert: ', world' })
  const connector = canvas.addConnector(card, shape, { color: '#999999' })
  canvas.move(shape, 210, 45)
  canvas.bringToFront(card)
  await client.whenSaved({ timeout: TIMEOUT })
  return {
    journal: journal.toJSON(),
    canvas: canvas.toJSON(),
    ids: { standalone, session, card, stroke, shape, text, connector },
    pending: [jdoc.pending, cdoc.pending],
    statuses: [jdoc.status, cdoc.status]
  }
}

async function read () {
  const out = {}
  const docs = config.docs.map((name) => client.open(name))
  await client.whenSaved({ timeout: TIMEOUT })
  for (const doc of docs) {
    const schema = doc.ydoc.getMap('meta').get('schema')
    if (schema === 'journal/1') {
      const journal = doc.journal()
      out[doc.name] = { json: journal.toJSON(), entries: journal.entries(), title: journal.title }
    } else if (schema === 'canvas/1') {
      const canvas = doc.canvas()
      out[doc.name] = { json: canvas.toJSON(), elements: canvas.elements(), meta: canvas.meta }
    } else {
      fail(`${doc.name} has schema ${schema}`)
    }
  }
  return out
}

async function live () {
  const doc = client.open(config.doc)
  await doc.whenSaved({ timeout: TIMEOUT })
  const canvas = doc.canvas({ author: 'js' })
  canvas.move(config.card, 300, 300)
  const text = canvas.addText('from JS', 0, 0)
  await doc.whenSaved({ timeout: TIMEOUT })
  process.stdout.write(JSON.stringify({ event: 'edited', text }) + '\n')
  await doc.when((d) => d.canvas().has(config.expect) && d.status === 'saved', { timeout: TIMEOUT, what: 'merged' })
  return { json: canvas.toJSON(), text }
}

try {
  const commands = { write, read, live }
  if (!commands[command]) fail(`unknown command ${command}`)
  const result = await commands[command]()
  process.stdout.write(JSON.stringify(result) + '\n')
  clearTimeout(timer)
  await client.destroy()
  process.exit(0)
} catch (err) {
  fail(err?.stack ?? String(err))
}
