import { Icon } from '../components/Icon'

export type Tool = 'select' | 'hand' | 'pen' | 'shape' | 'text' | 'connector'
const SHAPES = [['rect', 'Rectangle'], ['ellipse', 'Ellipse'], ['diamond', 'Diamond'], ['triangle', 'Triangle']] as const
const PALETTE = ['#1f2933', '#d1495b', '#e76f51', '#f4a261', '#e9c46a', '#2a9d8f', '#3d5a80', '#8e5572', '#a0c4ff', '#b7e4c7', '#ffffff']
export const TOOLS: [Tool, string, string, string][] = [
  ['select', 'select', 'Select and move', 'v'],
  ['hand', 'hand', 'Pan', 'h'],
  ['pen', 'pen', 'Pen', 'p'],
  ['shape', 'rect', 'Shape', 's'],
  ['text', 'text', 'Text', 't'],
  ['connector', 'connector', 'Connector', 'c']
]

interface ToolbarProps {
  tool: Tool
  onTool: (tool: Tool) => void
  canEdit: boolean
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
}

/** The canvas's tool bar: tools, shape and pen options, colours, undo/redo/delete. */
export function CanvasToolbar ({
  tool, onTool, canEdit, shapeKind, onShapeKind, penWidth, onPenWidth, color, onColor,
  deckOpen, onDeckOpen, canUndo, canRedo, onUndo, onRedo, canDelete, onDelete
}: ToolbarProps) {
  return (
    <div className='toolbar' role='toolbar' aria-label='Canvas tools'>
      <div className='tool-group'>
        {TOOLS.map(([id, icon, label, key]) => (
          <button type='button' key={id} className={`tool ${tool === id ? 'active' : ''}`} aria-pressed={tool === id}
            aria-label={`${label} (${key.toUpperCase()})`} title={`${label} (${key.toUpperCase()})`}
            disabled={!canEdit && id !== 'select' && id !== 'hand'}
            onClick={() => onTool(id)}>
            <Icon name={id === 'shape' ? shapeKind : icon} size={22} />
          </button>
        ))}
        <button type='button' className={`tool ${deckOpen ? 'active' : ''}`} aria-pressed={deckOpen} aria-label='Cards from the deck'
          title='Cards' disabled={!canEdit} onClick={() => onDeckOpen(!deckOpen)}><Icon name='cards' size={22} /></button>
      </div>
      {tool === 'shape' && canEdit && (
        <div className='tool-group'>
          {SHAPES.map(([id, label]) => (
            <button type='button' key={id} className={`tool small ${shapeKind === id ? 'active' : ''}`} aria-pressed={shapeKind === id}
              aria-label={label} title={label} onClick={() => onShapeKind(id)}><Icon name={id} /></button>
          ))}
        </div>
      )}
      {tool === 'pen' && canEdit && (
        <div className='tool-group'>
          {[2, 4, 8].map((w) => (
            <button type='button' key={w} className={`tool small ${penWidth === w ? 'active' : ''}`} aria-pressed={penWidth === w}
              aria-label={`Pen width ${w}`} onClick={() => onPenWidth(w)}>
              <span className='pen-dot' style={{ width: w + 4, height: w + 4 }} />
            </button>
          ))}
        </div>
      )}
      {canEdit && <div className='tool-group palette' role='group' aria-label='Colour'>
        {PALETTE.map((c) => (
          <button type='button' key={c} className={`swatch ${color === c ? 'active' : ''}`} style={{ background: c }}
            aria-label={`Colour ${c}`} aria-pressed={color === c} onClick={() => onColor(c)} />
        ))}
      </div>}
      {canEdit && <div className='tool-group'>
        <button type='button' className='tool' aria-label='Undo (Ctrl+Z)' title='Undo (Ctrl+Z)' disabled={!canEdit || !canUndo} onClick={onUndo}><Icon name='undo' size={22} /></button>
        <button type='button' className='tool' aria-label='Redo (Ctrl+Shift+Z)' title='Redo (Ctrl+Shift+Z)' disabled={!canEdit || !canRedo} onClick={onRedo}><Icon name='redo' size={22} /></button>
        <button type='button' className='tool' aria-label='Delete selected' title='Delete (Del)' disabled={!canEdit || !canDelete} onClick={onDelete}><Icon name='trash' size={22} /></button>
      </div>}
    </div>
  )
}
