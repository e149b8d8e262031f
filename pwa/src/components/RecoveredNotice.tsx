import { Canvas, Journal, type SyncedDocument } from 'syncd-client'

import { download, slug } from '../lib/download'
import { useRecovered } from '../lib/sync'

/**
 * Shown when the SDK set local edits aside because the document's history was rewritten on the
 * server (its epoch changed: purged and created again, erased). They were never merged, so
 * nothing old came back into the document; they stay on this device until dismissed, and can be
 * downloaded as the JSON of the replica they were made on.
 */
export function RecoveredNotice ({ doc, kind }: { doc: SyncedDocument, kind: 'canvas' | 'journal' }) {
  const [copies, refresh] = useRecovered(doc)
  if (!copies.length) return null
  const edits = copies.reduce((sum, copy) => sum + copy.updates.length, 0)
  const save = () => {
    const replicas = copies.map((copy) => {
      const ydoc = copy.replica()
      return {
        recovered_at: copy.recoveredAt,
        unsent_edits: copy.updates.length,
        content: kind === 'canvas' ? new Canvas(ydoc).toJSON() : new Journal(ydoc).toJSON()
      }
    })
    download(`${slug(doc.name.split('/')[1] ?? '', kind)}-recovered.json`, JSON.stringify(replicas, null, 2), 'application/json')
  }
  const dismiss = async () => {
    for (const copy of copies) await doc.discardRecovered(copy)
    refresh()
  }
  return (
    <div className='banner warning recovered' role='alert' data-testid='recovered-notice' data-edits={edits}>
      <span>
        This {kind} was reset on the server (its history was rewritten), so {edits} change{edits === 1 ? '' : 's'} made
        on this device {edits === 1 ? 'was' : 'were'} not merged into it. {edits === 1 ? 'It is' : 'They are'} kept here.
      </span>
      <span className='banner-actions'>
        <button type='button' className='button' onClick={save}>Download them</button>
        <button type='button' className='button ghost' onClick={dismiss}>Dismiss</button>
      </span>
    </div>
  )
}
