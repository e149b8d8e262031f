// How stock yjs reads Yjs v1 updates: for tests/test_update_format.py and the fuzz run, which
// compare it with the strict decoder (crdt/update_format.py).
//
// Usage: node update_inspect.mjs < updates      (one base64 update per line; no network)
//
// Output: one JSON line per input line, in order. When yjs decodes the update
// (Y.decodeUpdate, which reads every struct, its content and the delete set):
//   {"ok": true, "clients": {client: [first clock, end clock]}, "structs": n,
//    "kinds": ["ContentString", "GC", "Skip", ...], "sv": {client: clock},
//    "ds": {client: [[clock, len], ...]}, "applied": true|"<error>"}
// where `sv` is Y.encodeStateVectorFromUpdate decoded and `applied` says whether
// Y.applyUpdate into a fresh document (then reading its roots) threw. Otherwise
// {"ok": false, "error": "..."}. Exits 0 at the end of its input.

import * as Y from 'yjs'
import * as decoding from 'lib0/decoding'
import { createInterface } from 'node:readline'

const decodeStateVector = (bytes) => {
  const decoder = decoding.createDecoder(bytes)
  const sv = {}
  const n = decoding.readVarUint(decoder)
  for (let i = 0; i < n; i++) {
    const client = decoding.readVarUint(decoder)
    sv[client] = decoding.readVarUint(decoder)
  }
  return sv
}

const inspect = (update) => {
  const { structs, ds } = Y.decodeUpdate(update)
  const clients = {}
  const kinds = new Set()
  for (const s of structs) {
    kinds.add(s.content ? s.content.constructor.name : s.constructor.name)
    const range = clients[s.id.client]
    const end = s.id.clock + s.length
    if (range === undefined) clients[s.id.client] = [s.id.clock, end]
    else range[1] = end
  }
  const deletes = {}
  ds.clients.forEach((items, client) => {
    deletes[client] = items.map((item) => [item.clock, item.len])
  })
  let applied = true
  try {
    const doc = new Y.Doc()
    Y.applyUpdate(doc, update)
    doc.share.forEach((type) => type.toJSON())
  } catch (err) {
    applied = String(err && err.message ? err.message : err)
  }
  const sv = decodeStateVector(Y.encodeStateVectorFromUpdate(update))
  return { ok: true, clients, structs: structs.length, kinds: [...kinds].sort(), sv, ds: deletes, applied }
}

const lines = createInterface({ input: process.stdin })
for await (const line of lines) {
  let answer
  try {
    answer = inspect(new Uint8Array(Buffer.from(line, 'base64')))
  } catch (err) {
    answer = { ok: false, error: String(err && err.message ? err.message : err) }
  }
  process.stdout.write(JSON.stringify(answer) + '\n')
}
