// A small in-process /v1/sync server for the SDK's unit tests: the Hocuspocus framing as syncd
// speaks it (docs/protocol.md), over the `ws` package, with knobs to hold acknowledgements,
// refuse tokens and close sockets. The real daemon is exercised by tests/test_js_sdk.py.

import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { WebSocketServer } from 'ws'
import * as Y from 'yjs'

const frame = (address, type, write) => {
  const e = encoding.createEncoder()
  encoding.writeVarString(e, address)
  encoding.writeVarUint(e, type)
  write?.(e)
  return encoding.toUint8Array(e)
}

/**
 * tokens: token -> {sub, scope?: {docName: 'readonly'|'read-write'}, expired?: true}
 * Each document is a Y.Doc; every update a client sends is applied, relayed to the document's
 * other sockets, then acknowledged (SyncStatus) unless `holdAcks` is set (then `releaseAcks()`).
 * After `Authenticated` the document's epoch goes out as syncd sends it (a Stateless message),
 * unless `sendEpochs` is false (a server that predates epochs); `rewrite(name)` gives a document
 * a new epoch and an empty history, as a purge and creation again do.
 */
export async function startFakeServer ({ tokens = {} } = {}) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  await new Promise((resolve) => wss.once('listening', resolve))
  const server = {
    port: wss.address().port,
    url: `ws://127.0.0.1:${wss.address().port}`,
    tokens,
    docs: new Map(), // name -> Y.Doc
    epochs: new Map(), // name -> epoch
    sendEpochs: true,
    sockets: new Set(),
    authAttempts: [], // [name, token]
    received: [], // [name, type, step?]
    holdAcks: false,
    heldAcks: [],
    connections: 0,
    doc (name) {
      if (!this.docs.has(name)) this.docs.set(name, new Y.Doc())
      return this.docs.get(name)
    },
    epoch (name) {
      if (!this.epochs.has(name)) this.epochs.set(name, `epoch-${this.epochs.size + 1}-${Math.random().toString(36).slice(2)}`)
      return this.epochs.get(name)
    },
    /** A new lineage for `name`: empty document, new epoch (returns the new Y.Doc). */
    rewrite (name) {
      this.docs.set(name, new Y.Doc())
      this.epochs.delete(name)
      this.epoch(name)
      return this.docs.get(name)
    },
    releaseAcks () {
      const held = this.heldAcks
      this.heldAcks = []
      for (const send of held) send()
    },
    /** Close every socket with `code` (a permanent 44xx, or a transient one). */
    closeAll (code = 1011, reason = '') {
      for (const ws of this.sockets) ws.close(code, reason)
    },
    /** Refuse new connections (a network that is gone) until `accept()`. */
    refuse () {
      this.refusing = true
      for (const ws of this.sockets) ws.terminate()
    },
    accept () { this.refusing = false },
    refusing: false,
    async stop () {
      for (const ws of this.sockets) ws.terminate()
      await new Promise((resolve) => wss.close(resolve))
    }
  }

  wss.on('connection', (ws) => {
    if (server.refusing) { ws.terminate(); return }
    server.connections++
    server.sockets.add(ws)
    const open = new Map() // name -> scope
    ws.on('close', () => server.sockets.delete(ws))
    const send = (bytes) => { if (ws.readyState === 1) ws.send(bytes) }
    const relay = (name, update) => {
      for (const other of server.sockets) {
        if (other !== ws && other.openDocs?.has(name)) {
          other.send(frame(name, 0, (e) => { encoding.writeVarUint(e, 2); encoding.writeVarUint8Array(e, update) }))
        }
      }
    }
    ws.openDocs = open
    ws.on('message', (data) => {
      const d = decoding.createDecoder(new Uint8Array(data))
      const name = decoding.readVarString(d)
      const type = decoding.readVarUint(d)
      if (type === 2) {
        decoding.readVarUint(d)
        const token = decoding.readVarString(d)
        server.authAttempts.push([name, token])
        const grant = server.tokens[token]
        let refusal = null
        if (!grant) refusal = 'invalid token'
        else if (grant.expired) refusal = 'token expired'
        const scope = grant?.scope?.[name] ?? (name.startsWith(`${grant?.sub}/`) ? 'read-write' : null)
        if (!refusal && !scope) refusal = 'no access to this document'
        if (refusal) {
          send(frame(name, 2, (e) => { encoding.writeVarUint(e, 1); encoding.writeVarString(e, refusal) }))
          return
        }
        open.set(name, scope)
        send(frame(name, 2, (e) => { encoding.writeVarUint(e, 2); encoding.writeVarString(e, scope) }))
        if (server.sendEpochs) {
          const payload = JSON.stringify({ syncd: 'epoch', epoch: server.epoch(name) })
          send(frame(name, 5, (e) => encoding.writeVarString(e, payload)))
        }
        send(frame(name, 0, (e) => { encoding.writeVarUint(e, 0); encoding.writeVarUint8Array(e, Y.encodeStateVector(server.doc(name))) }))
        return
      }
      if (!open.has(name)) return
      if (type === 0) {
        const step = decoding.readVarUint(d)
        const payload = decoding.readVarUint8Array(d)
        server.received.push([name, type, step, payload])
        const ydoc = server.doc(name)
        if (step === 0) {
          send(frame(name, 0, (e) => { encoding.writeVarUint(e, 1); encoding.writeVarUint8Array(e, Y.encodeStateAsUpdate(ydoc, payload)) }))
          return
        }
        let stored = open.get(name) === 'read-write'
        if (stored) {
          Y.applyUpdate(ydoc, payload)
          relay(name, payload)
        } else {
          // A viewer's step 2 that brings nothing new is "stored" (nothing was refused).
          const scratch = new Y.Doc()
          Y.applyUpdate(scratch, Y.encodeStateAsUpdate(ydoc))
          const before = Y.encodeStateVector(scratch)
          Y.applyUpdate(scratch, payload)
          stored = Buffer.compare(Buffer.from(before), Buffer.from(Y.encodeStateVector(scratch))) === 0
        }
        const ack = () => send(frame(name, 8, (e) => encoding.writeVarUint(e, stored ? 1 : 0)))
        if (server.holdAcks) server.heldAcks.push(ack)
        else ack()
      } else if (type === 1) {
        server.received.push([name, type])
        const update = decoding.readVarUint8Array(d)
        for (const other of server.sockets) {
          if (other.openDocs?.has(name)) other.send(frame(name, 1, (e) => encoding.writeVarUint8Array(e, update)))
        }
      } else if (type === 7) {
        open.delete(name)
      }
    })
  })
  return server
}
