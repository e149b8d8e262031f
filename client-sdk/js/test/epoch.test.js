// The epoch guard (src/epoch.js) against the in-process server (test/support), which sends an
// epoch after Authenticated as syncd does and can give a document a new lineage (`rewrite`).
// The real daemon, with a real purge: tests/test_epoch_guard.py.

import 'fake-indexeddb/auto'

import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'

import WebSocket from 'ws'
import * as Y from 'yjs'

import { Canvas, createClient } from '../src/index.js'
import { startFakeServer } from './support/fake-server.js'

const TIMEOUT = 5000
const jwt = (sub) => `h.${Buffer.from(JSON.stringify({ sub })).toString('base64url')}.s`
const ALICE = jwt('alice')

let server
const clients = []
const connect = (options = {}) => {
  const client = createClient({
    url: server.url, token: ALICE, WebSocket, persistence: 'memory', backoff: [20, 100], ...options
  })
  clients.push(client)
  return client
}
const texts = (ydoc) => new Canvas(ydoc).elements().filter((e) => e.kind === 'text').map((e) => e.text).sort()
const offline = (n) => Array.from({ length: n }, (_, i) => `offline ${String(i).padStart(2, '0')}`)

before(async () => {
  server = await startFakeServer({ tokens: { [ALICE]: { sub: 'alice' } } })
})
after(async () => {
  await Promise.all(clients.map((c) => c.destroy()))
  await server.stop()
})

describe('epoch', () => {
  test('a first sync adopts the server epoch and merges what was written offline', async () => {
    const client = connect({ autoConnect: false })
    const doc = client.open('alice/first')
    await doc.whenLoaded
    assert.equal(doc.epoch, null)
    doc.ydoc.getMap('m').set('offline', true)
    server.doc('alice/first').getMap('m').set('server', true)
    client.reconnect()
    await doc.whenSaved({ timeout: TIMEOUT })
    assert.equal(doc.epoch, server.epoch('alice/first'))
    assert.equal(doc.resets, 0)
    assert.deepEqual(server.doc('alice/first').getMap('m').toJSON(), { offline: true, server: true })
  })

  test('the same epoch: 50 offline edits under a new client id merge, nothing is reset', async () => {
    const persistence = { type: 'indexeddb', prefix: 'test:same:' }
    const name = 'alice/same'
    const first = connect({ persistence })
    const doc = first.open(name)
    doc.canvas().init('Same')
    await doc.whenSaved({ timeout: TIMEOUT })
    const firstId = doc.ydoc.clientID
    await first.destroy()

    const second = connect({ persistence, autoConnect: false })
    const again = second.open(name)
    await again.whenLoaded
    assert.notEqual(again.ydoc.clientID, firstId)
    assert.equal(again.epoch, server.epoch(name))
    const canvas = again.canvas()
    for (const text of offline(50)) canvas.addText(text, 0, 0)
    assert.equal(again.pending, 50)
    new Canvas(server.doc(name), { author: 'bob' }).addText('meanwhile', 1, 1) // the server moved on
    const events = []
    again.on('reset', () => events.push('reset'))
    again.on('recovered', () => events.push('recovered'))
    second.reconnect()
    await again.whenSaved({ timeout: TIMEOUT })
    assert.deepEqual(events, [])
    assert.deepEqual(again.recovered, [])
    assert.deepEqual(texts(server.doc(name)), [...offline(50), 'meanwhile'].sort())
    assert.deepEqual(texts(again.ydoc), texts(server.doc(name)))
  })

  test('another epoch: nothing old reaches the server, the 50 unsent edits are recovered, stored', async () => {
    const persistence = { type: 'indexeddb', prefix: 'test:reset:' }
    const name = 'alice/reborn'
    const first = connect({ persistence })
    const doc = first.open(name)
    const canvas = doc.canvas()
    canvas.init('Old board')
    canvas.addText('old and acknowledged', 0, 0)
    await doc.whenSaved({ timeout: TIMEOUT })
    const oldEpoch = doc.epoch
    first.disconnect()
    for (const text of offline(50)) canvas.addText(text, 0, 0)
    assert.equal(doc.pending, 50)

    const reborn = server.rewrite(name) // purged, then created again by someone else
    new Canvas(reborn, { author: 'bob' }).init('New board')
    new Canvas(reborn, { author: 'bob' }).addText('fresh', 5, 5)
    const fresh = Y.encodeStateAsUpdate(reborn)
    const oldYdoc = doc.ydoc
    const events = []
    doc.on('reset', (d, old) => events.push(['reset', old === oldYdoc, d.ydoc !== oldYdoc]))
    doc.on('recovered', (copy) => events.push(['recovered', copy.updates.length]))
    const fromClient = []
    first.on('recovered', ({ name: n, copy }) => fromClient.push([n, copy.id]))
    const sent = server.received.length
    first.reconnect()
    await doc.whenSaved({ timeout: TIMEOUT })

    assert.deepEqual(events, [['reset', true, true], ['recovered', 50]])
    assert.equal(doc.resets, 1)
    assert.equal(doc.epoch, server.epoch(name))
    assert.notEqual(doc.epoch, oldEpoch)
    assert.equal(doc.pending, 0)
    // The server holds exactly what it had: no old content, nothing twice.
    assert.deepEqual(Y.encodeStateAsUpdate(server.doc(name)), fresh)
    assert.deepEqual(texts(server.doc(name)), ['fresh'])
    for (const [, type, step, payload] of server.received.slice(sent)) {
      if (type !== 0 || step === 0) continue
      const scratch = new Y.Doc()
      Y.applyUpdate(scratch, payload)
      assert.deepEqual(texts(scratch), [], 'no element of the old replica was sent')
    }
    assert.deepEqual(texts(doc.ydoc), ['fresh'])
    assert.equal(new Canvas(doc.ydoc).meta.title, 'New board')

    const [copy] = doc.recovered
    assert.deepEqual(fromClient, [[name, copy.id]])
    assert.equal(copy.epoch, oldEpoch)
    assert.equal(copy.serverEpoch, doc.epoch)
    assert.equal(copy.updates.length, 50)
    assert.deepEqual(texts(copy.replica()), [...offline(50), 'old and acknowledged'].sort())
    await first.destroy()

    // A reload: the new epoch and the copy were stored; nothing is reset again.
    const second = connect({ persistence, autoConnect: false })
    const again = second.open(name)
    await again.whenLoaded
    assert.equal(again.epoch, server.epoch(name))
    assert.equal(again.pending, 0)
    assert.deepEqual(texts(again.ydoc), ['fresh'])
    const [stored] = again.recovered
    assert.equal(stored.id, copy.id)
    assert.deepEqual(stored.updates, copy.updates)
    assert.deepEqual(texts(stored.replica()), texts(copy.replica()))
    second.reconnect()
    await again.whenSaved({ timeout: TIMEOUT })
    assert.equal(again.resets, 0)
    assert.equal(await again.discardRecovered(stored), true)
    await second.destroy()
    const third = connect({ persistence, autoConnect: false })
    const last = third.open(name)
    await last.whenLoaded
    assert.deepEqual(last.recovered, [])
  })

  test('another epoch with nothing unsent: the document starts again, no copy is made', async () => {
    const client = connect()
    const name = 'alice/clean'
    const doc = client.open(name)
    doc.ydoc.getMap('m').set('old', 1)
    await doc.whenSaved({ timeout: TIMEOUT })
    client.disconnect()
    server.rewrite(name).getMap('m').set('new', 2)
    const recovered = []
    doc.on('recovered', (copy) => recovered.push(copy))
    client.reconnect()
    await doc.whenSaved({ timeout: TIMEOUT })
    assert.equal(doc.resets, 1)
    assert.deepEqual(recovered, [])
    assert.deepEqual(doc.ydoc.getMap('m').toJSON(), { new: 2 })
    assert.deepEqual(server.doc(name).getMap('m').toJSON(), { new: 2 })
  })

  test('edits made while the epoch is awaited are not sent before it is checked', async () => {
    const client = connect()
    const name = 'alice/waiting'
    const doc = client.open(name)
    await doc.whenSaved({ timeout: TIMEOUT })
    client.disconnect()
    server.rewrite(name)
    client.reconnect()
    doc.ydoc.getMap('m').set('typed while connecting', true) // old lineage: must not be sent
    await doc.whenSaved({ timeout: TIMEOUT })
    assert.deepEqual(server.doc(name).getMap('m').toJSON(), {})
    assert.equal(doc.recovered.length, 1)
    assert.deepEqual(doc.recovered[0].replica().getMap('m').toJSON(), { 'typed while connecting': true })
  })

  test('a server that sends no epoch is still synced with', async () => {
    server.sendEpochs = false
    try {
      const client = connect()
      const doc = client.open('alice/legacy')
      doc.ydoc.getMap('m').set('k', 'v')
      await doc.whenSaved({ timeout: TIMEOUT })
      assert.equal(doc.epoch, null)
      assert.equal(server.doc('alice/legacy').getMap('m').get('k'), 'v')
    } finally {
      server.sendEpochs = true
    }
  })
})
