import { useSyncExternalStore } from 'react'

/** Whether the CSS media query matches now, re-rendering when that changes. */
export function useMediaQuery (query: string): boolean {
  return useSyncExternalStore(
    (fn) => {
      const list = window.matchMedia(query)
      list.addEventListener('change', fn)
      return () => list.removeEventListener('change', fn)
    },
    () => window.matchMedia(query).matches
  )
}

/** The layout for phones (the same breakpoint as the stylesheets' compact top bars). */
export const PHONE_QUERY = '(max-width: 640px)'

/** Below this the canvas's full tool bar (tools, options, eleven colours: ~800-900 px) would
 * scroll sideways, so the compact one is used, tablets included. */
export const NARROW_TOOLBAR_QUERY = '(max-width: 960px)'
