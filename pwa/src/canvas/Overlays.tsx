// What the canvas draws over its elements, in world coordinates but at a constant screen size:
// the selection (with its resize handle) and the other people's cursors.
import type { Peer } from '../lib/sync'
import type { Box } from './geometry'

export function SelectionBox ({ box, scale, connecting, resizable }: {
  box: Box, scale: number, connecting: boolean, resizable: boolean
}) {
  const px = (n: number) => n / scale
  return (
    <g className='selection' pointerEvents='none'>
      <rect x={box.x - 6} y={box.y - 6} width={box.w + 12} height={box.h + 12} fill='none' rx={6}
        stroke={connecting ? '#e76f51' : '#2563eb'} strokeWidth={px(2)} strokeDasharray={`${px(6)} ${px(4)}`} />
      {resizable && (
        <rect data-handle='resize' pointerEvents='all' x={box.x + box.w + 6 - px(9)} y={box.y + box.h + 6 - px(9)}
          width={px(18)} height={px(18)} rx={px(4)} fill='#ffffff' stroke='#2563eb' strokeWidth={px(2)}
          style={{ cursor: 'nwse-resize' }} />
      )}
    </g>
  )
}

export function PeerCursors ({ peers, scale }: { peers: Peer[], scale: number }) {
  return (
    <>
      {peers.filter((p) => !p.self && p.cursor).map((p) => (
        <g key={p.clientId} transform={`translate(${p.cursor!.x} ${p.cursor!.y}) scale(${1 / scale})`} pointerEvents='none' className='cursor'>
          <path d='M0 0 L0 20 L5.5 15 L9.5 24 L13 22.5 L9 14 L16 14 Z' fill={p.color} stroke='#ffffff' strokeWidth={1.5} />
          <rect x={14} y={20} rx={6} height={22} width={p.name.length * 8 + 16} fill={p.color} />
          <text x={22} y={35} fontSize={13} fill='#ffffff' fontFamily='system-ui, sans-serif' fontWeight={600}>{p.name}</text>
        </g>
      ))}
    </>
  )
}
