// The trash (DESIGN.md §1.10): "Move to trash" on one's own documents, and the list of what is in
// it (`GET /v1/trash`), with restore (back whole: content, access, versions) and "delete
// forever" (a purge: the content and its history are erased on the server, irreversibly).
import { useEffect, useState } from 'react'
import type { SyncedDocument, TrashEntry } from 'syncd-client'

import { type DocKind, type LibraryItem, docsMap, forget, markTrashed } from '../lib/library'
import { navigate } from '../lib/router'
import { useApp } from '../lib/sync'
import { formatDate } from '../pages/JournalPage'
import { Dialog } from './Dialog'
import { Icon } from './Icon'

const offlineMessage = (err: unknown, what: string) =>
  (err as { status?: number }).status === undefined
    ? `${what} needs a connection to the server.`
    : `${what} failed: ${(err as Error).message}`

/** The bin icon and its confirmation. `onTrashed` runs once the server moved it (by default the
 * home screen is shown: the document's own page has nothing left to show). */
export function TrashButton ({ name, kind, title, library, label, onTrashed = () => navigate({ page: 'home' }) }: {
  name: string, kind: DocKind, title: string, library: SyncedDocument, label?: string, onTrashed?: () => void
}) {
  const { client } = useApp()
  const [asking, setAsking] = useState(false)
  const [error, setError] = useState<string | null>(null)
  const trash = async () => {
    setError(null)
    try {
      await client.deleteDocument(name)
      markTrashed(library, name, new Date().toISOString())
      setAsking(false)
      onTrashed()
    } catch (err) {
      setError(offlineMessage(err, 'Moving to the trash'))
    }
  }
  return (
    <>
      <button type='button' className='icon-button' aria-label={label ?? `Move this ${kind} to the trash`} title='Move to trash' onClick={() => setAsking(true)}>
        <Icon name='trash' />
      </button>
      <Dialog open={asking} onClose={() => setAsking(false)} title={`Move “${title || name}” to the trash?`}>
        <p>It disappears for everyone it is shared with. You can restore it, whole, from the trash on the home screen.</p>
        {error && <p className='error' role='alert'>{error}</p>}
        <div className='dialog-footer'>
          <button type='button' className='button danger' onClick={trash}>Move to trash</button>
          <button type='button' className='button ghost' onClick={() => setAsking(false)}>Cancel</button>
        </div>
      </Dialog>
    </>
  )
}

/**
 * What is in the trash: the server's list (`GET /v1/trash`) when it answers, with titles from
 * the library; offline, what the library remembers moving there.
 */
export function TrashList ({ library, remembered }: { library: SyncedDocument, remembered: LibraryItem[] }) {
  const { client } = useApp()
  const [server, setServer] = useState<TrashEntry[] | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [purging, setPurging] = useState<LibraryItem | null>(null)
  const [round, setRound] = useState(0)
  // Asked again whenever the library's own list changes (something was moved there from Home).
  const rememberedIds = remembered.map((item) => item.id).join('\n')
  useEffect(() => {
    let live = true
    client.trash().then((list) => { if (live) setServer(list) }, () => { if (live) setServer(null) })
    return () => { live = false }
  }, [client, round, rememberedIds])

  const known = docsMap(library)
  const items: LibraryItem[] = server
    ? server.map((entry) => ({
      kind: 'canvas' as DocKind,
      title: '',
      owner: entry.id.split('/')[0],
      created_at: entry.deleted_at,
      ...known.get(entry.id),
      id: entry.id,
      trashed_at: entry.deleted_at
    }))
    : remembered
  if (!items.length) return null

  const restore = async (item: LibraryItem) => {
    setError(null)
    try {
      await client.restoreDocument(item.id)
      markTrashed(library, item.id, null)
      client.documents.get(item.id)?.reopen() // it was closed with "document deleted"
      setRound((n) => n + 1)
    } catch (err) {
      setError(offlineMessage(err, 'Restoring'))
    }
  }
  const purge = async (item: LibraryItem) => {
    setError(null)
    try {
      await client.deleteDocument(item.id, { purge: true })
      const doc = client.documents.get(item.id)
      if (doc) await doc.clearLocal()
      forget(library, item.id)
      setPurging(null)
      setRound((n) => n + 1)
    } catch (err) {
      setError(offlineMessage(err, 'Deleting'))
    }
  }

  return (
    <section aria-labelledby='trash-h'>
      <div className='section-head'><h2 id='trash-h'>Trash</h2></div>
      {error && <p className='error' role='alert'>{error}</p>}
      <ul className='trash-list'>
        {items.map((item) => (
          <li key={item.id} className='trash-item' data-doc={item.id}>
            <Icon name={item.kind} />
            <span className='trash-title' dir='auto'>{item.title || item.id}</span>
            <span className='muted small'>deleted {item.trashed_at ? formatDate(item.trashed_at, true) : ''}</span>
            <button type='button' className='button' onClick={() => restore(item)}><Icon name='restore' size={18} />Restore</button>
            <button type='button' className='button ghost danger' onClick={() => setPurging(item)}>Delete forever…</button>
          </li>
        ))}
      </ul>
      <Dialog open={purging !== null} onClose={() => setPurging(null)} title={`Delete “${purging?.title || purging?.id}” forever?`}>
        <p>Its content, its history and its versions are erased on the server. This cannot be undone.</p>
        <div className='dialog-footer'>
          <button type='button' className='button danger' onClick={() => purging && purge(purging)}>Delete forever</button>
          <button type='button' className='button ghost' onClick={() => setPurging(null)}>Cancel</button>
        </div>
      </Dialog>
    </section>
  )
}
