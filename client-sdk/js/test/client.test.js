// The client and its documents against a small in-process /v1/sync server (test/support): status,
// outbox acknowledged by SyncStatus, reconnection, offline edits, 44xx, token refresh, viewers,
// framing, and the IndexedDB persistence (fake-indexeddb). The real daemon: tests/test_js_sdk.py.

import 'fake-indexeddb/auto'

import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'

import WebSocket from 'ws'
import * as Y from 'yjs'

import { MessageType, createClient, decodeFrame, syncUrl, tokenSubject } from '../src/index.js'
import { encodeSync, encodeToken } from '../src/framing.js'
import { startFakeServer } from './support/fake-server.js'

const TIMEOUT = 5000
const jwt = (sub) => `h.${Buffer.from(JSON.stringify({ sub })).toString('base64url')}.s`
const ALICE = jwt('alice')
const BOB = jwt('bob')

/** Resolve when `check()` holds, polled on a short timer (the fake server has no events). */
const until = async (check, what) => {
  const deadline = Date.now() + TIMEOUT
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

let server
const clients = []
const connect = (options = {}) => {
  const client = createClient({
    url: server.url, token: ALICE, WebSocket, persistence: 'memory', backoff: [20, 100], ...options
  })
  clients.push(client)
  return client
}

before(async () => {
  server = await startFakeServer({
    tokens: {
      [ALICE]: { sub: 'alice' },
      [BOB]: { sub: 'bob', scope: { 'alice/board': 'readonly', 'alice/shared': 'read-write' } }
    }
  })
})
after(async () => {
  await Promise.all(clients.map((c) => c.destroy()))
  await server.stop()
})

describe('framing', () => {
  test('encodes and decodes the Hocuspocus frames syncd speaks', () => {
    const sync = decodeFrame(encodeSync('alice/j', 2, new Uint8Array([1, 2, 3])))
    assert.deepEqual({ ...sync, data: [...sync.data] }, { address: 'alice/j', type: MessageType.SYNC, step: 2, data: [1, 2, 3] })
    const token = decodeFrame(encodeToken('alice/j', 'T'))
    assert.equal(token.auth, 'token')
    assert.equal(token.token, 'T')
    assert.throws(() => decodeFrame(new Uint8Array([1, 65, 99])), /unknown message type/)
    assert.throws(() => decodeFrame(new Uint8Array([1, 65, 8, 1, 0])), /trailing bytes/)
  })

  test('urls and token subjects', () => {
    assert.equal(syncUrl('http://h:1/'), 'ws://h:1/v1/sync')
    assert.equal(syncUrl('wss://h/v1/sync'), 'wss://h/v1/sync')
    assert.equal(tokenSubject(ALICE), 'alice')
    assert.equal(tokenSubject('garbage'), null)
  })
})

describe('client', () => {
  test('status goes syncing then saved; the outbox empties only on SyncStatus', async () => {
    const client = connect()
    const doc = client.open('alice/journal')
    const statuses = []
    doc.on('status', (s) => statuses.push(s))
    await doc.whenSaved({ timeout: TIMEOUT })
    server.holdAcks = true
    doc.journal().init('Mine')
    assert.equal(doc.pending, 1)
    assert.equal(doc.status, 'syncing')
    await until(() => server.heldAcks.length === 1, 'the update to arrive')
    // The server applied it, but has not said it is durable: still pending.
    assert.equal(server.doc('alice/journal').getMap('meta').get('title'), 'Mine')
    assert.equal(doc.pending, 1)
    assert.equal(doc.status, 'syncing')
    server.holdAcks = false
    server.releaseAcks()
    await doc.whenSaved({ timeout: TIMEOUT })
    assert.equal(doc.pending, 0)
    assert.deepEqual(statuses, ['syncing', 'saved', 'syncing', 'saved'])
  })

  test('many documents share one socket', async () => {
    const before = server.connections
    const client = connect()
    const docs = ['alice/a', 'alice/b', 'alice/c'].map((name) => client.open(name))
    docs.forEach((doc, i) => doc.ydoc.getMap('m').set('i', i))
    await client.whenSaved({ timeout: TIMEOUT })
    assert.equal(server.connections - before, 1)
    assert.deepEqual(['alice/a', 'alice/b', 'alice/c'].map((n) => server.doc(n).getMap('m').get('i')), [0, 1, 2])
  })

  test('offline edits wait in the outbox and are sent on reconnection', async () => {
    const client = connect()
    const doc = client.open('alice/offline')
    await doc.whenSaved({ timeout: TIMEOUT })
    server.refuse()
    await until(() => doc.status === 'offline', 'offline')
    const journal = doc.journal()
    journal.init('Train')
    const id = journal.createEntry('No signal', 'written in a tunnel')
    journal.editBody(id, 0, { insert: '(offline) ' })
    assert.equal(doc.pending, 3)
    assert.equal(doc.status, 'offline')
    server.accept()
    await doc.whenSaved({ timeout: TIMEOUT })
    assert.equal(doc.pending, 0)
    const remote = server.doc('alice/offline').getMap('entries').get(id)
    assert.equal(remote.get('body').toString(), '(offline) written in a tunnel')
  })

  test('two clients converge through the server, presence included', async () => {
    const alice = connect()
    const bob = connect({ token: BOB })
    const a = alice.open('alice/shared')
    const b = bob.open('alice/shared')
    a.awareness.setLocalStateField('user', { name: 'alice' })
    b.awareness.setLocalStateField('user', { name: 'bob' })
    await Promise.all([a.whenSaved({ timeout: TIMEOUT }), b.whenSaved({ timeout: TIMEOUT })])
    const canvas = a.canvas()
    const card = canvas.addCard('basic', 'hope', 0, 0)
    await b.when(() => b.canvas().has(card), { timeout: TIMEOUT })
    assert.equal(b.canvas().element(card).author, 'alice')
    b.canvas().move(card, 5, 5)
    canvas.move(card, 7, 7)
    await Promise.all([a.whenSaved({ timeout: TIMEOUT }), b.whenSaved({ timeout: TIMEOUT })])
    await until(() => JSON.stringify(a.canvas().toJSON()) === JSON.stringify(b.canvas().toJSON()), 'convergence')
    await until(() => [...a.awareness.getStates().values()].some((s) => s.user?.name === 'bob'), 'bob\'s presence')
  })

  test('a viewer gets readonly scope; its forced edit is not sent and keeps it unsaved', async () => {
    const client = connect({ token: BOB })
    const doc = client.open('alice/board')
    await doc.whenSaved({ timeout: TIMEOUT })
    assert.equal(doc.readonly, true)
    const sent = server.received.length
    doc.ydoc.getMap('m').set('forced', true)
    await new Promise((resolve) => setTimeout(resolve, 100))
    assert.deepEqual(server.received.slice(sent).filter(([, type, step]) => type === 0 && step === 2), [])
    assert.equal(server.doc('alice/board').getMap('m').get('forced'), undefined)
    assert.equal(doc.status, 'syncing')
    assert.equal(doc.pending, 1)
  })

  test('a refused document is denied with the reason; the socket and other documents go on', async () => {
    const client = connect()
    const mine = client.open('alice/ok')
    const theirs = client.open('carol/diary')
    await assert.rejects(theirs.whenSaved({ timeout: TIMEOUT }), /no access to this document/)
    assert.equal(theirs.status, 'denied')
    await mine.whenSaved({ timeout: TIMEOUT })
  })

  test('an expired token is refreshed through the callback', async () => {
    const expired = jwt('alice') + 'x'
    server.tokens[expired] = { sub: 'alice', expired: true }
    const handed = [expired, ALICE]
    let calls = 0
    const client = connect({ token: async () => handed[Math.min(calls++, handed.length - 1)] })
    const doc = client.open('alice/refresh')
    await doc.whenSaved({ timeout: TIMEOUT })
    assert.equal(calls, 2)
    assert.deepEqual(server.authAttempts.filter(([name]) => name === 'alice/refresh').map(([, t]) => t), [expired, ALICE])
  })

  test('a close in 4400-4499 stops reconnecting and says why', async () => {
    const client = connect()
    const doc = client.open('alice/closed')
    await doc.whenSaved({ timeout: TIMEOUT })
    const closed = new Promise((resolve) => client.on('closed', resolve))
    const connections = server.connections
    for (const ws of server.sockets) ws.close(4413, 'message too large')
    const event = await closed
    assert.deepEqual(event, { code: 4413, reason: 'message too large', permanent: true })
    assert.equal(client.closedReason, '4413 message too large')
    doc.ydoc.getMap('m').set('later', 1)
    await assert.rejects(doc.whenSaved({ timeout: TIMEOUT }), /closed for good: 4413/)
    await new Promise((resolve) => setTimeout(resolve, 300))
    assert.equal(server.connections, connections, 'no reconnection attempt')
    client.reconnect() // the application may decide to try again
    await doc.whenSaved({ timeout: TIMEOUT })
  })

  test('a transient close reconnects and resyncs', async () => {
    const client = connect()
    const doc = client.open('alice/transient')
    await doc.whenSaved({ timeout: TIMEOUT })
    server.closeAll(1011, 'commit failed')
    await until(() => doc.status !== 'saved', 'the drop')
    doc.ydoc.getText('t').insert(0, 'after the drop')
    await doc.whenSaved({ timeout: TIMEOUT })
    assert.equal(server.doc('alice/transient').getText('t').toString(), 'after the drop')
  })
})

describe('IndexedDB persistence', () => {
  test('a reload offline keeps the document and its outbox; both reach the server later', async () => {
    const persistence = { type: 'indexeddb', prefix: 'test:alice:' }
    server.refuse()
    const first = connect({ persistence })
    const doc = first.open('alice/diary')
    await doc.whenLoaded
    const journal = doc.journal()
    journal.init('Diary')
    const id = journal.createEntry('Offline', 'no network at all', { tags: ['train'] })
    assert.equal(doc.pending, 2)
    await first.destroy() // "close the tab"

    const second = connect({ persistence })
    const again = second.open('alice/diary')
    await again.whenLoaded
    assert.equal(again.status, 'offline')
    assert.equal(again.pending, 2)
    assert.equal(again.journal().entry(id).body, 'no network at all')
    again.journal().addTag(id, 'late')
    assert.equal(again.pending, 3)
    server.accept()
    second.reconnect()
    await again.whenSaved({ timeout: TIMEOUT })
    const entry = server.doc('alice/diary').getMap('entries').get(id)
    assert.deepEqual(entry.get('tags').toArray(), ['train', 'late'])
    await second.destroy()

    const third = connect({ persistence, autoConnect: false })
    const last = third.open('alice/diary')
    await last.whenLoaded
    assert.equal(last.pending, 0, 'acknowledged edits left the stored outbox')
    assert.equal(last.journal().title, 'Diary')
  })

  test('edits made before the local copy loaded are kept and numbered after it', async () => {
    const persistence = { type: 'indexeddb', prefix: 'test:early:' }
    const first = connect({ persistence, autoConnect: false })
    const doc = first.open('alice/early')
    await doc.whenLoaded
    doc.ydoc.getMap('m').set('a', 1)
    await first.destroy()
    const second = connect({ persistence, autoConnect: false })
    const again = second.open('alice/early')
    again.ydoc.getMap('m').set('b', 2) // before whenLoaded
    await again.whenLoaded
    assert.equal(again.pending, 2)
    assert.deepEqual(again.outbox.entries.map((e) => e.id), [1, 2])
    second.reconnect()
    await again.whenSaved({ timeout: TIMEOUT })
    assert.deepEqual(server.doc('alice/early').getMap('m').toJSON(), { a: 1, b: 2 })
  })
})

test('Y.Doc state from the server is applied, not echoed into the outbox', async () => {
  const seed = new Y.Doc()
  seed.getMap('m').set('seeded', true)
  Y.applyUpdate(server.doc('alice/seeded'), Y.encodeStateAsUpdate(seed))
  const client = connect()
  const doc = client.open('alice/seeded')
  await doc.whenSaved({ timeout: TIMEOUT })
  assert.equal(doc.ydoc.getMap('m').get('seeded'), true)
  assert.equal(doc.pending, 0)
})
