// Canvas geometry: the viewport transform, element bounds, stroke outlines, connector ends.
import type { CanvasElement } from 'syncd-client'

/** screen = world * scale + (tx, ty) */
export interface View { tx: number, ty: number, scale: number }

export const MIN_SCALE = 0.1
export const MAX_SCALE = 6

export const clampScale = (s: number) => Math.min(MAX_SCALE, Math.max(MIN_SCALE, s))

export function toWorld (view: View, sx: number, sy: number): { x: number, y: number } {
  return { x: (sx - view.tx) / view.scale, y: (sy - view.ty) / view.scale }
}

/** Zoom by `factor` keeping the screen point (sx, sy) still. */
export function zoomAt (view: View, factor: number, sx: number, sy: number): View {
  const scale = clampScale(view.scale * factor)
  const k = scale / view.scale
  return { scale, tx: sx - (sx - view.tx) * k, ty: sy - (sy - view.ty) * k }
}

export interface Box { x: number, y: number, w: number, h: number }

export function bounds (el: CanvasElement): Box {
  if (el.kind === 'stroke') {
    const pts = el.points
    if (!pts.length) return { x: el.x, y: el.y, w: 0, h: 0 }
    let minX = Infinity; let minY = Infinity; let maxX = -Infinity; let maxY = -Infinity
    for (let i = 0; i + 2 < pts.length; i += 3) {
      minX = Math.min(minX, pts[i]); maxX = Math.max(maxX, pts[i])
      minY = Math.min(minY, pts[i + 1]); maxY = Math.max(maxY, pts[i + 1])
    }
    const pad = el.width
    return { x: el.x + minX - pad, y: el.y + minY - pad, w: maxX - minX + 2 * pad, h: maxY - minY + 2 * pad }
  }
  return { x: el.x, y: el.y, w: el.w, h: el.h }
}

export function unionBounds (boxes: Box[]): Box | null {
  if (!boxes.length) return null
  let minX = Infinity; let minY = Infinity; let maxX = -Infinity; let maxY = -Infinity
  for (const b of boxes) {
    minX = Math.min(minX, b.x); minY = Math.min(minY, b.y)
    maxX = Math.max(maxX, b.x + b.w); maxY = Math.max(maxY, b.y + b.h)
  }
  return { x: minX, y: minY, w: maxX - minX, h: maxY - minY }
}

/** A view that shows `box` inside a screen of `width` x `height` with a margin. */
export function fitView (box: Box | null, width: number, height: number, margin = 48): View {
  if (!box || width <= 0 || height <= 0) return { tx: width / 2, ty: height / 2, scale: 1 }
  const scale = clampScale(Math.min((width - 2 * margin) / Math.max(box.w, 1), (height - 2 * margin) / Math.max(box.h, 1), 1.5))
  return { scale, tx: width / 2 - (box.x + box.w / 2) * scale, ty: height / 2 - (box.y + box.h / 2) * scale }
}

/** Screen space kept clear of content when fitting (tool bar, zoom buttons), in px. */
export interface Insets { top: number, right: number, bottom: number, left: number }

/** A view that shows `box` inside the part of a `width` x `height` screen left by `insets`. */
export function fitInto (box: Box | null, width: number, height: number, insets: Insets): View {
  const w = Math.max(1, width - insets.left - insets.right)
  const h = Math.max(1, height - insets.top - insets.bottom)
  const cx = insets.left + w / 2
  const cy = insets.top + h / 2
  if (!box) return { tx: cx, ty: cy, scale: 1 }
  const scale = clampScale(Math.min(w / Math.max(box.w, 1), h / Math.max(box.h, 1), 1.5))
  return { scale, tx: cx - (box.x + box.w / 2) * scale, ty: cy - (box.y + box.h / 2) * scale }
}

/** The radius of a stroke at a point of pressure `p` (0..1). */
export const radius = (width: number, p: number) => (width / 2) * (0.45 + 1.1 * Math.min(1, Math.max(0, p)))

/**
 * A filled outline for a pressure-sensitive stroke: offsets on both sides of the centre line by
 * the local radius, joined with quadratic curves through the midpoints. The round caps are
 * drawn by the caller as circles at both ends (`strokeCaps`).
 */
export function strokeOutline (points: number[], width: number): string {
  const n = Math.floor(points.length / 3)
  if (n === 0) return ''
  const px = (i: number) => points[i * 3]
  const py = (i: number) => points[i * 3 + 1]
  const pr = (i: number) => radius(width, points[i * 3 + 2])
  if (n === 1) {
    const r = pr(0)
    return `M ${px(0) - r} ${py(0)} a ${r} ${r} 0 1 0 ${2 * r} 0 a ${r} ${r} 0 1 0 ${-2 * r} 0 Z`
  }
  const left: [number, number][] = []
  const right: [number, number][] = []
  for (let i = 0; i < n; i++) {
    const a = Math.max(0, i - 1)
    const b = Math.min(n - 1, i + 1)
    let dx = px(b) - px(a)
    let dy = py(b) - py(a)
    const len = Math.hypot(dx, dy) || 1
    dx /= len; dy /= len
    const r = pr(i)
    left.push([px(i) - dy * r, py(i) + dx * r])
    right.push([px(i) + dy * r, py(i) - dx * r])
  }
  const f = (v: number) => Math.round(v * 100) / 100
  const smooth = (pts: [number, number][]) => {
    let d = ''
    for (let i = 1; i < pts.length - 1; i++) {
      const [x, y] = pts[i]
      const [nx, ny] = pts[i + 1]
      d += ` Q ${f(x)} ${f(y)} ${f((x + nx) / 2)} ${f((y + ny) / 2)}`
    }
    const last = pts[pts.length - 1]
    return d + ` L ${f(last[0])} ${f(last[1])}`
  }
  const back = right.slice().reverse()
  return `M ${f(left[0][0])} ${f(left[0][1])}` + smooth(left) +
    ` L ${f(back[0][0])} ${f(back[0][1])}` + smooth(back) + ' Z'
}

/** The two end caps of a stroke: [x, y, r] circles. */
export function strokeCaps (points: number[], width: number): [number, number, number][] {
  const n = Math.floor(points.length / 3)
  if (n < 2) return []
  const cap = (i: number): [number, number, number] => [points[i * 3], points[i * 3 + 1], radius(width, points[i * 3 + 2])]
  return [cap(0), cap(n - 1)]
}

/** Where the segment from the centre of an ellipse inscribed in `box` towards (tx, ty) leaves it. */
export function ellipsePoint (box: Box, tx: number, ty: number): [number, number] {
  const cx = box.x + box.w / 2
  const cy = box.y + box.h / 2
  const dx = tx - cx
  const dy = ty - cy
  const rx = Math.max(box.w / 2, 0.001)
  const ry = Math.max(box.h / 2, 0.001)
  const k = Math.hypot(dx / rx, dy / ry)
  if (!k) return [cx, cy]
  const s = Math.min(1, 1 / k)
  return [cx + dx * s, cy + dy * s]
}

/** Where the segment from the centre of `box` towards (tx, ty) leaves the box. */
export function edgePoint (box: Box, tx: number, ty: number): [number, number] {
  const cx = box.x + box.w / 2
  const cy = box.y + box.h / 2
  const dx = tx - cx
  const dy = ty - cy
  if (!dx && !dy) return [cx, cy]
  const sx = dx ? (box.w / 2) / Math.abs(dx) : Infinity
  const sy = dy ? (box.h / 2) / Math.abs(dy) : Infinity
  const s = Math.min(sx, sy, 1)
  return [cx + dx * s, cy + dy * s]
}

/** Whether the first strong character of `text` is right-to-left (Hebrew, Arabic, ...). */
export function isRtl (text: string): boolean {
  const match = text.match(/[A-Za-z\u00C0-\u024F\u0590-\u08FF\uFB1D-\uFDFF\uFE70-\uFEFF]/)
  return Boolean(match && /[\u0590-\u08FF\uFB1D-\uFDFF\uFE70-\uFEFF]/.test(match[0]))
}

/**
 * How far (px, screen) the view must move down (positive) or up (negative) so that `inner`
 * lies between `top` and `bottom`; 0 when it does, or when it is taller than the gap.
 */
export function shiftIntoView (inner: { top: number, bottom: number }, top: number, bottom: number): number {
  if (inner.bottom - inner.top > bottom - top) return top - inner.top
  if (inner.bottom > bottom) return bottom - inner.bottom
  if (inner.top < top) return top - inner.top
  return 0
}
