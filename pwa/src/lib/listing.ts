// What the server lists as ours and as shared with us (`GET /v1/docs`), merged into the library.
//
// The library document only knows what was opened on one of our devices; a canvas someone shares
// with us is on the server's list at once. Read whenever Home is shown (mounted, the tab comes
// back, the network returns). A document the library does not know yet is described from its
// JSON view (schema → journal or canvas, title) and remembered, so it is listed offline too.
import { useCallback, useEffect, useState } from 'react'
import type { SyncedDocument } from 'syncd-client'

import { type ListedDoc, describeDoc, listDocs } from './api'
import { type DocKind, docsMap, libraryName, remember } from './library'
import { useApp } from './sync'

/** A name's best guess of its kind, until its schema is known (the app names them so). */
export const guessKind = (id: string): DocKind => (/\/journal/.test(id) ? 'journal' : 'canvas')

export interface Listing {
  /** The server's list, or null while it was never read (offline, or the first read running). */
  docs: ListedDoc[] | null
  refresh: () => void
}

export function useListing (library: SyncedDocument): Listing {
  const { me } = useApp()
  const [docs, setDocs] = useState<ListedDoc[] | null>(null)
  const [round, setRound] = useState(0)
  const refresh = useCallback(() => setRound((n) => n + 1), [])

  useEffect(() => {
    const onVisible = () => { if (document.visibilityState === 'visible') refresh() }
    document.addEventListener('visibilitychange', onVisible)
    window.addEventListener('online', refresh)
    window.addEventListener('pageshow', refresh)
    return () => {
      document.removeEventListener('visibilitychange', onVisible)
      window.removeEventListener('online', refresh)
      window.removeEventListener('pageshow', refresh)
    }
  }, [refresh])

  useEffect(() => {
    let live = true
    listDocs().then(async (listed) => {
      if (!live) return
      const visible = listed.filter((d) => d.id !== libraryName(me))
      setDocs(visible)
      await library.whenLoaded
      const known = docsMap(library)
      for (const doc of visible) {
        const item = known.get(doc.id)
        if (item && (item.title || doc.role === 'owner')) continue
        const described = await describeDoc(doc.id)
        if (!live) return
        remember(library, {
          id: doc.id,
          kind: described?.kind ?? item?.kind ?? guessKind(doc.id),
          title: described?.title ?? item?.title ?? '',
          owner: doc.owner,
          created_at: item?.created_at ?? doc.created_at
        })
      }
    }, () => { /* offline, or the server is away: the library's list stands */ })
    return () => { live = false }
  }, [library, me, round])

  return { docs, refresh }
}
