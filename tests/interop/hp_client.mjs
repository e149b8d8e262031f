// Stock Hocuspocus providers on one shared socket, driven by a test over stdin/stdout
// (tests/test_interop_hocuspocus.py).
//
// Nothing here talks the wire protocol to sync: one unmodified `HocuspocusProviderWebsocket` from
// the pinned `@hocuspocus/provider` package carries one unmodified `HocuspocusProvider` per
// document, over the `ws` package (Node 20 has no global WebSocket). The script turns test
// commands into Yjs and provider API calls, and records what the providers report. The one
// exception is `probe`, which sends a query-awareness message through the shared socket's `send()`
// to learn, by the order of the answers, what the server had sent before.
//
// Usage: node hp_client.mjs '<config JSON>'   (or the config in the HP_CONFIG env variable)
//   config: { "url": "ws://127.0.0.1:PORT/v1/sync", "name": "node",  "timeoutMs": 8000,
//             "docs": [{ "name": "alice/journal", "token": "JWT" }, ...] }
//
// Each document has three roots: Y.Map "map", Y.Text "text", Y.Array "array".
//
// Line protocol, as in yws_client.mjs: one command per line on stdin (a word, then optionally
// one JSON argument after a space), each answered with one JSON line `{"ok": true, "cmd": ...}`.
// The script prints `{"event": "ready", "docs": {name: {clientID, auth}}}` once every provider
// has an answer to its authentication (and, if authenticated, has synced). On any failure (a wait
// timing out, a bad command, the shared socket closing) it prints `{"event": "error", "message"}`,
// repeats it on stderr and exits 1. End of stdin destroys the providers and the socket, exit 0.
//
// Every provider keeps a timeline of what it reported, in order: ["authenticated", scope],
// ["authenticationFailed", reason], ["synced", true], ["close", reason], ["unsyncedChanges", n],
// ["stateless", payload] and, read from the raw incoming messages, ["syncStatus", true|false] for every SyncStatus
// (type 8) frame and ["sync", step] for every sync frame.
//
//   edit {doc, ops}        apply ops in one transaction (ops as in yws_client.mjs); answer
//                          {stateVector, unsyncedChanges} right after the edit.
//   wait-sv {doc, sv}      wait until the document has seen every {clientID: clock} in sv.
//   wait-unsynced {doc, n} wait until provider.unsyncedChanges is n; answer {timeline}.
//   probe {doc}            send a query-awareness for doc and wait for the server's awareness
//                          answer (the provider's own presence is there); answer
//                          {unsyncedChanges, timeline} as they are when it arrives. (Not a sync
//                          step 1: the server answers those only once nothing is uncommitted.)
//   wait-event {doc, kind, after}
//                          wait until the timeline has an entry of that kind at index `after`
//                          (default 0) or later; answer {timeline}.
//   awareness {doc, state} set the provider's local awareness state.
//   dump {doc}             answer {map, text, array, stateVector, unsyncedChanges, scope,
//                          isAuthenticated, timeline}.

import * as readline from 'node:readline'
import { HocuspocusProvider, HocuspocusProviderWebsocket } from '@hocuspocus/provider'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import WebSocket from 'ws'
import * as Y from 'yjs'

const MESSAGE_SYNC = 0
const MESSAGE_AWARENESS = 1
const MESSAGE_QUERY_AWARENESS = 3
const MESSAGE_SYNC_STATUS = 8

const config = JSON.parse(process.argv[2] ?? process.env.HP_CONFIG ?? 'null')
if (!config?.url || !Array.isArray(config?.docs)) {
  process.stderr.write('usage: node hp_client.mjs \'{"url": ..., "docs": [{"name", "token"}]}\'\n')
  process.exit(2)
}
const label = config.name ?? 'node'
const timeoutMs = config.timeoutMs ?? 10000

const toJSON = (value) =>
  JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? Number(v) : v))
const say = (obj) => process.stdout.write(toJSON(obj) + '\n')
let exiting = false
const fail = (message) => {
  say({ event: 'error', name: label, message })
  process.stderr.write(`hp_client ${label}: ${message}\n`)
  process.exit(1)
}

const socket = new HocuspocusProviderWebsocket({
  url: config.url,
  WebSocketPolyfill: WebSocket,
  maxAttempts: 1
})
socket.on('disconnect', ({ event }) => {
  if (!exiting) fail(`the shared socket closed: ${event?.code} ${event?.reason}`)
})

/** Resolve once check() holds, re-checking on every `event` of `emitter`; fail after the timeout. */
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

/** One document: a stock provider on the shared socket, and what it reported. */
const open = ({ name, token }) => {
  const ydoc = new Y.Doc()
  const entry = { name, ydoc, timeline: [], auth: null }
  const record = (...item) => {
    entry.timeline.push(item)
    provider.emit('recorded')
  }
  const provider = new HocuspocusProvider({
    websocketProvider: socket,
    name,
    document: ydoc,
    token,
    onAuthenticated: ({ scope }) => {
      entry.auth = { scope }
      record('authenticated', scope)
    },
    onAuthenticationFailed: ({ reason }) => {
      entry.auth = { denied: reason }
      record('authenticationFailed', reason)
    },
    onSynced: () => record('synced', true),
    onClose: ({ event }) => record('close', event?.reason),
    onUnsyncedChanges: ({ number }) => record('unsyncedChanges', number),
    onStateless: ({ payload }) => record('stateless', payload),
    onMessage: ({ message }) => {
      // A fresh decoder over the raw frame: address, type, then the body.
      const decoder = decoding.createDecoder(new Uint8Array(message.data))
      decoding.readVarString(decoder)
      const type = decoding.readVarUint(decoder)
      if (type === MESSAGE_SYNC_STATUS) record('syncStatus', decoding.readVarUint(decoder) === 1)
      if (type === MESSAGE_SYNC) record('sync', decoding.readVarUint(decoder))
      if (type === MESSAGE_AWARENESS) record('awareness', true)
    }
  })
  entry.provider = provider
  provider.attach() // a provider on a shared socket only talks once attached
  return entry
}

const docs = new Map(config.docs.map((d) => [d.name, open(d)]))
const docOf = (name) => {
  const entry = docs.get(name)
  if (!entry) throw new Error(`unknown document ${name}`)
  return entry
}
const stateVector = (ydoc) => Object.fromEntries(Y.decodeStateVector(Y.encodeStateVector(ydoc)))

const applyOps = (ydoc, ops) => ydoc.transact(() => {
  const map = ydoc.getMap('map')
  const text = ydoc.getText('text')
  const array = ydoc.getArray('array')
  for (const [op, ...args] of ops) {
    if (op === 'map.set') map.set(args[0], args[1])
    else if (op === 'text.insert') text.insert(args[0] < 0 ? text.length : args[0], args[1])
    else if (op === 'array.push') array.push(args[0])
    else if (op === 'array.insert') array.insert(args[0], args[1])
    else throw new Error(`unknown edit op ${op}`)
  }
})

const commands = {
  edit: ({ doc, ops }) => {
    const entry = docOf(doc)
    applyOps(entry.ydoc, ops)
    return { stateVector: stateVector(entry.ydoc), unsyncedChanges: entry.provider.unsyncedChanges }
  },
  'wait-sv': async ({ doc, sv }) => {
    const { ydoc } = docOf(doc)
    const covered = () => {
      const have = stateVector(ydoc)
      return Object.entries(sv).every(([id, clock]) => (have[id] ?? 0) >= clock)
    }
    await waitFor(`${doc}: state vector ${toJSON(sv)}`, ydoc, 'update', covered,
      () => stateVector(ydoc))
    return { stateVector: stateVector(ydoc) }
  },
  'wait-unsynced': async ({ doc, n }) => {
    const { provider, timeline } = docOf(doc)
    await waitFor(`${doc}: unsyncedChanges ${n}`, provider, 'unsyncedChanges',
      () => provider.unsyncedChanges === n, () => provider.unsyncedChanges)
    return { unsyncedChanges: provider.unsyncedChanges, timeline }
  },
  probe: async ({ doc }) => {
    const { provider, timeline } = docOf(doc)
    const from = timeline.length
    const encoder = encoding.createEncoder()
    encoding.writeVarString(encoder, doc)
    encoding.writeVarUint(encoder, MESSAGE_QUERY_AWARENESS)
    socket.send(encoding.toUint8Array(encoder))
    const answered = () => timeline.slice(from).some(([kind]) => kind === 'awareness')
    await waitFor(`${doc}: the answer to a query-awareness`, provider, 'recorded', answered)
    return { unsyncedChanges: provider.unsyncedChanges, timeline }
  },
  'wait-event': async ({ doc, kind, after = 0 }) => {
    const { provider, timeline } = docOf(doc)
    await waitFor(`${doc}: ${kind}`, provider, 'recorded',
      () => timeline.slice(after).some(([k]) => k === kind), () => timeline.slice(after))
    return { timeline }
  },
  awareness: ({ doc, state }) => {
    docOf(doc).provider.awareness.setLocalState(state)
    return {}
  },
  dump: ({ doc }) => {
    const { provider, ydoc, timeline } = docOf(doc)
    return {
      clientID: ydoc.clientID,
      map: ydoc.getMap('map').toJSON(),
      text: ydoc.getText('text').toJSON(),
      array: ydoc.getArray('array').toJSON(),
      stateVector: stateVector(ydoc),
      unsyncedChanges: provider.unsyncedChanges,
      scope: provider.authorizedScope ?? null,
      isAuthenticated: provider.isAuthenticated,
      timeline
    }
  }
}

// Ready: every document refused, or authenticated and synced.
await Promise.all([...docs.values()].map(({ name, provider }) => waitFor(
  `${name}: authentication and sync`, provider, 'recorded',
  () => docs.get(name).auth?.denied !== undefined || (docs.get(name).auth && provider.isSynced),
  () => docs.get(name).timeline
)))
say({
  event: 'ready',
  name: label,
  docs: Object.fromEntries([...docs.values()].map((e) => [e.name, {
    clientID: e.ydoc.clientID, auth: e.auth
  }]))
})

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
exiting = true
for (const { provider } of docs.values()) provider.destroy()
socket.destroy()
process.exit(0)
