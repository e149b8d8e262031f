// Opening an id this device does not know: ask the server whether it exists before showing it.
//
// A document comes into being the first time its owner connects to it (DESIGN.md §1.3), so
// simply opening a mistyped id of one's own would silently create an empty canvas. Ids the
// library knows (made here, synced from another device, opened before) open at once, offline
// too; any other id is checked with `GET /v1/docs/{id}` first, and a missing one says so, with
// "Create it" only when it is under one's own name.
import { type ReactNode, useEffect, useState } from 'react'
import type { SyncedDocument } from 'syncd-client'

import { docsMap, remember } from '../lib/library'
import { useApp, useLoaded } from '../lib/sync'
import { Icon } from './Icon'

type Check = 'checking' | 'open' | 'missing' | 'offline'

export function DocumentGate ({ id, kind, library, children }: {
  id: string, kind: 'journal' | 'canvas', library: SyncedDocument, children: ReactNode
}) {
  const { client, me } = useApp()
  const loaded = useLoaded(library)
  const [check, setCheck] = useState<Check>('checking')
  const [round, setRound] = useState(0)
  const [creating, setCreating] = useState(false)
  const owner = id.split('/')[0]

  useEffect(() => {
    if (!loaded) return
    if (docsMap(library).has(id)) return setCheck('open')
    let live = true
    setCheck('checking')
    client.metadata(id).then(
      (meta) => { if (live) setCheck(meta ? 'open' : 'missing') },
      () => { if (live) setCheck('offline') }
    )
    return () => { live = false }
  }, [loaded, library, client, id, round])

  if (check === 'open') return <>{children}</>
  const create = async () => {
    setCreating(true)
    remember(library, { id, kind, title: '', owner: me, created_at: new Date().toISOString() })
    // Our first sync creates it on the server; its page asks for its metadata, so (online) it
    // opens once the server holds it, as Home does for a new document: never a 404.
    const doc = client.open(id)
    if (client.connected) await doc.whenSaved({ timeout: 3000 }).catch(() => {})
    setCheck('open')
  }
  const what = kind === 'canvas' ? 'canvas' : 'journal'
  return (
    <div className='page gate-page'>
      <header className='topbar'>
        <a className='icon-button' href='#/' aria-label='Back to home'><Icon name='back' /></a>
        <h1 className='gate-id'>{id}</h1>
      </header>
      <main className='gate' aria-live='polite'>
        {check === 'checking' && <p className='muted'>Looking for “{id}”…</p>}
        {check === 'missing' && (
          <>
            <h2>No {what} called “{id}”</h2>
            <p>
              {owner === me
                ? `You have no ${what} with this name. Check the link or the id for a typing mistake.`
                : `Either it does not exist, or ${owner} has not shared it with you. Check the link, or ask ${owner} to share it again.`}
            </p>
          </>
        )}
        {check === 'offline' && (
          <>
            <h2>You are offline</h2>
            <p>“{id}” is not on this device yet. It can be opened once you are back online.</p>
          </>
        )}
        {check !== 'checking' && (
          <div className='gate-actions'>
            <a className='button primary' href='#/'>Back to home</a>
            {check === 'offline' && <button type='button' className='button' onClick={() => setRound((n) => n + 1)}>Try again</button>}
            {owner === me && <button type='button' className='button ghost' onClick={create} disabled={creating}>Create a new {what} called “{id.split('/')[1]}”</button>}
          </div>
        )}
      </main>
    </div>
  )
}
