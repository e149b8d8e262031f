// The canvas's keyboard shortcuts: tools (their letters), delete, undo/redo, Escape, arrows to
// move the selection, Enter to edit a text box, + and - to zoom. Keys typed into a field, a
// text box's editor or a dialog are theirs, never shortcuts.
import { type RefObject, useEffect } from 'react'
import type { Canvas, CanvasElement } from 'syncd-client'
import type * as Y from 'yjs'

import { type View, zoomAt } from './geometry'
import { TOOLS, type Tool } from './Toolbar'

export function useCanvasKeys ({
  canvas, canEdit, undo, selected, byId, size, viewRef, setView, stopAutoFit, removeSelected,
  setSelected, setConnectFrom, setTool, setEditingText
}: {
  canvas: Canvas
  canEdit: boolean
  undo: Y.UndoManager
  selected: string | null
  byId: Map<string, CanvasElement>
  size: { w: number, h: number }
  viewRef: RefObject<View>
  setView: (view: View) => void
  stopAutoFit: () => void
  removeSelected: () => void
  setSelected: (id: string | null) => void
  setConnectFrom: (id: string | null) => void
  setTool: (tool: Tool) => void
  setEditingText: (id: string | null) => void
}): void {
  useEffect(() => {
    const zoom = (factor: number) => {
      stopAutoFit()
      setView(zoomAt(viewRef.current, factor, size.w / 2, size.h / 2))
    }
    const onKey = (e: KeyboardEvent) => {
      const target = e.target as HTMLElement
      if (target.closest('input, textarea, select, [contenteditable], dialog')) return
      const mod = e.ctrlKey || e.metaKey
      const el = selected ? byId.get(selected) : undefined
      if (mod && e.key.toLowerCase() === 'z') {
        e.preventDefault()
        if (!canEdit) return
        if (e.shiftKey) undo.redo(); else undo.undo()
      } else if (mod && e.key.toLowerCase() === 'y') {
        e.preventDefault()
        if (canEdit) undo.redo()
      } else if (e.key === 'Delete' || e.key === 'Backspace') {
        removeSelected()
      } else if (e.key === 'Escape') {
        setSelected(null); setConnectFrom(null); setTool('select')
      } else if (e.key.startsWith('Arrow') && selected && el && canEdit && el.kind !== 'connector') {
        // Keyboard move: 10 units, 1 with Shift.
        e.preventDefault()
        const step = e.shiftKey ? 1 : 10
        const dx = e.key === 'ArrowLeft' ? -step : e.key === 'ArrowRight' ? step : 0
        const dy = e.key === 'ArrowUp' ? -step : e.key === 'ArrowDown' ? step : 0
        canvas.move(selected, el.x + dx, el.y + dy)
      } else if (e.key === 'Enter' && selected && el?.kind === 'text' && canEdit) {
        e.preventDefault(); setEditingText(selected)
      } else if (!mod && !e.altKey) {
        const match = TOOLS.find(([, , , key]) => key === e.key.toLowerCase())
        if (match && (canEdit || match[0] === 'select' || match[0] === 'hand')) setTool(match[0])
        if (e.key === '+' || e.key === '=') zoom(1.2)
        if (e.key === '-') zoom(1 / 1.2)
      }
    }
    window.addEventListener('keydown', onKey)
    return () => window.removeEventListener('keydown', onKey)
  }, [canvas, canEdit, undo, selected, byId, size, viewRef, setView, stopAutoFit, removeSelected,
    setSelected, setConnectFrom, setTool, setEditingText])
}
