// The on-screen keyboard, so that what one types stays above it.
//
// index.html's viewport asks for `interactive-widget=resizes-content` (Chromium on Android):
// the layout viewport shrinks when the keyboard opens and the focused field scrolls into view
// by itself. Browsers that only overlay the keyboard (iOS Safari, older Chromium) shrink just
// the visual viewport; for them the height it covers is published as `--keyboard-inset` (0 when
// closed or already resized for), which the journal page adds below its content so that the
// end of the text can scroll above the keyboard, and a focused one-line field is scrolled into
// view. A focused textarea is left to the browser, which keeps its caret visible as one types:
// scrolling a textarea taller than the screen "into view" would show its top, not the caret.
import { useEffect } from 'react'

export function useKeyboardInset (): void {
  useEffect(() => {
    const viewport = window.visualViewport
    if (!viewport) return
    const root = document.documentElement
    const update = () => {
      const covered = Math.max(0, window.innerHeight - viewport.height - viewport.offsetTop)
      root.style.setProperty('--keyboard-inset', `${Math.round(covered)}px`)
      const field = document.activeElement
      if (covered > 0 && field instanceof HTMLElement && field.matches('input')) {
        field.scrollIntoView({ block: 'nearest' })
      }
    }
    viewport.addEventListener('resize', update)
    update()
    return () => {
      viewport.removeEventListener('resize', update)
      root.style.removeProperty('--keyboard-inset')
    }
  }, [])
}
