// Rendering canvas/1 elements as SVG. Visuals are attributes (no CSS classes), so the same
// markup exports to PNG as it is.
import { memo } from 'react'
import type { CanvasElement } from 'syncd-client'

import { deckCard } from '../lib/deck'
import { bounds, edgePoint, ellipsePoint, isRtl, strokeCaps, strokeOutline } from './geometry'

const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Noto Sans Hebrew", "Noto Sans Arabic", sans-serif'

export const DEFAULT_COLORS = {
  stroke: '#1f2933',
  shape: '#a0c4ff',
  text: '#1f2933',
  connector: '#6c757d'
}

export function darker (color: string, amount = 0.28): string {
  const m = /^#([0-9a-f]{6})$/i.exec(color)
  if (!m) return 'rgba(0,0,0,0.35)'
  const n = parseInt(m[1], 16)
  const c = (shift: number) => Math.round(((n >> shift) & 255) * (1 - amount))
  return `rgb(${c(16)}, ${c(8)}, ${c(0)})`
}

/** Black or white, whichever reads better on `color`. */
export function ink (color: string): string {
  const m = /^#([0-9a-f]{6})$/i.exec(color)
  if (!m) return '#1f2933'
  const n = parseInt(m[1], 16)
  const lum = (0.299 * ((n >> 16) & 255) + 0.587 * ((n >> 8) & 255) + 0.114 * (n & 255)) / 255
  return lum > 0.55 ? '#1f2933' : '#ffffff'
}

const rotate = (el: CanvasElement) => (el.rotation ? ` rotate(${el.rotation} ${el.w / 2} ${el.h / 2})` : '')

export const ElementView = memo(function ElementView ({ el, byId, hidden }: {
  el: CanvasElement, byId: Map<string, CanvasElement>, hidden?: boolean
}) {
  const common = { 'data-id': el.id, 'data-kind': el.kind, opacity: hidden ? 0.35 : 1 }
  switch (el.kind) {
    case 'card': {
      const card = deckCard(el.card_id)
      const fill = el.color ?? card.color
      const size = Math.max(10, Math.min(el.w / 5.2, 28, (el.w - 26) / (card.word.length * 0.62)))
      return (
        <g {...common} transform={`translate(${el.x} ${el.y})${rotate(el)}`}>
          <rect x={3} y={5} width={el.w} height={el.h} rx={14} fill='rgba(15,23,42,0.12)' />
          <rect width={el.w} height={el.h} rx={14} fill='#fffdf8' stroke={darker(fill, 0.35)} strokeWidth={1.5} />
          <rect x={8} y={8} width={el.w - 16} height={el.h - 16} rx={9} fill={fill} />
          <circle cx={el.w / 2} cy={el.h * 0.34} r={Math.min(el.w, el.h) * 0.13} fill='rgba(255,255,255,0.55)' />
          <text x={el.w / 2} y={el.h * 0.64} textAnchor='middle' fontFamily={FONT} fontSize={size}
            fontWeight={650} fill={ink(fill)}>{card.word}</text>
          <text x={el.w / 2} y={el.h - 18} textAnchor='middle' fontFamily={FONT} fontSize={10}
            letterSpacing={1.5} fill={ink(fill)} opacity={0.7}>{el.deck.toUpperCase()}</text>
        </g>
      )
    }
    case 'shape': {
      const fill = el.color ?? DEFAULT_COLORS.shape
      const line = { fill, stroke: darker(fill), strokeWidth: 2 }
      let shape
      if (el.shape === 'ellipse') shape = <ellipse cx={el.w / 2} cy={el.h / 2} rx={el.w / 2} ry={el.h / 2} {...line} />
      else if (el.shape === 'diamond') shape = <polygon points={`${el.w / 2},0 ${el.w},${el.h / 2} ${el.w / 2},${el.h} 0,${el.h / 2}`} {...line} />
      else if (el.shape === 'triangle') shape = <polygon points={`${el.w / 2},0 ${el.w},${el.h} 0,${el.h}`} {...line} />
      else shape = <rect width={el.w} height={el.h} rx={10} {...line} />
      return <g {...common} transform={`translate(${el.x} ${el.y})${rotate(el)}`}>{shape}</g>
    }
    case 'text': {
      const lines = (el.text || ' ').split('\n')
      const rtl = isRtl(el.text)
      return (
        <g {...common} transform={`translate(${el.x} ${el.y})${rotate(el)}`}>
          <rect width={el.w} height={Math.max(el.h, lines.length * 28 + 12)} fill='transparent' />
          <text fontFamily={FONT} fontSize={22} fill={el.color ?? DEFAULT_COLORS.text} direction={rtl ? 'rtl' : 'ltr'}
            textAnchor='start' x={rtl ? el.w - 6 : 6}>
            {lines.map((line, i) => <tspan key={i} x={rtl ? el.w - 6 : 6} y={30 + i * 28}>{line || ' '}</tspan>)}
          </text>
        </g>
      )
    }
    case 'stroke':
      return (
        <g {...common} transform={`translate(${el.x} ${el.y})`} fill={el.color ?? DEFAULT_COLORS.stroke}>
          <path d={strokeOutline(el.points, el.width)} />
          {strokeCaps(el.points, el.width).map(([x, y, r], i) => <circle key={i} cx={x} cy={y} r={r} />)}
        </g>
      )
    case 'connector': {
      const from = byId.get(el.from)
      const to = byId.get(el.to)
      if (!from || !to || from.kind === 'connector' || to.kind === 'connector') return null // an end was deleted
      const a = bounds(from)
      const b = bounds(to)
      const end = (el: CanvasElement, box: typeof a, tx: number, ty: number) =>
        el.kind === 'shape' && el.shape === 'ellipse' && !el.rotation ? ellipsePoint(box, tx, ty) : edgePoint(box, tx, ty)
      const [x1, y1] = end(from, a, b.x + b.w / 2, b.y + b.h / 2)
      const [x2, y2] = end(to, b, a.x + a.w / 2, a.y + a.h / 2)
      const color = el.color ?? DEFAULT_COLORS.connector
      const angle = Math.atan2(y2 - y1, x2 - x1)
      const head = (side: number) => `${x2 - 14 * Math.cos(angle + side * 0.45)},${y2 - 14 * Math.sin(angle + side * 0.45)}`
      return (
        <g {...common}>
          <line x1={x1} y1={y1} x2={x2} y2={y2} stroke='transparent' strokeWidth={18} />
          <line x1={x1} y1={y1} x2={x2} y2={y2} stroke={color} strokeWidth={2.5} strokeLinecap='round' />
          <polygon points={`${x2},${y2} ${head(1)} ${head(-1)}`} fill={color} />
        </g>
      )
    }
    default:
      return null
  }
})
