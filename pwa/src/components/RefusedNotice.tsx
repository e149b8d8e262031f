import { download, slug } from '../lib/download'
import type { Rollback } from '../lib/rollback'

/** Shown after a viewer's edit was refused by the server and rolled back (lib/rollback.ts). */
export function RefusedNotice ({ name, kept, onDismiss }: {
  name: string, kept: NonNullable<Rollback['kept']>, onDismiss: () => void
}) {
  const save = () => download(`${slug(name.split('/')[1] ?? '', kept.kind)}-not-kept.json`,
    JSON.stringify(kept.json, null, 2), 'application/json')
  return (
    <div className='toast' role='alert' data-testid='refused-notice'>
      <span>You can only view this {kept.kind}, so your change was not kept. It shows what the server holds.</span>
      <span className='toast-actions'>
        <button type='button' className='button ghost' onClick={save}>Download it</button>
        <button type='button' className='button ghost' onClick={onDismiss}>OK</button>
      </span>
    </div>
  )
}
