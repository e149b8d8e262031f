// Hocuspocus 4 as its documentation starts it: `new Server({ port })`, in memory (no
// extensions: no database, no logger), default configuration otherwise. It listens on
// 127.0.0.1 only, and without the start screen.
//
//   node benchmarks/node/hocuspocus_server.mjs PORT
//
// Stock Hocuspocus wants an authentication message for every document before anything else;
// with no onAuthenticate hook, any token passes (the load generator sends an empty one).

import { Server } from '@hocuspocus/server'

const port = Number(process.argv[2] ?? process.env.PORT)
if (!Number.isInteger(port) || port <= 0) {
  process.stderr.write('usage: node hocuspocus_server.mjs PORT\n')
  process.exit(2)
}
const server = new Server({ port, address: '127.0.0.1', quiet: true })
await server.listen()
console.log(`hocuspocus listening on 127.0.0.1:${port}`)
