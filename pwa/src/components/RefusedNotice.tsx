/** Shown after a viewer's edit was refused by the server and rolled back (lib/rollback.ts). */
export function RefusedNotice ({ kind, onDismiss }: { kind: 'canvas' | 'journal', onDismiss: () => void }) {
  return (
    <div className='toast' role='alert' data-testid='refused-notice'>
      <span>You can only view this {kind}, so your change was not kept. It shows what the server holds.</span>
      <button type='button' className='button ghost' onClick={onDismiss}>OK</button>
    </div>
  )
}
