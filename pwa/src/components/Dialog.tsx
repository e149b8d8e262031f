import { type ReactNode, useEffect, useRef } from 'react'

import { Icon } from './Icon'

/** A modal dialog on the native <dialog> element (focus trap, Esc, backdrop for free). */
export function Dialog ({ open, onClose, title, children, wide = false }: {
  open: boolean, onClose: () => void, title: string, children: ReactNode, wide?: boolean
}) {
  const ref = useRef<HTMLDialogElement>(null)
  useEffect(() => {
    const dialog = ref.current
    if (!dialog) return
    if (open && !dialog.open) dialog.showModal()
    if (!open && dialog.open) dialog.close()
  }, [open])
  return (
    <dialog ref={ref} className={`dialog${wide ? ' dialog-wide' : ''}`} onClose={onClose} aria-labelledby='dialog-title'
      onClick={(e) => { if (e.target === ref.current) onClose() }}>
      <div className='dialog-body'>
        <header className='dialog-header'>
          <h2 id='dialog-title'>{title}</h2>
          <button type='button' className='icon-button' onClick={onClose} aria-label='Close'><Icon name='close' size={18} /></button>
        </header>
        {open && children}
      </div>
    </dialog>
  )
}
