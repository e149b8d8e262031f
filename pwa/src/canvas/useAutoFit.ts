// Fitting the canvas to its content when it opens. The fit waits for what it depends on — the
// local copy loaded, the stage measured (not a default size), the server's state received —
// and reads the elements from the document itself (the rendered list lags a frame behind), so
// no order of first layout, IndexedDB load and sync leaves a canvas at 100% with its content
// off-screen. Until the person touches the view it keeps fitting: while the document syncs,
// when the stage changes size, and when content first arrives on a canvas that was empty.
import { type RefObject, useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react'
import type { Canvas, DocumentStatus } from 'syncd-client'

import { type Insets, type View, bounds, fitInto, unionBounds } from './geometry'

export interface Size { w: number, h: number }

const GAP = 24 // px between the content and the screen's edge (or the tool bar)

/** The screen space the tool bar and zoom buttons take from the stage, plus a gap. */
function overlays (stage: Element, svg: DOMRect): Insets {
  const insets = { top: GAP, right: GAP, bottom: GAP, left: GAP }
  const toolbar = stage.querySelector('.toolbar')?.getBoundingClientRect()
  if (toolbar && toolbar.height) insets.bottom += Math.max(0, svg.bottom - toolbar.top)
  const zoom = stage.querySelector('.zoom-controls')?.getBoundingClientRect()
  if (zoom && zoom.width) insets.right += Math.max(0, svg.right - zoom.left)
  return insets
}

export function useAutoFit ({ canvas, svgRef, loaded, status, version, setView }: {
  canvas: Canvas
  svgRef: RefObject<SVGSVGElement | null>
  loaded: boolean
  status: DocumentStatus
  version: number
  setView: (view: View) => void
}): { size: Size | null, fit: () => void, stopAutoFit: () => void } {
  const [size, setSize] = useState<Size | null>(null)
  const auto = useRef({ on: true, synced: false, emptyAtFit: true, sizeAtFit: '' })

  useLayoutEffect(() => {
    const svg = svgRef.current
    if (!svg) return
    const measure = () => {
      const rect = svg.getBoundingClientRect()
      if (rect.width >= 10 && rect.height >= 10) {
        setSize((old) => (old && old.w === rect.width && old.h === rect.height ? old : { w: rect.width, h: rect.height }))
      }
    }
    measure()
    const observer = new ResizeObserver(measure)
    observer.observe(svg)
    return () => observer.disconnect()
  }, [svgRef])

  const fit = useCallback(() => {
    const svg = svgRef.current
    if (!svg) return
    const rect = svg.getBoundingClientRect()
    const elements = canvas.elements()
    const stage = svg.parentElement ?? svg
    setView(fitInto(unionBounds(elements.map(bounds)), rect.width, rect.height, overlays(stage, rect)))
    auto.current.emptyAtFit = elements.length === 0
    auto.current.sizeAtFit = `${rect.width}x${rect.height}`
  }, [canvas, svgRef, setView])

  // Before paint, so an open never flashes the content at 100% first.
  useLayoutEffect(() => {
    const state = auto.current
    if (!state.on || !size || !loaded) return
    if (!state.synced) {
      fit()
      if (status === 'saved') state.synced = true
    } else if ((state.emptyAtFit && canvas.elements().length > 0) || state.sizeAtFit !== `${size.w}x${size.h}`) {
      fit()
    }
  }, [size, loaded, status, version, canvas, fit])

  // The tool bar changes height (phone layout, viewer) after the first fit: fit again then too.
  useEffect(() => {
    const toolbar = svgRef.current?.parentElement?.querySelector('.toolbar')
    if (!toolbar) return
    const observer = new ResizeObserver(() => { if (auto.current.on && size && loaded) fit() })
    observer.observe(toolbar)
    return () => observer.disconnect()
  }, [svgRef, size, loaded, fit])

  const stopAutoFit = useCallback(() => { auto.current.on = false }, [])
  return { size, fit, stopAutoFit }
}
