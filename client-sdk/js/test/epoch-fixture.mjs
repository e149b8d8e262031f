// The JS side of tests/test_epoch_guard.py: the SDK's epoch guard against the real daemon, with
// the IndexedDB persistence (fake-indexeddb: one in-memory IndexedDB for the whole process, so a
// "reload" is a new client over the same databases). Driven over stdin/stdout: it prints one
// JSON line per step and waits for a line on stdin where the test changes the server.
//
//   node test/epoch-fixture.mjs '{"url", "token", "doc": "alice/c", "mode": "purged" | "same",
//                                 "edits": 50, "timeoutMs": 20000}'
//
// purged: syncs a canvas ("Old board", one acknowledged text), prints {"event": "synced",
//   "epoch"}; goes offline and adds `edits` texts ("offline NN"), prints {"event": "offline",
//   "pending"}; waits for a line (the test purges the document and creates it again), reconnects,
//   waits until saved, then reloads (a new client, same databases) and prints the result.
// same: syncs a canvas, prints {"event": "synced", "epoch", "clientID"}; a new client over the
//   same databases (a fresh client id) adds `edits` texts offline, prints {"event": "offline",
//   "pending", "clientID"}; waits for a line (the test edits the document meanwhile), connects,
//   waits until saved, prints the result.
//
// The result: {"epoch", "resets", "texts": [...], "json": canvas/1 toJSON(), "recovered":
//   [{"epoch", "serverEpoch", "updates", "texts"}], "reloaded": {"epoch", "recovered", "texts"}}.
// On failure: a message on stderr, exit code 1.

import 'fake-indexeddb/auto'

import * as readline from 'node:readline'

import WebSocket from 'ws'

import { Canvas, createClient } from '../src/index.js'

const config = JSON.parse(process.argv[2] ?? 'null')
const TIMEOUT = config?.timeoutMs ?? 20000
const fail = (message) => {
  process.stderr.write(`epoch-fixture: ${message}\n`)
  process.exit(1)
}
const timer = setTimeout(() => fail(`timed out after ${TIMEOUT} ms`), 3 * TIMEOUT)
const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]()
const nextLine = async () => {
  const { done } = await lines.next()
  if (done) fail('stdin closed before the go-ahead')
}

const persistence = { type: 'indexeddb', prefix: 'epoch-fixture:' }
const clients = []
const connect = (options = {}) => {
  const client = createClient({ url: config.url, token: config.token, WebSocket, persistence, backoff: [50, 500], ...options })
  clients.push(client)
  return client
}
const texts = (ydoc) => new Canvas(ydoc).elements().filter((e) => e.kind === 'text').map((e) => e.text).sort()
const offlineTexts = () => Array.from({ length: config.edits }, (_, i) => `offline ${String(i).padStart(2, '0')}`)

async function reload () {
  const client = connect({ autoConnect: false })
  const doc = client.open(config.doc)
  await doc.whenLoaded
  const out = { epoch: doc.epoch, recovered: doc.recovered.map((c) => c.updates.length), texts: texts(doc.ydoc), pending: doc.pending }
  await client.destroy()
  return out
}

function report (doc, recovered) {
  return {
    epoch: doc.epoch,
    resets: doc.resets,
    pending: doc.pending,
    texts: texts(doc.ydoc),
    json: new Canvas(doc.ydoc).toJSON(),
    recovered: recovered.map((copy) => ({
      epoch: copy.epoch,
      serverEpoch: copy.serverEpoch,
      updates: copy.updates.length,
      texts: texts(copy.replica())
    }))
  }
}

async function purged () {
  const client = connect()
  const doc = client.open(config.doc)
  const canvas = doc.canvas({ author: 'js' })
  canvas.init('Old board')
  canvas.addText('old and acknowledged', 0, 0)
  await doc.whenSaved({ timeout: TIMEOUT })
  say({ event: 'synced', epoch: doc.epoch })
  client.disconnect()
  for (const text of offlineTexts()) canvas.addText(text, 0, 0)
  say({ event: 'offline', pending: doc.pending })
  await nextLine()
  const events = []
  doc.on('reset', () => events.push('reset'))
  doc.on('recovered', () => events.push('recovered'))
  client.reconnect()
  await doc.whenSaved({ timeout: TIMEOUT })
  const result = { ...report(doc, doc.recovered), events }
  await client.destroy()
  return { ...result, reloaded: await reload() }
}

async function same () {
  const first = connect()
  const seeded = first.open(config.doc)
  seeded.canvas({ author: 'js' }).init('Same board')
  await seeded.whenSaved({ timeout: TIMEOUT })
  say({ event: 'synced', epoch: seeded.epoch, clientID: seeded.ydoc.clientID })
  await first.destroy()

  const client = connect({ autoConnect: false })
  const doc = client.open(config.doc)
  await doc.whenLoaded
  const canvas = doc.canvas({ author: 'js' })
  for (const text of offlineTexts()) canvas.addText(text, 0, 0)
  say({ event: 'offline', pending: doc.pending, clientID: doc.ydoc.clientID })
  await nextLine()
  const events = []
  doc.on('reset', () => events.push('reset'))
  doc.on('recovered', () => events.push('recovered'))
  client.reconnect()
  await doc.whenSaved({ timeout: TIMEOUT })
  const result = { ...report(doc, doc.recovered), events }
  await client.destroy()
  return { ...result, reloaded: await reload() }
}

try {
  const modes = { purged, same }
  if (!modes[config?.mode]) fail(`unknown mode ${config?.mode}`)
  say({ event: 'result', ...(await modes[config.mode]()) })
  clearTimeout(timer)
  process.exit(0)
} catch (err) {
  fail(err?.stack ?? String(err))
}
