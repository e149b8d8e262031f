// Line icons as inline SVG (no icon font, no emoji: they render the same on every device).
const PATHS: Record<string, string> = {
  select: 'M6 3l12 9-5.5 1.2L15 20l-2.6 1.1-2.6-6.6L6 18z',
  hand: 'M12 2v20M2 12h20M12 2L9.5 4.5M12 2l2.5 2.5M12 22l-2.5-2.5M12 22l2.5-2.5M2 12l2.5-2.5M2 12l2.5 2.5M22 12l-2.5-2.5M22 12l-2.5 2.5',
  pen: 'M4 20l1.2-4.6L16.5 4.1a2 2 0 012.8 0l.6.6a2 2 0 010 2.8L8.6 18.8zM14.5 6l3.5 3.5',
  rect: 'M4 6h16v12H4z',
  ellipse: 'M21 12c0 3.3-4 6-9 6s-9-2.7-9-6 4-6 9-6 9 2.7 9 6z',
  diamond: 'M12 3l9 9-9 9-9-9z',
  triangle: 'M12 4l9 16H3z',
  text: 'M5 6V4h14v2M12 4v16M9 20h6',
  connector: 'M6 18L18 6M18 6h-7M18 6v7M6 18m-2 0a2 2 0 104 0 2 2 0 10-4 0',
  cards: 'M3.5 7.2l7-2.4 4.4 12.8-7 2.4zM13 4h6.5a1.5 1.5 0 011.5 1.5v13a1.5 1.5 0 01-1.5 1.5H17',
  undo: 'M9 14L4 9l5-5M4 9h10.5a5.5 5.5 0 010 11H11',
  redo: 'M15 14l5-5-5-5M20 9H9.5a5.5 5.5 0 000 11H13',
  trash: 'M4 7h16M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3',
  plus: 'M12 5v14M5 12h14',
  minus: 'M5 12h14',
  back: 'M20 12H5M11 5l-7 7 7 7',
  close: 'M6 6l12 12M18 6L6 18',
  journal: 'M6 3h11a2 2 0 012 2v16H7a2 2 0 01-2-2V5a2 2 0 011-2zM5 17a2 2 0 012-2h12M9 7h6M9 10h4',
  canvas: 'M3 4h18v12H3zM12 16v5M8 21h8M7 12l3-3 3 2 4-4',
  share: 'M18 8a3 3 0 100-6 3 3 0 000 6zM6 15a3 3 0 100-6 3 3 0 000 6zM18 22a3 3 0 100-6 3 3 0 000 6zM8.6 13.5l6.8 4M15.4 6.5l-6.8 4',
  download: 'M12 3v12M7 10l5 5 5-5M5 21h14',
  present: 'M3 4h18v11H3zM12 15v4M8 21l4-2 4 2M8 11l3-3 2 2 3-3',
  fit: 'M4 9V4h5M20 9V4h-5M4 15v5h5M20 15v5h-5',
  history: 'M3 12a9 9 0 103-6.7M3 4v4h4M12 7v5l3 2',
  restore: 'M4 7h16M6 7l1 13h10l1-13M9 7V4h6v3M12 17v-5M9.5 14.5L12 12l2.5 2.5',
  edit: 'M4 20h4L19 9a2.1 2.1 0 00-3-3L5 17zM14 8l3 3',
  shield: 'M12 3l8 3v6c0 4.5-3.4 8.2-8 9-4.6-.8-8-4.5-8-9V6zM9 12l2 2 4-4'
}

export type IconName = keyof typeof PATHS

export function Icon ({ name, size = 20, className }: { name: IconName | string, size?: number, className?: string }) {
  return (
    <svg className={`icon ${className ?? ''}`} width={size} height={size} viewBox='0 0 24 24' fill='none' stroke='currentColor'
      strokeWidth={1.9} strokeLinecap='round' strokeLinejoin='round' aria-hidden='true' focusable='false'>
      <path d={PATHS[name] ?? ''} />
    </svg>
  )
}
