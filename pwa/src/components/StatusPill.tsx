import type { SyncedDocument } from 'syncd-client'

import { useDocState } from '../lib/sync'

/**
 * The document's sync status in a participant's words: offline / syncing / saved (or no access).
 *
 * It never counts changes: the SDK's `pending` is the number of Yjs updates in the outbox, which
 * is one per keystroke ("42 changes" for one short entry), true to the wire and useless to a
 * person. What matters to them is whether their writing is safe and whether it has reached the
 * server. `data-pending` keeps the count for tests and debugging.
 */
export function StatusPill ({ doc }: { doc: SyncedDocument }) {
  const { status, pending, readonly, deniedReason } = useDocState(doc)
  let text: string
  let detail = ''
  if (status === 'saved') {
    text = 'Saved'
    detail = readonly ? 'up to date' : 'synced with the server'
  } else if (status === 'syncing') {
    text = 'Syncing…'
  } else if (status === 'offline') {
    text = pending && !readonly ? 'Saved on this device' : 'Offline'
    detail = pending && !readonly ? 'will sync when online' : 'nothing waiting to sync'
  } else {
    text = 'No access'
    detail = deniedReason ?? ''
  }
  return (
    <span className={`status status-${status}`} data-status={status} data-pending={pending} role='status' aria-live='polite'
      title={detail ? `${text} — ${detail}` : text}>
      <span className='status-dot' aria-hidden='true' />
      <span className='status-text'>{text}</span>
      {detail && <span className='status-detail'>{detail}</span>}
    </span>
  )
}
