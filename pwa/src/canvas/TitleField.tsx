import { useEffect, useState } from 'react'

/**
 * The canvas title. The title is a plain string in `meta` (last writer wins), re-read from the
 * document a frame after each change; while the field is focused it shows its own state, so a
 * key typed before that frame is never overwritten by the older value.
 */
export function TitleField ({ title, placeholder, disabled, onRename }: {
  title: string, placeholder: string, disabled: boolean, onRename: (title: string) => void
}) {
  const [editing, setEditing] = useState<string | null>(null)
  useEffect(() => { if (disabled) setEditing(null) }, [disabled])
  return (
    <input className='doc-title' aria-label='Canvas title' dir='auto' value={editing ?? title} disabled={disabled}
      placeholder={placeholder}
      onFocus={() => setEditing(title)} onBlur={() => setEditing(null)}
      onChange={(e) => { setEditing(e.target.value); onRename(e.target.value) }} />
  )
}
