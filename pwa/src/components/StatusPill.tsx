import type { SyncedDocument } from 'syncd-client'

import { useDocState } from '../lib/sync'

/** The document's sync status, as the SDK reports it: offline / syncing / saved (or denied). */
export function StatusPill ({ doc }: { doc: SyncedDocument }) {
  const { status, pending, readonly, deniedReason } = useDocState(doc)
  let text: string
  let detail = ''
  if (status === 'saved') text = 'Saved'
  else if (status === 'syncing') {
    text = 'Syncing…'
    if (pending && !readonly) detail = `${pending} change${pending === 1 ? '' : 's'} to send`
  } else if (status === 'offline') {
    text = 'Offline'
    detail = pending ? `${pending} change${pending === 1 ? '' : 's'} kept on this device` : 'all changes saved'
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
