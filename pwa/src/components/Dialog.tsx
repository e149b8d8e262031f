import { type ReactNode, useEffect, useId, useRef } from 'react'

import { Icon } from './Icon'

/** A modal dialog on the native <dialog> element (focus trap, Esc, backdrop for free). */
export function Dialog ({ open, onClose, title, children, wide = false }: {
  open: boolean, onClose: () => void, title: string, children: ReactNode, wide?: boolean
}) {
  const ref = useRef<HTMLDialogElement>(null)
  // A page holds many dialogs (one per bin icon on Home): each needs its own title id.
  const titleId = useId()
  useEffect(() => {
    const dialog = ref.current
    if (!dialog) return
    if (open && !dialog.open) dialog.showModal()
    if (!open && dialog.open) dialog.close()
  }, [open])
  return (
    <dialog ref={ref} className={`dialog${wide ? ' dialog-wide' : ''}`} onClose={onClose} aria-labelledby={titleId}
      onClick={(e) => { if (e.target === ref.current) onClose() }}>
      <div className='dialog-body'>
        <header className='dialog-header'>
          <h2 id={titleId}>{title}</h2>
          <button type='button' className='icon-button' onClick={onClose} aria-label='Close'><Icon name='close' size={18} /></button>
        </header>
        {open && children}
      </div>
    </dialog>
  )
}
