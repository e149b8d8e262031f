// A textarea bound to a Y.Text, the way the canvas text boxes need it: the textarea keeps its
// own value while it is edited (nothing re-renders it from the document, so no keystroke can be
// overwritten by a stale render), every input becomes the smallest splice of the Y.Text, and a
// remote edit is merged into the textarea with the caret moved by exactly that edit.
import { diffStrings } from 'syncd-client'
import type * as Y from 'yjs'

type Delta = Y.YTextEvent['delta']

/**
 * Where position `index` of the text before `delta` lands in the text after it. An insert
 * exactly at `index` goes after it with `assoc` -1 (the caret stays before what someone else
 * typed there, so two people typing at the same spot each keep their own run of letters
 * together), before it with 1.
 */
export function mapIndex (index: number, delta: Delta, assoc: -1 | 1 = -1): number {
  let at = 0 // position in the old text
  let shift = 0
  for (const op of delta) {
    if (op.retain !== undefined) {
      at += op.retain
    } else if (op.insert !== undefined) {
      if (at < index || (at === index && assoc > 0)) shift += typeof op.insert === 'string' ? op.insert.length : 1
    } else if (op.delete !== undefined) {
      if (at < index) shift -= Math.min(op.delete, index - at)
      at += op.delete
    }
    if (at > index) break
  }
  return Math.max(0, index + shift)
}

/**
 * Keep `area` and `text` equal: local input is written through `write(index, remove, insert)`
 * (one transaction per input event), remote changes are applied to the textarea in place.
 * `onChange` runs after either (e.g. to resize the box). Returns the function that unbinds.
 */
export function bindTextarea (
  area: HTMLTextAreaElement,
  text: Y.Text,
  write: (index: number, remove: number, insert: string) => void,
  onChange: () => void = () => {}
): () => void {
  // What the textarea showed after the last event we handled: the base of every diff.
  let shown = text.toString()
  area.value = shown

  const onInput = () => {
    const next = area.value
    const { index, remove, insert } = diffStrings(shown, next)
    shown = next
    if (remove || insert) write(index, remove, insert)
    onChange()
  }

  const onText = (event: Y.YTextEvent) => {
    const next = text.toString()
    if (next === shown) return // our own splice coming back, or nothing visible changed
    const focused = document.activeElement === area
    const { selectionStart, selectionEnd, selectionDirection } = area
    // `shown` is the text before this event (every local input was written synchronously), so
    // the event's delta maps the selection exactly.
    area.value = next
    shown = next
    if (focused) {
      // A range keeps what is typed at its edges outside it; a caret stays before it.
      const collapsed = selectionStart === selectionEnd
      const start = Math.min(mapIndex(selectionStart, event.delta, collapsed ? -1 : 1), next.length)
      const end = Math.min(mapIndex(selectionEnd, event.delta, -1), next.length)
      area.setSelectionRange(start, end, selectionDirection)
    }
    onChange()
  }

  area.addEventListener('input', onInput)
  text.observe(onText)
  return () => {
    area.removeEventListener('input', onInput)
    text.unobserve(onText)
  }
}
