// A stock y-websocket client that a test drives over stdin/stdout (tests/test_interop_yjs.py).
//
// Nothing here talks the wire protocol itself: the document is synced by an unmodified
// `WebsocketProvider` from the pinned `y-websocket` package, over the `ws` package (Node 20 has
// no global WebSocket). This script only turns test commands into Yjs API calls.
//
// Usage: node yws_client.mjs '<config JSON>'   (or the config in the YWS_CONFIG env variable)
//   config: { "url": "ws://127.0.0.1:PORT/v1/docs", "doc": "alice/journal", "token": "JWT",
//             "name": "node-a", "timeoutMs": 10000 }
//
// The document has three roots: Y.Map "map", Y.Text "text", Y.Array "array".
//
// Line protocol. Commands come in on stdin, one per line: a word, then optionally one JSON
// argument after a space. Commands run one after the other; each is answered with exactly one
// JSON line on stdout, `{"ok": true, "cmd": ..., ...}`. Besides those answers the script prints
// one line by itself: `{"event": "ready", "clientID": N, "name": ...}` once the provider has
// synced after start-up. On any failure (a wait timing out, a bad command, the server closing
// the connection for good) it prints `{"event": "error", "message": ...}`, repeats the message on
// stderr and exits with status 1. stdin reaching its end destroys the provider and exits 0.
//
//   pause                  stop reading from the socket (the `ws` package's pause()): frames the
//                          server sends wait in the kernel, as on a slow network. Local edits are
//                          still sent. Used to make edits that provably saw nobody else's.
//   resume                 read the socket again.
//   edit OPS               apply OPS in one transaction; OPS is a list of
//                            ["map.set", key, value] | ["text.insert", index, string]
//                            (index -1: at the end) | ["array.push", [values]]
//                            | ["array.insert", index, [values]].
//                          Answer: {stateVector} after the edit ({clientID: clock}).
//   wait-sv SV             wait until the document has seen every {clientID: clock} in SV.
//   awareness STATE        set the local awareness state (an object, or null).
//   wait-awareness SPEC    wait until SPEC = {"present": {id: state}, "absent": [ids]} holds for
//                          the awareness states this client sees (its own included): each id in
//                          `present` has a state holding every key of the given one (null: any
//                          state; keys the server adds, such as `principal`, are allowed), no id
//                          in `absent` has one. Answer: {awareness}.
//   dump                   answer {clientID, map, text, array, awareness, stateVector}.
//   disconnect             provider.disconnect(): close the socket, keep the document.
//   connect                provider.connect(), then wait until it has synced again.
//   destroy                provider.destroy(): leave for good (the provider first sends a null
//                          awareness state for itself, then closes the socket).
//   exit                   exit 0 (after answering).

import * as readline from 'node:readline'
import WebSocket from 'ws'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'

const config = JSON.parse(process.argv[2] ?? process.env.YWS_CONFIG ?? 'null')
if (!config?.url || !config?.doc) {
  process.stderr.write('usage: node yws_client.mjs \'{"url": ..., "doc": ..., "token": ...}\'\n')
  process.exit(2)
}
const name = config.name ?? 'node'
const timeoutMs = config.timeoutMs ?? 10000

// A 64-bit integer another client wrote as such (yrs can; pycrdt writes floats) comes back from
// Yjs as a BigInt, which JSON.stringify refuses.
const toJSON = (value) =>
  JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? Number(v) : v))

const say = (obj) => process.stdout.write(toJSON(obj) + '\n')

const fail = (message) => {
  say({ event: 'error', name, message })
  process.stderr.write(`yws_client ${name}: ${message}\n`)
  process.exit(1)
}

const ydoc = new Y.Doc()
const map = ydoc.getMap('map')
const text = ydoc.getText('text')
const array = ydoc.getArray('array')

const provider = new WebsocketProvider(config.url, config.doc, ydoc, {
  params: config.token ? { token: config.token } : {},
  WebSocketPolyfill: WebSocket
})
// A close in the 4400-4499 band is the server refusing us for good: nothing left to test.
provider.on('closed', ({ code, reason }) => fail(`server closed the connection: ${code} ${reason}`))
provider.on('connection-close', (event) => {
  if (event) process.stderr.write(`yws_client ${name}: socket closed ${event.code} ${event.reason}\n`)
})

/** Structural equality of JSON values (key order does not matter). */
const deepEqual = (a, b) => {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const keys = Object.keys(a)
  return keys.length === Object.keys(b).length && keys.every((k) => deepEqual(a[k], b[k]))
}

/** Whether the object `state` has every key of `want` with an equal value. */
const hasAll = (state, want) =>
  typeof state === 'object' && state !== null &&
  Object.entries(want).every(([k, v]) => deepEqual(state[k], v))

/** The document's state vector as a plain object {clientID: clock}. */
const stateVector = () => Object.fromEntries(Y.decodeStateVector(Y.encodeStateVector(ydoc)))

/** Awareness states this client sees (its own included) as {clientID: state}. */
const awarenessStates = () => Object.fromEntries(provider.awareness.getStates())

/**
 * Resolve once `check()` is true, re-checking whenever `emitter` fires `event`; fail after the
 * timeout, saying what was awaited and what `seen()` shows instead. Every wait goes through here.
 */
const waitFor = (what, emitter, event, check, seen = () => null) => new Promise((resolve) => {
  if (check()) return resolve()
  const timer = setTimeout(() => fail(
    `timed out after ${timeoutMs} ms waiting for ${what}; have ${toJSON(seen())}`
  ), timeoutMs)
  const listener = () => {
    if (!check()) return
    clearTimeout(timer)
    emitter.off(event, listener)
    resolve()
  }
  emitter.on(event, listener)
})

const waitSynced = () => waitFor('sync with the server', provider, 'sync', () => provider.synced)

const applyOps = (ops) => ydoc.transact(() => {
  for (const [op, ...args] of ops) {
    if (op === 'map.set') map.set(args[0], args[1])
    else if (op === 'text.insert') text.insert(args[0] < 0 ? text.length : args[0], args[1])
    else if (op === 'array.push') array.push(args[0])
    else if (op === 'array.insert') array.insert(args[0], args[1])
    else throw new Error(`unknown edit op ${op}`)
  }
})

const commands = {
  pause: () => {
    if (!provider.ws) throw new Error('not connected')
    provider.ws.pause()
    return {}
  },
  resume: () => {
    if (!provider.ws) throw new Error('not connected')
    provider.ws.resume()
    return {}
  },
  edit: (ops) => {
    applyOps(ops)
    return { stateVector: stateVector() }
  },
  'wait-sv': async (target) => {
    const covered = () => {
      const sv = stateVector()
      return Object.entries(target).every(([id, clock]) => (sv[id] ?? 0) >= clock)
    }
    await waitFor(`state vector ${toJSON(target)}`, ydoc, 'update', covered, stateVector)
    return { stateVector: stateVector() }
  },
  awareness: (state) => {
    provider.awareness.setLocalState(state)
    return {}
  },
  'wait-awareness': async ({ present = {}, absent = [] }) => {
    const holds = () => {
      const states = provider.awareness.getStates()
      return Object.entries(present).every(([id, want]) =>
        states.has(Number(id)) && (want === null || hasAll(states.get(Number(id)), want))
      ) && absent.every((id) => !states.has(Number(id)))
    }
    await waitFor(
      `awareness ${toJSON({ present, absent })}`, provider.awareness, 'change', holds, awarenessStates
    )
    return { awareness: awarenessStates() }
  },
  dump: () => ({
    clientID: ydoc.clientID,
    map: map.toJSON(),
    text: text.toJSON(),
    array: array.toJSON(),
    awareness: awarenessStates(),
    stateVector: stateVector()
  }),
  disconnect: () => {
    provider.disconnect()
    return {}
  },
  connect: async () => {
    provider.connect()
    await waitSynced()
    return {}
  },
  destroy: () => {
    provider.destroy()
    return {}
  },
  exit: () => {
    setImmediate(() => process.exit(0))
    return {}
  }
}

await waitSynced()
say({ event: 'ready', name, clientID: ydoc.clientID })

const input = readline.createInterface({ input: process.stdin, terminal: false })
for await (const line of input) {
  if (!line.trim()) continue
  const space = line.indexOf(' ')
  const cmd = space < 0 ? line : line.slice(0, space)
  const handler = commands[cmd]
  if (!handler) fail(`unknown command ${JSON.stringify(cmd)}`)
  try {
    const arg = space < 0 ? undefined : JSON.parse(line.slice(space + 1))
    say({ ok: true, cmd, ...(await handler(arg)) })
  } catch (err) {
    fail(`${cmd} failed: ${err?.stack ?? err}`)
  }
}
provider.destroy()
process.exit(0)
