// The principal's library: which journals and canvases they have, as its own small Yjs document
// (`OWNER/library`, root map `docs`: id -> {kind, title, created_at, owner}), so it is offline
// first and follows the principal from device to device like everything else. Documents shared
// by others are listed in it too once opened (their owner's title is cached).
import { newId } from 'syncd-client'
import type { SyncedDocument } from 'syncd-client'
import type * as Y from 'yjs'

export type DocKind = 'journal' | 'canvas'

export interface LibraryItem {
  id: string
  kind: DocKind
  title: string
  created_at: string
  owner: string
  template?: string
  /** When it was moved to the server's trash (DELETE /v1/docs/{id}); absent while live. */
  trashed_at?: string
}

export const libraryName = (me: string) => `${me}/library`
export const defaultJournal = (me: string) => `${me}/journal`

export function docsMap (doc: SyncedDocument): Y.Map<LibraryItem> {
  return doc.ydoc.getMap('docs') as Y.Map<LibraryItem>
}

export function listLibrary (doc: SyncedDocument): LibraryItem[] {
  const items: LibraryItem[] = []
  docsMap(doc).forEach((value, id) => {
    if (value && typeof value === 'object') items.push({ ...value, id })
  })
  return items.sort((a, b) => b.created_at.localeCompare(a.created_at))
}

/** Add or update an item (only writes when something changed). */
export function remember (library: SyncedDocument, item: LibraryItem): void {
  if (library.readonly) return
  const map = docsMap(library)
  const current = map.get(item.id)
  const next = { ...current, ...item }
  if (current && JSON.stringify(current) === JSON.stringify(next)) return
  map.set(item.id, next)
}

export function forget (library: SyncedDocument, id: string): void {
  docsMap(library).delete(id)
}

/** Mark an item as in the trash, or (`at` null) back out of it: the home screen leaves it out
 * of the live lists, and lists it in the trash while the server cannot be asked. */
export function markTrashed (library: SyncedDocument, id: string, at: string | null): void {
  const map = docsMap(library)
  const current = map.get(id)
  if (!current) return
  const { trashed_at: _, ...rest } = current
  map.set(id, at ? { ...rest, trashed_at: at } : rest)
}

/** A fresh document name under `me`: `canvas-xxxxxxxx`. */
export function newDocName (me: string, kind: DocKind): string {
  return `${me}/${kind}-${newId().slice(0, 10).replace(/[^A-Za-z0-9]/g, 'x')}`
}

export const isDocId = (value: string) =>
  /^[A-Za-z0-9._@+-]{1,64}\/[A-Za-z0-9._~-]{1,128}$/.test(value)
