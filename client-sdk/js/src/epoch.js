// The epoch guard (DESIGN.md §1.10): never merge state of an older lineage into a document.
//
// Every document on the server has an epoch, a random id made when it is created and made anew
// whenever its history is rewritten (purge and creation again, erasure, a restore from another
// lineage). /v1/sync sends it right after `Authenticated` as a `Stateless` message
// `{"syncd": "epoch", "epoch": E}`, before anything of the document. The SDK stores the epoch it
// synced under beside the document (IndexedDB, or memory) and compares before it sends anything:
//
//   - nothing stored (the first sync of this document here): adopt E, merge as usual;
//   - the same epoch: sync as usual (offline edits, a new client id: nothing is reset);
//   - another epoch: the local replica belongs to a history the server no longer has. Merging it
//     would resurrect what was erased, or duplicate content (a Yjs replica cannot be told to
//     forget items the server dropped). So the replica is set aside whole, as a recovered copy,
//     when it holds edits the server never acknowledged, and the document starts again from an
//     empty Y.Doc under E that takes the server's content (`reset` event; `recovered` event
//     with the copy). The twin of client-sdk/python/syncd_client/epoch.py.

import * as Y from 'yjs'

/** The epoch a Stateless payload announces, or null for any other message. */
export function parseEpochMessage (payload) {
  let message
  try {
    message = JSON.parse(payload)
  } catch {
    return null
  }
  if (!message || typeof message !== 'object' || message.syncd !== 'epoch') return null
  return typeof message.epoch === 'string' ? message.epoch : null
}

/**
 * The local replica of a document as it was when the server's epoch changed under it.
 * `state` is the whole replica (what the server had acknowledged, and the local edits on top,
 * which may refer to it); `updates` are the unacknowledged local edits alone, in order. Nothing
 * of it was sent to the server. It stays stored until `doc.discardRecovered(id)`.
 */
export class RecoveredCopy {
  constructor ({ id, name, epoch, serverEpoch, state, updates, recoveredAt }) {
    this.id = id
    this.name = name
    this.epoch = epoch
    this.serverEpoch = serverEpoch
    this.state = state
    this.updates = updates
    this.recoveredAt = recoveredAt
  }

  /** A fresh Y.Doc holding the recovered replica (read it with `new Journal(ydoc)` / `Canvas`). */
  replica () {
    const ydoc = new Y.Doc()
    Y.applyUpdate(ydoc, this.state)
    return ydoc
  }

  /** The plain object that is stored (IndexedDB keeps structured clones, not classes). */
  toRecord () {
    const { id, name, epoch, serverEpoch, state, updates, recoveredAt } = this
    return { id, name, epoch, serverEpoch, state, updates, recoveredAt }
  }

  static fromRecord (record) {
    return new RecoveredCopy({
      ...record,
      state: new Uint8Array(record.state),
      updates: record.updates.map((u) => new Uint8Array(u))
    })
  }
}

let copies = 0

/** A copy id: unique on this device, ordered by time. */
export function recoveredId () {
  return `${new Date().toISOString()}#${(copies++).toString(36)}${Math.random().toString(36).slice(2, 8)}`
}
