// A viewer's refused edit is rolled back, not left on screen.
//
// The server never applies a viewer's update: on /v1/sync it answers `SyncStatus(false)`
// (docs/protocol.md, "SyncStatus"), and the SDK emits `refused`; while the scope is read-only
// the SDK does not even send live edits. Either way the edit stays in the local Y.Doc and in the
// outbox, so the page would keep showing it with "Syncing…" forever (the outbox never empties).
// A Yjs update cannot be taken out of a Y.Doc, so the replica itself is dropped: its local copy
// and outbox are erased, the document is closed, and the page is built again on a fresh replica
// that syncs the server's content (nothing of the viewer's is in it, since nothing of the
// viewer's was stored). Only read-only documents are rolled back: there the local replica can
// hold nothing the server would take. What the dropped replica showed is kept in memory as JSON
// (`kept`), so that someone downgraded to viewer with writing not yet sent can still save it.
import { useEffect, useState } from 'react'
import { Canvas, Journal } from 'syncd-client'

import { useApp } from './sync'

export interface Rollback {
  /** Bumped every time the replica was replaced: key the page on it. */
  count: number
  /** Set after a rollback, until dismissed: the dropped replica's content as JSON. */
  kept: { kind: 'journal' | 'canvas', json: unknown } | null
  dismiss: () => void
}

export function useRefusedRollback (name: string): Rollback {
  const { client } = useApp()
  const [count, setCount] = useState(0)
  const [kept, setKept] = useState<Rollback['kept']>(null)
  useEffect(() => {
    const doc = client.open(name)
    let rolling = false
    // A local edit on a read-only document, an edit refused by the server, or a downgrade to
    // viewer while edits were waiting: what the outbox holds will never be stored.
    const check = () => {
      if (rolling || !doc.readonly || doc.pending === 0) return
      rolling = true
      const journal = doc.ydoc.getMap('meta').get('schema') === 'journal/1'
      setKept({
        kind: journal ? 'journal' : 'canvas',
        json: journal ? new Journal(doc.ydoc).toJSON() : new Canvas(doc.ydoc).toJSON()
      })
      doc.clearLocal()
        .catch((err) => console.warn(`could not erase the refused local copy of ${name}`, err))
        .then(() => doc.close())
        .finally(() => setCount((n) => n + 1))
    }
    const offs = [doc.on('change', check), doc.on('refused', check), doc.on('scope', check)]
    check()
    return () => offs.forEach((off) => off())
  }, [client, name, count])
  return { count, kept, dismiss: () => setKept(null) }
}
