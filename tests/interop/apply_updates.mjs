// Applies base64 Yjs updates (a JSON array on stdin) in order to one stock yjs Y.Doc and prints
// what it holds: the JSON of its root maps and whether structs are left pending (missing
// dependencies). Used by tests/test_placeholder.py to check placeholders in yjs itself.
import * as Y from 'yjs'

let input = ''
for await (const chunk of process.stdin) input += chunk
const doc = new Y.Doc()
for (const b64 of JSON.parse(input)) Y.applyUpdate(doc, Buffer.from(b64, 'base64'))
const roots = {}
for (const name of ['meta', 'elements']) roots[name] = doc.getMap(name).toJSON()
roots.pending = doc.store.pendingStructs !== null
process.stdout.write(JSON.stringify(roots))
