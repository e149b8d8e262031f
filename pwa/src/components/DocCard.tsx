// One document on the home screen: the link that opens it and, for one's own, rename and delete.
//
// The title lives in the document (`meta.title`, journal/1 and canvas/1), so renaming writes it
// there, through the document's own replica (offline too), and the library keeps a copy for
// listing. Before writing, the replica waits (briefly) to be in sync: a concurrent write of the
// same Y.Map key is decided by client id, not by time, so a title set on a stale replica could
// lose to an older one.
import { useState } from 'react'
import type { SyncedDocument } from 'syncd-client'

import { type LibraryItem, remember } from '../lib/library'
import { href } from '../lib/router'
import { useApp } from '../lib/sync'
import { Dialog } from './Dialog'
import { Icon } from './Icon'
import { TrashButton } from './Trash'

export function DocCard ({ item, sub, library, manage, defaultTitle }: {
  item: LibraryItem, sub: string, library: SyncedDocument, manage: { rename: boolean, trash: boolean }, defaultTitle: string
}) {
  const title = item.title || defaultTitle
  const [renaming, setRenaming] = useState(false)
  const shared = !manage.rename && !manage.trash
  return (
    <li className='doc-card-item' data-doc={item.id}>
      <a className={`doc-card ${shared ? 'shared' : item.kind}`} href={href({ page: item.kind, doc: item.id })}>
        <span className='doc-card-icon'><Icon name={item.kind} size={24} /></span>
        <span className='doc-card-title' dir='auto'>{title}</span>
        <span className='doc-card-sub'>{sub}</span>
      </a>
      {!shared && (
        <span className='doc-card-actions'>
          {manage.rename && (
            <button type='button' className='icon-button' aria-label={`Rename “${title}”`} title='Rename' onClick={() => setRenaming(true)}>
              <Icon name='edit' size={18} />
            </button>
          )}
          {manage.trash && (
            <TrashButton name={item.id} kind={item.kind} title={title} library={library}
              label={`Move “${title}” to the trash`} onTrashed={() => {}} />
          )}
        </span>
      )}
      {renaming && <RenameDialog item={item} title={title} library={library} onClose={() => setRenaming(false)} />}
    </li>
  )
}

function RenameDialog ({ item, title, library, onClose }: {
  item: LibraryItem, title: string, library: SyncedDocument, onClose: () => void
}) {
  const { client } = useApp()
  const [value, setValue] = useState(item.title)
  const [busy, setBusy] = useState(false)
  const save = async () => {
    const next = value.trim()
    if (!next || next === item.title) return onClose()
    setBusy(true)
    const doc = client.open(item.id)
    await doc.whenLoaded
    if (doc.status === 'syncing') await doc.whenSaved({ timeout: 4000 }).catch(() => {})
    // A document never opened yet has no meta: initialising it with the name (as its page
    // would, with a default name) keeps the page from overwriting the new one.
    const view = item.kind === 'canvas' ? doc.canvas() : doc.journal()
    if (view.metaMap.get('schema')) view.rename(next)
    else view.init(next)
    remember(library, { ...item, title: next })
    setBusy(false)
    onClose()
  }
  return (
    <Dialog open onClose={onClose} title={`Rename “${title}”`}>
      <form className='rename' onSubmit={(e) => { e.preventDefault(); save() }}>
        <label htmlFor='rename-title'>New name</label>
        <input id='rename-title' value={value} dir='auto' autoFocus maxLength={200}
          onChange={(e) => setValue(e.target.value)} />
        <div className='dialog-footer'>
          <button type='submit' className='button primary' disabled={busy || !value.trim()}>{busy ? 'Saving…' : 'Rename'}</button>
          <button type='button' className='button ghost' onClick={onClose}>Cancel</button>
        </div>
      </form>
    </Dialog>
  )
}
