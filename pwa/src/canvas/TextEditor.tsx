import { useLayoutEffect, useRef } from 'react'
import type { Canvas, CanvasElement } from 'syncd-client'
import type * as Y from 'yjs'

import { bindTextarea } from '../lib/textareaBinding'
import type { View } from './geometry'

const FONT_PX = 22 // the text element's font size in canvas units (Elements.tsx)
const MIN_EDITOR_PX = 16

/**
 * A textarea over a text element, editing its Y.Text in place. The textarea is uncontrolled:
 * React never writes its value (a render from the document a frame late would overwrite the
 * keys typed since); `bindTextarea` keeps it and the Y.Text equal in both directions.
 */
export function TextEditor ({ canvas, el, view, onDone }: {
  canvas: Canvas, el: CanvasElement & { kind: 'text' }, view: View, onDone: () => void
}) {
  const ref = useRef<HTMLTextAreaElement>(null)
  const id = el.id

  // Bound and focused before the browser paints, so the first key already lands here.
  useLayoutEffect(() => {
    const area = ref.current
    if (!area) return
    const text = canvas.elementMap(id).get('text') as Y.Text
    const fit = () => {
      area.style.height = 'auto'
      area.style.height = `${area.scrollHeight + 2}px`
    }
    const unbind = bindTextarea(area, text, (index, remove, insert) => {
      if (canvas.has(id)) canvas.editText(id, index, { delete: remove, insert })
    }, fit)
    fit()
    area.focus()
    area.setSelectionRange(area.value.length, area.value.length)
    return unbind
  }, [canvas, id])

  // Zoomed far out (a fitted canvas on a phone) the box would be too small to read and a phone
  // would zoom the page into a field under 16 px: the editor never draws smaller than that.
  const scale = Math.max(view.scale, MIN_EDITOR_PX / FONT_PX)
  return (
    <textarea ref={ref} className='text-editor' dir='auto' aria-label='Edit text' spellCheck
      style={{
        left: el.x * view.scale + view.tx,
        top: el.y * view.scale + view.ty,
        width: Math.max(el.w, 160) * scale,
        minHeight: Math.max(el.h, 44) * scale,
        fontSize: FONT_PX * scale,
        color: el.color ?? '#1f2933'
      }}
      onBlur={onDone}
      onKeyDown={(e) => { if (e.key === 'Escape' || (e.key === 'Enter' && (e.ctrlKey || e.metaKey))) onDone() }} />
  )
}
