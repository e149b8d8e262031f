// One benchmark client: a WebSocket (the `ws` package), a Yjs replica, and y-protocols sync in
// either framing:
//   yws: y-websocket, one document per socket, one message per frame (syncd's /v1/docs/…,
//        @y/websocket-server, pycrdt-websocket);
//   hp:  Hocuspocus, every message prefixed with the document name as a varString; the client
//        authenticates first (`[name][2 Auth][0 Token][varString token]`), and the server holds
//        everything else until that is answered (ClientConnection.handleQueueingMessage).
//
// The client sends sync step 1 on open, answers the server's step 1 with step 2, and is synced
// once it has applied the server's step 2. Fan-out latency comes from the content: every writer
// transaction also sets bench["w<cid>"] = "<seq>:<CLOCK_MONOTONIC ns>"; a replica applying it
// records now − ts. process.hrtime is CLOCK_MONOTONIC on Linux, the clock Python's
// time.monotonic reads, so the orchestrator, the writers and the readers share one clock.

import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import WebSocket from 'ws'
import * as Y from 'yjs'

const MSG_SYNC = 0
const MSG_AWARENESS = 1
const MSG_AUTH = 2
const MSG_QUERY_AWARENESS = 3
const MSG_STATELESS = 5 // syncd sends each document's epoch so (DESIGN §1.10)
const MSG_SYNC_STATUS = 8 // Hocuspocus: "your update was stored"
const SYNC_STEP1 = 0
const SYNC_STEP2 = 1
const SYNC_UPDATE = 2
const LOCAL = Symbol('local edit')
// Points per stroke (flat x, y, pressure triples, DESIGN §1.8 canvas/1 `points`).
const STROKE_POINTS = 16

export const monoNs = () => process.hrtime.bigint()
export const monoMs = () => Number(process.hrtime.bigint()) / 1e6

export class ClientClosed extends Error {}

export class YClient {
  /**
   * @param {{cid: number, doc: string, url: string, framing?: 'yws'|'hp', name?: string,
   *          token?: string, writer?: boolean, sink?: boolean}} spec
   * @param {import('./stats.mjs').Stats} stats
   */
  constructor (spec, stats) {
    this.spec = spec
    this.stats = stats
    this.hp = spec.framing === 'hp'
    this.hpName = spec.name ?? spec.doc
    this.wkey = `w${spec.cid}`
    this.eid = `el-${spec.cid}`
    this.doc = new Y.Doc()
    this.bench = this.doc.getMap('bench')
    this.elements = this.doc.getMap('elements')
    this.body = this.doc.getText('body')
    this.seen = new Map() // writer key -> highest seq applied
    this.seq = 0
    this.ws = null
    this.open_ = false
    this.closing = false
    this.gotServerStep1 = false
    this.synced = false
    this.tStart = 0
    this.tOpen = 0
    this.tStep2 = 0
    this.tSynced = 0
    this.step2Bytes = 0
    this.authDenied = null
    this.closeCode = null
    this.captured = null
    this.applyingUpdate = false // applying a live update (not step 2): count deliveries
    this.waiters = [] // {resolve, reject} of open()
    if (!spec.sink) this.bench.observe((event) => this.onBench(event))
    // Subscribed only while making an edit: with an 'update' listener, Yjs encodes every
    // transaction, the remote ones too, which would double a replica's cost per delivery.
    this.onLocalUpdate = (update, origin) => {
      if (origin === LOCAL && this.captured !== null) this.captured.push(update)
    }
  }

  get isOpen () {
    return this.open_ && this.ws !== null && this.ws.readyState === WebSocket.OPEN
  }

  /** Connect, authenticate (hp), sync; resolve once synced. */
  open (timeoutMs) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`TimeoutError: not synced after ${timeoutMs} ms`))
        this.close()
      }, timeoutMs)
      this.waiters.push({
        resolve: () => { clearTimeout(timer); resolve() },
        reject: (e) => { clearTimeout(timer); reject(e) }
      })
      this.tStart = monoMs()
      const ws = new WebSocket(this.spec.url, { perMessageDeflate: false, maxPayload: 0 })
      ws.binaryType = 'nodebuffer'
      this.ws = ws
      ws.on('open', () => {
        this.open_ = true
        this.tOpen = monoMs()
        if (this.hp) this.send(this.authMessage())
        this.send(this.syncMessage(SYNC_STEP1, Y.encodeStateVector(this.doc)))
      })
      ws.on('message', (data, isBinary) => {
        if (!isBinary) this.stats.deviations['text frame'] = (this.stats.deviations['text frame'] ?? 0) + 1
        this.onMessage(data)
      })
      ws.on('unexpected-response', (_req, res) => {
        this.fail(new ClientClosed(`handshake refused: HTTP ${res.statusCode}`))
        ws.terminate()
      })
      ws.on('error', (err) => this.fail(new ClientClosed(`${err.code ?? ''} ${err.message}`)))
      ws.on('close', (code, reason) => {
        this.open_ = false
        this.closeCode = code
        if (!this.closing) {
          this.stats.count('closes', String(code))
          this.stats.error(`${this.spec.doc} client ${this.spec.cid}: closed ${code} ${reason}`)
        }
        this.fail(new ClientClosed(`connection closed (${code})`))
      })
    })
  }

  fail (err) {
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w.reject(err)
  }

  close () {
    this.closing = true
    if (this.ws === null) return
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      try { this.ws.close(1000) } catch { this.ws.terminate() }
    }
  }

  /** Resolve once the socket is closed, or after timeoutMs (then terminate it). */
  waitClosed (timeoutMs) {
    const ws = this.ws
    if (ws === null || ws.readyState === WebSocket.CLOSED) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = setTimeout(() => { ws.terminate(); resolve() }, timeoutMs)
      ws.once('close', () => { clearTimeout(timer); resolve() })
    })
  }

  // ------------------------------------------------------------------ framing

  encoder () {
    const enc = encoding.createEncoder()
    if (this.hp) encoding.writeVarString(enc, this.hpName)
    return enc
  }

  authMessage () {
    const enc = this.encoder()
    encoding.writeVarUint(enc, MSG_AUTH)
    encoding.writeVarUint(enc, 0)
    encoding.writeVarString(enc, this.spec.token ?? '')
    return encoding.toUint8Array(enc)
  }

  syncMessage (step, payload) {
    const enc = this.encoder()
    encoding.writeVarUint(enc, MSG_SYNC)
    encoding.writeVarUint(enc, step)
    encoding.writeVarUint8Array(enc, payload)
    return encoding.toUint8Array(enc)
  }

  send (message) {
    if (!this.isOpen) throw new ClientClosed('send on a closed connection')
    this.ws.send(message)
  }

  get bufferedAmount () {
    return this.ws === null ? 0 : this.ws.bufferedAmount
  }

  // ------------------------------------------------------------------ receiving

  onMessage (data) {
    const stats = this.stats
    const dec = decoding.createDecoder(data)
    let kind
    try {
      if (this.hp) {
        const name = decoding.readVarString(dec)
        if (name !== this.hpName) {
          stats.deviation(`message for another document (${name.slice(0, 40)})`)
          return
        }
      }
      kind = decoding.readVarUint(dec)
    } catch {
      stats.deviation('undecodable message')
      return
    }
    if (kind === MSG_SYNC) {
      let sub, payload
      try {
        sub = decoding.readVarUint(dec)
        payload = decoding.readVarUint8Array(dec)
      } catch {
        stats.deviation('truncated sync message')
        return
      }
      if (decoding.hasContent(dec)) stats.deviation('more than one message in a frame')
      if (sub === SYNC_STEP1) {
        this.gotServerStep1 = true
        if (this.isOpen) this.send(this.syncMessage(SYNC_STEP2, Y.encodeStateAsUpdate(this.doc, payload)))
      } else if (sub === SYNC_STEP2 || sub === SYNC_UPDATE) {
        this.onUpdate(sub, payload)
      } else {
        stats.deviation(`sync subtype ${sub}`)
      }
    } else if (kind === MSG_AWARENESS) {
      stats.awarenessFrames++
    } else if (kind === MSG_AUTH) {
      let sub = -1
      let text = ''
      try {
        sub = decoding.readVarUint(dec)
        if (decoding.hasContent(dec)) text = decoding.readVarString(dec)
      } catch { text = '(undecodable)' }
      // y-websocket: [2][0 permission denied][reason]; Hocuspocus: 1 denied, 2 authenticated.
      const denied = this.hp ? sub === 1 : sub === 0
      if (denied) {
        this.authDenied = text
        stats.error(`${this.spec.doc} client ${this.spec.cid}: auth denied ${JSON.stringify(text)}`)
      }
    } else if (kind === MSG_QUERY_AWARENESS) {
      // we publish no awareness state
    } else if (this.hp && kind === MSG_SYNC_STATUS) {
      stats.syncStatusFrames++
    } else if (this.hp && kind === MSG_STATELESS) {
      // syncd's epoch after Authenticated: a stock provider ignores it, and so do we
    } else {
      stats.deviation(`message type ${kind}`)
    }
  }

  onUpdate (sub, payload) {
    const stats = this.stats
    stats.updateFrames++
    const now = monoMs()
    if (!stats.firstRecv) stats.firstRecv = now
    if (sub === SYNC_STEP2) {
      this.tStep2 = now
      this.step2Bytes = payload.length
    }
    // An empty update is [0, 0]: nothing to apply.
    const empty = payload.length === 2 && payload[0] === 0 && payload[1] === 0
    if (!this.spec.sink && !empty) {
      this.applyingUpdate = sub === SYNC_UPDATE
      try {
        Y.applyUpdate(this.doc, payload, 'server')
      } catch (err) {
        stats.deviation('update yjs cannot apply')
        stats.error(`${this.spec.doc} client ${this.spec.cid}: applyUpdate: ${err}`)
      } finally {
        this.applyingUpdate = false
      }
    }
    stats.lastRecv = monoMs()
    if (sub === SYNC_STEP2 && !this.synced) {
      this.synced = true
      this.tSynced = monoMs()
      const waiters = this.waiters
      this.waiters = []
      for (const w of waiters) w.resolve()
    }
  }

  onBench (event) {
    if (event.transaction.origin === LOCAL) return
    const stats = this.stats
    const now = this.applyingUpdate ? monoNs() : 0n
    for (const key of event.keysChanged) {
      if (key === this.wkey) continue
      const value = this.bench.get(key)
      if (typeof value !== 'string') continue
      const colon = value.indexOf(':')
      const seq = Number(value.slice(0, colon))
      const prev = this.seen.get(key) ?? 0
      if (seq <= prev) continue
      this.seen.set(key, seq)
      if (this.applyingUpdate) {
        stats.delivered += seq - prev
        stats.merged += seq - prev - 1
        stats.latencies.push(Number(now - BigInt(value.slice(colon + 1))) / 1e6)
      }
    }
  }

  // ------------------------------------------------------------------ writing

  /**
   * One small realistic edit in its own transaction; returns its Yjs update.
   *   canvas: move this writer's card (created on first use);
   *   stroke: add a new stroke element with its points (DESIGN §1.8 canvas/1);
   *   journal, text: append a few words to the Y.Text `body`.
   */
  makeUpdate (seq, kind) {
    const captured = []
    this.captured = captured
    const ts = monoNs()
    this.doc.on('update', this.onLocalUpdate)
    try {
      this.doc.transact(() => {
        if (kind === 'canvas') {
          let el = this.elements.get(this.eid)
          if (el === undefined) {
            el = new Y.Map(Object.entries({
              kind: 'card', x: 0, y: 0, w: 120, h: 80, rotation: 0, z: this.spec.cid,
              color: '#ffd166', author: this.wkey
            }))
            this.elements.set(this.eid, el)
          }
          el.set('x', Math.round(Math.random() * 20000) / 10)
          el.set('y', Math.round(Math.random() * 20000) / 10)
        } else if (kind === 'stroke') {
          const points = new Y.Array()
          const flat = []
          let x = Math.random() * 2000
          let y = Math.random() * 2000
          for (let i = 0; i < STROKE_POINTS; i++) {
            x += Math.random() * 8
            y += Math.random() * 8
            flat.push(Math.round(x * 10) / 10, Math.round(y * 10) / 10, 0.5)
          }
          points.push(flat)
          const stroke = new Y.Map(Object.entries({
            kind: 'stroke', x: flat[0], y: flat[1], w: 0, h: 0, rotation: 0, z: seq,
            color: '#073b4c', author: this.wkey, width: 2
          }))
          stroke.set('points', points)
          this.elements.set(`${this.wkey}-${seq}`, stroke)
        } else {
          this.body.insert(this.body.length, `${this.wkey}.${seq} `)
        }
        this.bench.set(this.wkey, `${seq}:${ts}`)
      }, LOCAL)
    } finally {
      this.doc.off('update', this.onLocalUpdate)
      this.captured = null
    }
    if (captured.length !== 1) throw new Error(`expected one transaction update, got ${captured.length}`)
    return captured[0]
  }

  sendUpdate (update) {
    this.send(this.syncMessage(SYNC_UPDATE, update))
  }

  /** The replica's content, canonical: equal strings mean equal documents. */
  contentJSON () {
    return canonical({ bench: this.bench.toJSON(), elements: this.elements.toJSON(), body: this.body.toString() })
  }

  markers () {
    const out = {}
    for (const [key, value] of this.bench.entries()) {
      if (typeof value === 'string') out[key] = Number(value.slice(0, value.indexOf(':')))
    }
    return out
  }
}

/** JSON with sorted keys, so two equal documents give the same text. */
export const canonical = (value) => JSON.stringify(sortKeys(value))
const sortKeys = (v) => {
  if (Array.isArray(v)) return v.map(sortKeys)
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]))
  }
  return v
}
