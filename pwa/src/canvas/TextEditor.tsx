import { useEffect, useRef } from 'react'
import type { Canvas, CanvasElement } from 'syncd-client'
import { diffStrings } from 'syncd-client'
import type * as Y from 'yjs'

import type { View } from './geometry'

/** A textarea over a text element, editing its Y.Text in place. */
export function TextEditor ({ canvas, el, view, onDone }: { canvas: Canvas, el: CanvasElement & { kind: 'text' }, view: View, onDone: () => void }) {
  const ref = useRef<HTMLTextAreaElement>(null)
  useEffect(() => { ref.current?.focus() }, [])
  const text = canvas.elementMap(el.id).get('text') as Y.Text
  return (
    <textarea ref={ref} className='text-editor' dir='auto' aria-label='Edit text' value={el.text}
      style={{
        left: el.x * view.scale + view.tx,
        top: el.y * view.scale + view.ty,
        width: Math.max(el.w, 160) * view.scale,
        minHeight: Math.max(el.h, 44) * view.scale,
        fontSize: 22 * view.scale,
        color: el.color ?? '#1f2933'
      }}
      onChange={(e) => {
        const { index, remove, insert } = diffStrings(text.toString(), e.target.value)
        canvas.editText(el.id, index, { delete: remove, insert })
      }}
      onBlur={onDone}
      onKeyDown={(e) => { if (e.key === 'Escape' || (e.key === 'Enter' && (e.ctrlKey || e.metaKey))) onDone() }} />
  )
}

