import type { Ref } from 'react'

import { Icon } from '../components/Icon'
import { Disclosure, MoreIcon } from './Disclosure'

export type Tool = 'select' | 'hand' | 'pen' | 'shape' | 'text' | 'connector'
const SHAPES = [['rect', 'Rectangle'], ['ellipse', 'Ellipse'], ['diamond', 'Diamond'], ['triangle', 'Triangle']] as const
const PALETTE: [string, string][] = [
  ['#1f2933', 'Ink'], ['#d1495b', 'Red'], ['#e76f51', 'Coral'], ['#f4a261', 'Orange'], ['#e9c46a', 'Yellow'],
  ['#2a9d8f', 'Teal'], ['#3d5a80', 'Blue'], ['#8e5572', 'Plum'], ['#a0c4ff', 'Sky'], ['#b7e4c7', 'Mint'], ['#ffffff', 'White']
]
export const TOOLS: [Tool, string, string, string][] = [
  ['select', 'select', 'Select and move', 'v'],
  ['hand', 'hand', 'Pan', 'h'],
  ['pen', 'pen', 'Pen', 'p'],
  ['shape', 'rect', 'Shape', 's'],
  ['text', 'text', 'Text', 't'],
  ['connector', 'connector', 'Connector', 'c']
]
// On a phone the bar keeps the tools used most; pan (one finger on the background does it
// already) and connector go to the "more" panel with the options and colours.
const PHONE_TOOLS: Tool[] = ['select', 'pen', 'shape', 'text']

interface ToolbarProps {
  tool: Tool
  onTool: (tool: Tool) => void
  canEdit: boolean
  compact: boolean
  shapeKind: string
  onShapeKind: (shape: string) => void
  penWidth: number
  onPenWidth: (width: number) => void
  color: string
  onColor: (color: string) => void
  deckOpen: boolean
  onDeckOpen: (open: boolean) => void
  canUndo: boolean
  canRedo: boolean
  onUndo: () => void
  onRedo: () => void
  canDelete: boolean
  onDelete: () => void
  rootRef?: Ref<HTMLDivElement>
}

/**
 * The canvas's tool bar: tools, shape and pen options, colours, undo/redo/delete. `compact`
 * (a phone) keeps it one row that fits the screen: four tools and the deck, one "more" button
 * (pan, connector, shape and pen options, colours), and undo, redo and delete always visible.
 */
export function CanvasToolbar (props: ToolbarProps) {
  const {
    tool, onTool, canEdit, compact, shapeKind, onShapeKind, penWidth, onPenWidth, color, onColor,
    deckOpen, onDeckOpen, canUndo, canRedo, onUndo, onRedo, canDelete, onDelete, rootRef
  } = props
  // In the "more" panel there is room to say what a tool is: the label shows beside the icon.
  const toolButton = ([id, icon, label, key]: (typeof TOOLS)[number], inPanel = false) => (
    <button type='button' key={id} className={`tool ${inPanel ? 'labelled' : ''} ${tool === id ? 'active' : ''}`} aria-pressed={tool === id}
      aria-label={`${label} (${key.toUpperCase()})`} title={`${label} (${key.toUpperCase()})`}
      disabled={!canEdit && id !== 'select' && id !== 'hand'} data-closes={inPanel || undefined}
      onClick={() => onTool(id)}>
      <Icon name={id === 'shape' ? shapeKind : icon} size={22} />
      {inPanel && <span aria-hidden='true'>{label}</span>}
    </button>
  )
  const deckButton = (
    <button type='button' className={`tool ${deckOpen ? 'active' : ''}`} aria-pressed={deckOpen} aria-label='Cards from the deck'
      title='Cards' disabled={!canEdit} onClick={() => onDeckOpen(!deckOpen)}><Icon name='cards' size={22} /></button>
  )
  const shapeOptions = (
    <div className='tool-group' role='group' aria-label='Shape'>
      {SHAPES.map(([id, label]) => (
        <button type='button' key={id} className={`tool small ${shapeKind === id ? 'active' : ''}`} aria-pressed={shapeKind === id}
          aria-label={label} title={label} data-closes onClick={() => onShapeKind(id)}><Icon name={id} /></button>
      ))}
    </div>
  )
  const penOptions = (
    <div className='tool-group' role='group' aria-label='Pen width'>
      {[2, 4, 8].map((w) => (
        <button type='button' key={w} className={`tool small ${penWidth === w ? 'active' : ''}`} aria-pressed={penWidth === w}
          aria-label={`Pen width ${w}`} title={`Pen width ${w}`} data-closes onClick={() => onPenWidth(w)}>
          <span className='pen-dot' style={{ width: w + 4, height: w + 4 }} />
        </button>
      ))}
    </div>
  )
  const palette = (
    <div className='tool-group palette' role='group' aria-label='Colour'>
      {PALETTE.map(([c, name]) => (
        <button type='button' key={c} className={`swatch ${color === c ? 'active' : ''}`} style={{ background: c }}
          aria-label={`Colour ${name}`} title={name} aria-pressed={color === c} data-closes onClick={() => onColor(c)} />
      ))}
    </div>
  )
  const history = (
    <div className='tool-group'>
      <button type='button' className='tool' aria-label='Undo (Ctrl+Z)' title='Undo (Ctrl+Z)' disabled={!canUndo} onClick={onUndo}><Icon name='undo' size={22} /></button>
      <button type='button' className='tool' aria-label='Redo (Ctrl+Shift+Z)' title='Redo (Ctrl+Shift+Z)' disabled={!canRedo} onClick={onRedo}><Icon name='redo' size={22} /></button>
      <button type='button' className='tool' aria-label='Delete selected' title='Delete (Del)' disabled={!canDelete} onClick={onDelete}><Icon name='trash' size={22} /></button>
    </div>
  )

  if (compact && canEdit) {
    const inPanel = tool === 'hand' || tool === 'connector'
    return (
      <div ref={rootRef} className='toolbar compact' role='toolbar' aria-label='Canvas tools'>
        <div className='tool-group'>
          {TOOLS.filter(([id]) => PHONE_TOOLS.includes(id)).map((t) => toolButton(t))}
          {deckButton}
        </div>
        <div className='tool-group'>
          <Disclosure label='More tools and colours' className='toolbar-more' panelClassName='toolbar-panel'
            buttonClassName={`tool ${inPanel ? 'active' : ''}`}
            button={<span className='more-swatch' style={{ background: color }}><MoreIcon size={16} /></span>}>
            <div className='tool-group' role='group' aria-label='More tools'>
              {TOOLS.filter(([id]) => !PHONE_TOOLS.includes(id)).map((t) => toolButton(t, true))}
            </div>
            {tool === 'shape' && shapeOptions}
            {tool === 'pen' && penOptions}
            {palette}
          </Disclosure>
        </div>
        {history}
      </div>
    )
  }
  return (
    <div ref={rootRef} className='toolbar' role='toolbar' aria-label='Canvas tools'>
      <div className='tool-group'>
        {TOOLS.map((t) => toolButton(t))}
        {deckButton}
      </div>
      {tool === 'shape' && canEdit && shapeOptions}
      {tool === 'pen' && canEdit && penOptions}
      {canEdit && palette}
      {canEdit && history}
    </div>
  )
}
