// A load-generator process: the Yjs clients of one worker, driven by benchmarks/pool.py over
// stdin/stdout, one JSON command per line, each answered by one JSON line ({"error": ...} when
// it failed). Commands run one at a time:
//
//   connect  {specs, timeout, concurrency}   open clients, at most `concurrency` handshakes at once
//   run      {start_at, duration, rate, max_updates, kind}
//            writers write from start_at (monotonic s) at `rate` updates/s each (open loop),
//            or as fast as the socket takes them when rate is null; the stats are reset first
//   quiesce  {expect, timeout, stall}        wait until every replica holds every writer's last seq
//   snapshot                                 content digests of the replicas, by document
//   stats                                    counters and open clients
//   fetch    {specs, timeout}                fresh one-off clients: sync, report timings, content
//   close                                    close every client, answer, exit
//
// End of stdin (the orchestrator went away) exits too. Every wait here has a timeout, every loop
// a count or a deadline.

import { createHash } from 'node:crypto'
import * as readline from 'node:readline'
import { Stats } from './stats.mjs'
import { ClientClosed, YClient, monoMs } from './yclient.mjs'

// A writer more than this far behind its schedule resets it (counted as "late").
const LATE_MS = 250
// Above this many bytes waiting in a socket, an as-fast-as-possible writer waits.
const HIGH_WATER = 1 << 20

const stats = new Stats()
const clients = []
let lagTimer = null

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)))
const digest = (text) => createHash('sha256').update(text).digest('hex').slice(0, 16)

async function connect ({ specs, timeout = 20, concurrency = 64 }) {
  const failed = {}
  const durations = []
  let next = 0
  const started = monoMs()
  const lane = async () => {
    while (next < specs.length) {
      const spec = specs[next++]
      const client = new YClient(spec, stats)
      try {
        await client.open(timeout * 1000)
      } catch (err) {
        const kind = err instanceof ClientClosed ? 'ClientClosed' : String(err.message).split(':')[0]
        failed[kind] = (failed[kind] ?? 0) + 1
        stats.error(`${spec.doc} client ${spec.cid}: open failed: ${err.message}`)
        client.close()
        continue
      }
      durations.push(client.tSynced - client.tStart)
      clients.push(client)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, specs.length) }, lane))
  // The server's step 1 normally arrives with (or right before) its step 2: bounded grace.
  for (let i = 0; i < 50 && !clients.every((c) => c.gotServerStep1); i++) await sleep(20)
  return {
    connected: durations.length,
    failed,
    elapsed_s: (monoMs() - started) / 1e3,
    connect_ms: durations,
    no_server_step1: clients.filter((c) => !c.gotServerStep1).length
  }
}

function startLagMonitor () {
  stopLagMonitor()
  let expected = monoMs() + 10
  const tick = () => {
    const now = monoMs()
    stats.loopLag.push(Math.max(0, now - expected))
    expected = now + 10
    lagTimer = setTimeout(tick, 10)
  }
  lagTimer = setTimeout(tick, 10)
}

function stopLagMonitor () {
  if (lagTimer !== null) clearTimeout(lagTimer)
  lagTimer = null
}

async function run ({ start_at: startAt, duration, rate = null, max_updates: maxUpdates = null, kind = 'canvas' }) {
  stats.reset()
  const startMs = startAt * 1e3
  const deadline = startMs + duration * 1e3
  const writers = clients.filter((c) => c.spec.writer)
  const firstSeq = new Map(writers.map((c) => [c, c.seq]))
  let late = 0
  let maxLag = 0
  const t0 = monoMs()
  startLagMonitor()

  const write = (client) => new Promise((resolve) => {
    const interval = rate ? 1000 / rate : 0
    let nextT = startMs + Math.random() * interval // de-synchronise the writers
    let count = 0
    const sendOne = () => {
      client.sendUpdate(client.makeUpdate(client.seq + 1, kind))
      client.seq++
      count++
    }
    const step = () => {
      try {
        for (let burst = 0; burst < 10_000; burst++) { // bounded; yields below
          if (!client.isOpen || (maxUpdates !== null && count >= maxUpdates)) return resolve()
          const now = monoMs()
          if (now >= deadline || (rate && nextT >= deadline)) return resolve()
          if (rate) {
            if (nextT > now) return setTimeout(step, nextT - now)
            const lag = now - nextT
            if (lag > maxLag) maxLag = lag
            if (lag > LATE_MS) { // open loop, but never a burst of more than 250 ms
              late++
              nextT = now
            }
            nextT += interval
            sendOne()
          } else {
            if (client.bufferedAmount > HIGH_WATER) return setTimeout(step, 1)
            sendOne()
            if (count % 16 === 0) return setImmediate(step) // let the replicas' callbacks run
          }
        }
        setImmediate(step)
      } catch (err) {
        stats.error(`${client.spec.doc} writer ${client.spec.cid}: ${err.message}`)
        resolve()
      }
    }
    setTimeout(step, Math.max(0, startMs - monoMs()))
  })

  await Promise.all(writers.map(write))
  const t1 = monoMs()
  const lastSeq = {}
  for (const c of writers) (lastSeq[c.spec.doc] ??= {})[c.wkey] = c.seq
  return {
    sent: writers.reduce((n, c) => n + c.seq - firstSeq.get(c), 0),
    last_seq: lastSeq,
    late,
    max_lag_s: maxLag / 1e3,
    write_s: (t1 - Math.max(t0, startMs)) / 1e3,
    writers_closed: writers.filter((c) => !c.isOpen).length
  }
}

/** Replicas here that miss some writer's last seq, and how many updates they miss in all. */
function missing (expect) {
  let replicas = 0
  let updates = 0
  for (const c of clients) {
    if (c.spec.sink || !c.isOpen) continue
    let short = 0
    for (const [wkey, seq] of Object.entries(expect[c.spec.doc] ?? {})) {
      if (wkey !== c.wkey) short += Math.max(0, seq - (c.seen.get(wkey) ?? 0))
    }
    if (short) replicas++
    updates += short
  }
  return { replicas, updates }
}

async function quiesce ({ expect, timeout = 10, stall = null }) {
  const deadline = monoMs() + timeout * 1000
  const started = monoMs()
  let stalled = false
  let left = missing(expect)
  while (left.replicas && monoMs() < deadline) {
    await sleep(20)
    left = missing(expect)
    const quiet = monoMs() - Math.max(stats.lastRecv, started)
    if (left.replicas && stall !== null && quiet > stall * 1000) {
      stalled = true
      break
    }
  }
  stopLagMonitor()
  return { ...exportStats(), incomplete_replicas: left.replicas, missing_updates: left.updates, stalled }
}

function snapshot () {
  const digests = {}
  for (const c of clients) {
    if (c.spec.sink) continue
    const byDoc = (digests[c.spec.doc] ??= {})
    const d = digest(c.contentJSON())
    byDoc[d] = (byDoc[d] ?? 0) + 1
  }
  return { digests }
}

function exportStats () {
  const open = clients.filter((c) => c.isOpen)
  const openByDoc = {}
  for (const c of open) if (!c.spec.sink) openByDoc[c.spec.doc] = (openByDoc[c.spec.doc] ?? 0) + 1
  return { ...stats.export(), open_clients: open.length, open_by_doc: openByDoc, clients: clients.length }
}

async function fetchOne (spec, timeout) {
  const own = new Stats()
  const client = new YClient(spec, own)
  try {
    await client.open(timeout * 1000)
  } catch (err) {
    client.close()
    let detail = err.message
    if (client.authDenied !== null) detail += ` (auth: ${JSON.stringify(client.authDenied)})`
    if (client.closeCode !== null) detail += ` (close code ${client.closeCode})`
    return { url: spec.url, ok: false, error: detail }
  }
  for (let i = 0; i < 20 && !client.gotServerStep1; i++) await sleep(10)
  const body = client.contentJSON()
  const result = {
    url: spec.url,
    ok: true,
    error: Object.keys(own.deviations).length ? `deviations: ${JSON.stringify(own.deviations)}` : '',
    open_ms: client.tOpen - client.tStart,
    step2_ms: client.tStep2 - client.tStart,
    synced_ms: client.tSynced - client.tStart,
    step2_bytes: client.step2Bytes,
    got_server_step1: client.gotServerStep1,
    digest: digest(body),
    json_bytes: body.length,
    marker_seqs: client.markers()
  }
  client.close()
  await client.waitClosed(2000)
  return result
}

async function fetch ({ specs, timeout = 60, concurrency = 32 }) {
  const results = new Array(specs.length)
  let next = 0
  const lane = async () => {
    while (next < specs.length) {
      const i = next++
      results[i] = await fetchOne(specs[i], timeout)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, specs.length) }, lane))
  return { results }
}

async function close () {
  stopLagMonitor()
  for (const c of clients) c.close()
  await Promise.all(clients.map((c) => c.waitClosed(3000)))
  return { closed: clients.length }
}

const handlers = {
  connect,
  run,
  quiesce,
  snapshot,
  fetch,
  close,
  stats: exportStats
}

const say = (obj) => new Promise((resolve) => process.stdout.write(JSON.stringify(obj) + '\n', resolve))

const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
for await (const line of lines) {
  if (!line.trim()) continue
  let cmd
  let reply
  try {
    cmd = JSON.parse(line)
    const handler = handlers[cmd.op]
    if (handler === undefined) throw new Error(`unknown op ${JSON.stringify(cmd.op)}`)
    reply = await handler(cmd)
  } catch (err) {
    reply = { error: `${err.name}: ${err.message}` }
  }
  await say(reply)
  if (cmd?.op === 'close') break
}
process.exit(0)
