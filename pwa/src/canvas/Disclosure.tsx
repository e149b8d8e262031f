import { type ReactNode, useEffect, useId, useRef, useState } from 'react'

/** Three dots, for "more" buttons (drawn here: the shared icon set has no such icon). */
export function MoreIcon ({ size = 20 }: { size?: number }) {
  return (
    <svg className='icon' width={size} height={size} viewBox='0 0 24 24' fill='currentColor' aria-hidden='true' focusable='false'>
      <circle cx={5} cy={12} r={2} /><circle cx={12} cy={12} r={2} /><circle cx={19} cy={12} r={2} />
    </svg>
  )
}

/**
 * A button that shows and hides a panel of further controls (the disclosure pattern: plain
 * buttons in the panel, reachable with Tab, so any control may live there). The panel closes
 * on Escape (focus back on the button), on a pointer outside, and after a click on an element
 * marked `data-closes` — not on others, so a control that opens a dialog of its own keeps it.
 */
export function Disclosure ({ label, button, className = '', panelClassName = '', buttonClassName = 'icon-button', children }: {
  label: string
  button: ReactNode
  className?: string
  panelClassName?: string
  buttonClassName?: string
  children: ReactNode
}) {
  const [open, setOpen] = useState(false)
  const root = useRef<HTMLDivElement>(null)
  const toggle = useRef<HTMLButtonElement>(null)
  const id = useId()
  useEffect(() => {
    if (!open) return
    const close = (e: PointerEvent) => {
      const target = e.target as Element
      // A modal dialog opened from the panel lives in the panel's DOM: it does not close it.
      if (!root.current?.contains(target)) setOpen(false)
    }
    document.addEventListener('pointerdown', close)
    return () => document.removeEventListener('pointerdown', close)
  }, [open])
  return (
    <div ref={root} className={`disclosure ${className}`}
      onKeyDown={(e) => {
        if (e.key === 'Escape' && open && !(e.target as Element).closest('dialog')) {
          e.stopPropagation(); setOpen(false); toggle.current?.focus()
        }
      }}>
      <button ref={toggle} type='button' className={buttonClassName} aria-label={label} title={label}
        aria-expanded={open} aria-controls={id} onClick={() => setOpen(!open)}>
        {button}
      </button>
      <div id={id} className={`disclosure-panel ${panelClassName}`} hidden={!open}
        onClick={(e) => { if ((e.target as Element).closest('[data-closes]')) setOpen(false) }}>
        {children}
      </div>
    </div>
  )
}
