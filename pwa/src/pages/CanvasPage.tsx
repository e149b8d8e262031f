import { useCallback, useEffect, useMemo, useRef, useState } from 'react'
import type { Canvas, CanvasElement, DocumentMetadata, SyncedDocument } from 'syncd-client'
import * as Y from 'yjs'

import { CanvasTopBar } from '../canvas/CanvasTopBar'
import { ElementView } from '../canvas/Elements'
import { PeerCursors, SelectionBox } from '../canvas/Overlays'
import { TextEditor } from '../canvas/TextEditor'
import { CanvasToolbar, type Tool } from '../canvas/Toolbar'
import { FollowPill } from '../canvas/FollowPill'
import { useAutoFit } from '../canvas/useAutoFit'
import { useCanvasKeys } from '../canvas/useCanvasKeys'
import { Icon } from '../components/Icon'
import { type Box, type View, bounds, clampScale, shiftIntoView, toWorld, zoomAt } from '../canvas/geometry'
import '../canvas/canvas.css'
import { HistoryPanel } from '../components/HistoryPanel'
import { RecoveredNotice } from '../components/RecoveredNotice'
import { ShareDialog } from '../components/ShareDialog'
import { DECK, DECK_ID } from '../lib/deck'
import { docsMap, remember } from '../lib/library'
import { NARROW_TOOLBAR_QUERY, PHONE_QUERY, useMediaQuery } from '../lib/useMediaQuery'
import { useApp, useDocState, useDocument, useLoaded, usePeers, useYVersion } from '../lib/sync'

type Gesture =
  | { kind: 'pan', sx: number, sy: number, view: View }
  | { kind: 'pinch', dist: number, mid: [number, number], view: View }
  | { kind: 'move', id: string, wx: number, wy: number, ox: number, oy: number, moved: boolean }
  | { kind: 'resize', id: string, wx: number, wy: number, ow: number, oh: number }
  | { kind: 'pen', id: string, ox: number, oy: number, last: [number, number, number], lastT: number, buffer: number[] }
  | { kind: 'shape', wx: number, wy: number, x: number, y: number }
  | { kind: 'text', x: number, y: number }

export function CanvasPage ({ name, library }: { name: string, library: SyncedDocument }) {
  const { me, color: myColor, client } = useApp()
  const doc = useDocument(name)
  const loaded = useLoaded(doc)
  const state = useDocState(doc)
  const canvas = useMemo<Canvas>(() => doc.canvas({ author: me }), [doc, me])
  const version = useYVersion(canvas.elementsMap, canvas.metaMap)
  const peers = usePeers(doc)
  const owner = name.split('/')[0]
  const canEdit = loaded && !state.readonly && state.status !== 'denied'

  const compact = useMediaQuery(PHONE_QUERY)
  const compactTools = useMediaQuery(NARROW_TOOLBAR_QUERY)
  const svgRef = useRef<SVGSVGElement>(null)
  const worldRef = useRef<SVGGElement>(null)
  const [view, setViewState] = useState<View>({ tx: 0, ty: 0, scale: 1 })
  const viewRef = useRef(view)
  const setView = useCallback((v: View) => { viewRef.current = v; setViewState(v) }, [])
  const [tool, setTool] = useState<Tool>('select')
  const [shapeKind, setShapeKind] = useState<string>('rect')
  const [color, setColor] = useState<string>('#1f2933')
  const [penWidth, setPenWidth] = useState(4)
  const [selected, setSelected] = useState<string | null>(null)
  const [connectFrom, setConnectFrom] = useState<string | null>(null)
  const [editingText, setEditingText] = useState<string | null>(null)
  const [preview, setPreview] = useState<Box | null>(null)
  const [deckOpen, setDeckOpen] = useState(false)
  const [sharing, setSharing] = useState(false)
  const [historyOpen, setHistoryOpen] = useState(false)
  const [following, setFollowing] = useState<number | null>(null)
  const [presenting, setPresenting] = useState(false)
  const [meta, setMeta] = useState<DocumentMetadata | null>(null)
  const gesture = useRef<Gesture | null>(null)
  const pointers = useRef(new Map<number, [number, number]>())

  const elements = useMemo(() => canvas.elements(), [canvas, version])
  const byId = useMemo(() => new Map(elements.map((e) => [e.id, e])), [elements])
  const title = canvas.meta.title ?? ''
  const background = canvas.meta.background ?? '#ffffff'

  const undo = useMemo(() => new Y.UndoManager([canvas.elementsMap, canvas.metaMap], { captureTimeout: 500 }), [canvas])
  const [undoState, setUndoState] = useState({ undo: false, redo: false })
  useEffect(() => {
    const update = () => setUndoState({ undo: undo.canUndo(), redo: undo.canRedo() })
    undo.on('stack-item-added', update)
    undo.on('stack-item-popped', update)
    undo.on('stack-cleared', update)
    return () => { undo.destroy() }
  }, [undo])

  // Our own canvas without meta (created offline elsewhere, or by hand) gets one.
  useEffect(() => {
    if (loaded && owner === me && !canvas.metaMap.get('schema') && (state.status === 'saved' || state.status === 'offline')) {
      canvas.init('Untitled canvas')
    }
  }, [loaded, owner, me, canvas, state.status])

  useEffect(() => {
    if (!title) return
    remember(library, { id: name, kind: 'canvas', title, owner, template: canvas.meta.template, created_at: docsMap(library).get(name)?.created_at ?? new Date().toISOString() })
  }, [title, library, name, owner, canvas])

  useEffect(() => {
    client.metadata(name).then(setMeta, () => setMeta(null))
  }, [client, name, sharing, state.scope])

  // Fitted on open (see useAutoFit); the stage's size, once measured.
  const { size: measured, fit, stopAutoFit } = useAutoFit({ canvas, svgRef, loaded, status: state.status, version, setView })
  const size = measured ?? { w: 800, h: 600 }
  const follow = useCallback((clientId: number | null) => { stopAutoFit(); setFollowing(clientId) }, [stopAutoFit])

  // The text being edited stays on screen, above the tool bar: when it is made low on the
  // stage, and when the on-screen keyboard shrinks the stage (interactive-widget=resizes-content).
  useEffect(() => {
    const svg = svgRef.current
    const editor = svg?.parentElement?.querySelector('.text-editor')
    if (!svg || !editor || !measured) return
    const stage = svg.getBoundingClientRect()
    const toolbar = svg.parentElement?.querySelector('.toolbar')?.getBoundingClientRect()
    const bottom = Math.min(stage.bottom, toolbar?.height ? toolbar.top : stage.bottom) - 8
    const dy = shiftIntoView(editor.getBoundingClientRect(), stage.top + 8, bottom)
    if (dy) setView({ ...viewRef.current, ty: viewRef.current.ty + dy })
  }, [measured, editingText, setView])

  // Presence: who I am, where my cursor is, my viewport when presenting.
  useEffect(() => {
    doc.awareness.setLocalStateField('user', { name: me, color: myColor })
  }, [doc, me, myColor])
  const publishView = useCallback((v: View) => {
    const center = toWorld(v, size.w / 2, size.h / 2)
    // The area the presenter sees (world units), so followers fit it to their own screen.
    doc.awareness.setLocalStateField('viewport', { cx: center.x, cy: center.y, scale: v.scale, w: size.w / v.scale, h: size.h / v.scale })
  }, [doc, size])
  useEffect(() => {
    doc.awareness.setLocalStateField('presenting', presenting)
    if (presenting) publishView(viewRef.current)
  }, [doc, presenting, publishView])
  useEffect(() => {
    if (!presenting) return
    const timer = setTimeout(() => publishView(view), 60)
    return () => clearTimeout(timer)
  }, [view, presenting, publishView])

  // Follow the presenter: keep my viewport on theirs.
  useEffect(() => {
    if (following === null) return
    const presenter = peers.find((p) => p.clientId === following)
    if (!presenter || !presenter.presenting) { setFollowing(null); return }
    const vp = presenter.viewport
    if (!vp) return
    const scale = clampScale(vp.w && vp.h ? Math.min(size.w / vp.w, size.h / vp.h) : vp.scale)
    setView({ scale, tx: size.w / 2 - vp.cx * scale, ty: size.h / 2 - vp.cy * scale })
  }, [peers, following, size, setView])

  const point = (e: { clientX: number, clientY: number }) => {
    const rect = svgRef.current!.getBoundingClientRect()
    return [e.clientX - rect.left, e.clientY - rect.top] as [number, number]
  }

  const flushPen = useRef(0)
  const flush = () => {
    flushPen.current = 0
    const g = gesture.current
    if (g?.kind === 'pen' && g.buffer.length && canvas.has(g.id)) {
      canvas.extendStroke(g.id, g.buffer)
      g.buffer = []
    }
  }

  const elementAt = (target: EventTarget | null): CanvasElement | null => {
    const node = (target as Element | null)?.closest?.('[data-id]')
    const id = node?.getAttribute('data-id')
    return id ? byId.get(id) ?? null : null
  }

  const onPointerDown = (e: React.PointerEvent<SVGSVGElement>) => {
    stopAutoFit() // the person has taken the view: no more fitting under their fingers
    if (editingText) { setEditingText(null); return }
    const [sx, sy] = point(e)
    pointers.current.set(e.pointerId, [sx, sy])
    svgRef.current?.setPointerCapture(e.pointerId)
    if (pointers.current.size === 2) {
      const [[ax, ay], [bx, by]] = [...pointers.current.values()]
      if (gesture.current?.kind === 'pen') deleteIfTiny(gesture.current.id)
      gesture.current = { kind: 'pinch', dist: Math.hypot(ax - bx, ay - by), mid: [(ax + bx) / 2, (ay + by) / 2], view: viewRef.current }
      return
    }
    undo.stopCapturing() // every gesture is its own undo step
    const { x, y } = toWorld(viewRef.current, sx, sy)
    const hit = elementAt(e.target)
    const handle = (e.target as Element).getAttribute?.('data-handle')
    if (e.button === 1 || tool === 'hand' || (!canEdit && tool !== 'select')) {
      gesture.current = { kind: 'pan', sx, sy, view: viewRef.current }
      setFollowing(null)
      return
    }
    if (handle && selected && canEdit) {
      const el = byId.get(selected)
      if (el) gesture.current = { kind: 'resize', id: el.id, wx: x, wy: y, ow: el.w, oh: el.h }
      return
    }
    switch (tool) {
      case 'select':
        if (hit) {
          setSelected(hit.id)
          if (canEdit && hit.kind !== 'connector') gesture.current = { kind: 'move', id: hit.id, wx: x, wy: y, ox: hit.x, oy: hit.y, moved: false }
        } else {
          setSelected(null)
          gesture.current = { kind: 'pan', sx, sy, view: viewRef.current }
          setFollowing(null)
        }
        break
      case 'pen': {
        const p = e.pointerType === 'pen' && e.pressure > 0 ? e.pressure : 0.5
        const id = canvas.addStroke(x, y, [0, 0, p], { width: penWidth, color })
        gesture.current = { kind: 'pen', id, ox: x, oy: y, last: [0, 0, p], lastT: performance.now(), buffer: [] }
        break
      }
      case 'shape':
        gesture.current = { kind: 'shape', wx: x, wy: y, x, y }
        break
      case 'text':
        // The box is made on pointer up: its editor takes the focus then, after the mouse-down
        // default action (which would move the focus back to the page) has happened.
        gesture.current = { kind: 'text', x, y }
        break
      case 'connector':
        if (hit && hit.kind !== 'connector') {
          if (connectFrom && connectFrom !== hit.id && canvas.has(connectFrom)) {
            canvas.addConnector(connectFrom, hit.id, { color: color === '#ffffff' ? null : color })
            setConnectFrom(null)
            setSelected(null)
          } else {
            setConnectFrom(hit.id)
            setSelected(hit.id)
          }
        } else {
          setConnectFrom(null)
        }
        break
    }
  }

  const lastCursor = useRef(0)
  const onPointerMove = (e: React.PointerEvent<SVGSVGElement>) => {
    const [sx, sy] = point(e)
    if (pointers.current.has(e.pointerId)) pointers.current.set(e.pointerId, [sx, sy])
    const world = toWorld(viewRef.current, sx, sy)
    const now = performance.now()
    if (now - lastCursor.current > 50) {
      lastCursor.current = now
      doc.awareness.setLocalStateField('cursor', { x: Math.round(world.x), y: Math.round(world.y) })
    }
    const g = gesture.current
    if (!g) return
    switch (g.kind) {
      case 'pan':
        setView({ ...g.view, tx: g.view.tx + sx - g.sx, ty: g.view.ty + sy - g.sy })
        break
      case 'pinch': {
        if (pointers.current.size < 2) return
        const [[ax, ay], [bx, by]] = [...pointers.current.values()]
        const dist = Math.hypot(ax - bx, ay - by)
        const mid: [number, number] = [(ax + bx) / 2, (ay + by) / 2]
        const zoomed = zoomAt(g.view, dist / (g.dist || 1), g.mid[0], g.mid[1])
        setView({ ...zoomed, tx: zoomed.tx + mid[0] - g.mid[0], ty: zoomed.ty + mid[1] - g.mid[1] })
        break
      }
      case 'move':
        if (!canvas.has(g.id)) { gesture.current = null; return }
        g.moved = true
        canvas.move(g.id, Math.round(g.ox + world.x - g.wx), Math.round(g.oy + world.y - g.wy))
        break
      case 'resize':
        if (!canvas.has(g.id)) { gesture.current = null; return }
        canvas.resize(g.id, Math.max(20, Math.round(g.ow + world.x - g.wx)), Math.max(20, Math.round(g.oh + world.y - g.wy)))
        break
      case 'pen': {
        // Pressure: the pen's own, or (mouse, finger) derived from speed; both smoothed.
        const rx = world.x - g.ox
        const ry = world.y - g.oy
        const [lx, ly, lp] = g.last
        const dist = Math.hypot(rx - lx, ry - ly)
        if (dist * viewRef.current.scale < 2) return
        const dt = Math.max(1, now - g.lastT)
        const raw = e.pointerType === 'pen' && e.pressure > 0 ? e.pressure : Math.max(0.25, Math.min(1, 1.1 - (dist * viewRef.current.scale / dt) * 0.35))
        const p = lp + (raw - lp) * 0.3
        const nx = lx + (rx - lx) * 0.6
        const ny = ly + (ry - ly) * 0.6
        const triple: [number, number, number] = [Math.round(nx * 10) / 10, Math.round(ny * 10) / 10, Math.round(p * 100) / 100]
        g.last = triple
        g.lastT = now
        g.buffer.push(...triple)
        if (!flushPen.current) flushPen.current = requestAnimationFrame(flush)
        break
      }
      case 'shape': {
        g.x = world.x
        g.y = world.y
        setPreview({ x: Math.min(g.wx, g.x), y: Math.min(g.wy, g.y), w: Math.abs(g.x - g.wx), h: Math.abs(g.y - g.wy) })
        break
      }
    }
  }

  const deleteIfTiny = (id: string) => {
    if (flushPen.current) { cancelAnimationFrame(flushPen.current); flush() }
    const el = canvas.has(id) ? canvas.element(id) : null
    if (el?.kind === 'stroke' && el.points.length < 6) canvas.delete(id) // a pinch began with one finger
  }

  const onPointerUp = (e: React.PointerEvent<SVGSVGElement>) => {
    pointers.current.delete(e.pointerId)
    const g = gesture.current
    if (g?.kind === 'pinch') {
      if (pointers.current.size < 2) gesture.current = null
      return
    }
    gesture.current = null
    if (!g) return
    if (g.kind === 'pen') {
      if (flushPen.current) cancelAnimationFrame(flushPen.current)
      gesture.current = g
      flush()
      gesture.current = null
    }
    if (g.kind === 'text') {
      const id = canvas.addText('', Math.round(g.x - 8), Math.round(g.y - 30), { w: 260, h: 44, color })
      setSelected(id)
      setEditingText(id)
      setTool('select')
    }
    if (g.kind === 'shape') {
      setPreview(null)
      let box = { x: Math.min(g.wx, g.x), y: Math.min(g.wy, g.y), w: Math.abs(g.x - g.wx), h: Math.abs(g.y - g.wy) }
      if (box.w < 12 || box.h < 12) box = { x: g.wx - 70, y: g.wy - 45, w: 140, h: 90 }
      const id = canvas.addShape(shapeKind, Math.round(box.x), Math.round(box.y), Math.round(box.w), Math.round(box.h), { color: color === '#1f2933' ? null : color })
      setSelected(id)
      setTool('select')
    }
    undo.stopCapturing()
  }

  const onDoubleClick = (e: React.MouseEvent) => {
    // The pointer was captured by the stage on pointer down, so the event's target is the
    // stage itself: ask what is under the pointer instead.
    const hit = elementAt(document.elementFromPoint(e.clientX, e.clientY))
    if (hit?.kind === 'text' && canEdit) setEditingText(hit.id)
  }

  const onWheel = useCallback((e: WheelEvent) => {
    e.preventDefault()
    stopAutoFit()
    const rect = svgRef.current!.getBoundingClientRect()
    const sx = e.clientX - rect.left
    const sy = e.clientY - rect.top
    setFollowing(null)
    if (e.ctrlKey || e.metaKey) setView(zoomAt(viewRef.current, Math.exp(-e.deltaY * 0.01), sx, sy))
    else setView({ ...viewRef.current, tx: viewRef.current.tx - e.deltaX, ty: viewRef.current.ty - e.deltaY })
  }, [setView, stopAutoFit])
  useEffect(() => {
    const svg = svgRef.current
    if (!svg) return
    svg.addEventListener('wheel', onWheel, { passive: false })
    return () => svg.removeEventListener('wheel', onWheel)
  }, [onWheel])

  const removeSelected = useCallback(() => {
    if (selected && canEdit && canvas.has(selected)) {
      canvas.delete(selected)
      setSelected(null)
    }
  }, [selected, canEdit, canvas])

  useCanvasKeys({
    canvas, canEdit, undo, selected, byId, size, viewRef, setView, stopAutoFit, removeSelected,
    setSelected, setConnectFrom, setTool, setEditingText
  })

  useEffect(() => { if (!canEdit && tool !== 'select' && tool !== 'hand') setTool('select') }, [canEdit, tool])
  useEffect(() => { if (selected && !byId.has(selected)) setSelected(null) }, [byId, selected])
  // A text box deleted by someone else while it is edited: its editor is gone, so is the state.
  useEffect(() => { if (editingText && !canvas.has(editingText)) setEditingText(null) }, [byId, editingText, canvas])

  const placeCard = (cardId: string) => {
    stopAutoFit()
    undo.stopCapturing()
    const c = toWorld(viewRef.current, size.w / 2, size.h / 2)
    const jitter = () => Math.round((Math.random() - 0.5) * 60)
    const id = canvas.addCard(DECK_ID, cardId, Math.round(c.x - 60 + jitter()), Math.round(c.y - 90 + jitter()),
      { rotation: Math.round((Math.random() - 0.5) * 10 + 360) % 360 })
    setSelected(id)
    setTool('select')
  }

  const applyColor = (value: string) => {
    setColor(value)
    if (selected && canEdit && canvas.has(selected)) canvas.setColor(selected, value)
  }

  const selectedEl = selected ? byId.get(selected) ?? null : null
  const selBox = selectedEl && selectedEl.kind !== 'connector' ? bounds(selectedEl) : null
  // Read from the document, not the rendered list: a new text box gets its editor at once,
  // not a frame later (keys typed in that frame would go to the page's shortcuts).
  const editingEl = editingText && canvas.has(editingText) ? byId.get(editingText) ?? canvas.element(editingText) : null
  const roles: Record<string, string> = { [owner]: 'owner', ...(meta?.grants ?? {}) }

  return (
    <div className='page canvas-page'>
      <CanvasTopBar doc={doc} name={name} library={library} canvas={canvas} worldRef={worldRef} title={title}
        background={background} canEdit={canEdit} loaded={loaded} compact={compact} owner={owner} me={me}
        peers={peers} roles={roles} following={following} onFollow={follow}
        presenting={presenting} onPresenting={setPresenting} onHistory={() => setHistoryOpen(true)} onShare={() => setSharing(true)} />
      {state.readonly && <p className='banner'>View only — {owner} is sharing this canvas with you. Editing tools are off.</p>}
      {state.status === 'denied' && <p className='banner error'>You cannot open this canvas: {state.deniedReason}.</p>}
      <RecoveredNotice doc={doc} kind='canvas' />

      <div className='canvas-stage' style={{ background }}>
        <svg ref={svgRef} className={`canvas-svg tool-${tool}`} role='application' aria-label={`Canvas ${title}`}
          data-testid='canvas' data-elements={elements.length}
          onPointerDown={onPointerDown} onPointerMove={onPointerMove} onPointerUp={onPointerUp} onPointerCancel={onPointerUp}
          onPointerLeave={() => doc.awareness.setLocalStateField('cursor', null)} onDoubleClick={onDoubleClick}>
          <defs>
            <pattern id='grid' width={40 * view.scale} height={40 * view.scale} patternUnits='userSpaceOnUse'
              x={view.tx % (40 * view.scale)} y={view.ty % (40 * view.scale)}>
              <circle cx={1} cy={1} r={1} fill='rgba(31,41,51,0.14)' />
            </pattern>
          </defs>
          <rect width='100%' height='100%' fill='url(#grid)' />
          <g transform={`translate(${view.tx} ${view.ty}) scale(${view.scale})`}>
            <g ref={worldRef}>
              {elements.map((el) => <ElementView key={el.id} el={el} byId={byId} hidden={el.id === editingText} />)}
            </g>
            {preview && <rect x={preview.x} y={preview.y} width={preview.w} height={preview.h} fill='rgba(61,90,128,0.12)' stroke='#3d5a80' strokeDasharray='6 4' strokeWidth={1.5 / view.scale} />}
            {selBox && (
              <SelectionBox box={selBox} scale={view.scale} connecting={connectFrom === selected}
                resizable={canEdit && tool === 'select' && selectedEl?.kind !== 'stroke'} />
            )}
            <PeerCursors peers={peers} scale={view.scale} />
          </g>
        </svg>

        {editingEl && editingEl.kind === 'text' && (
          <TextEditor canvas={canvas} el={editingEl} view={view} onDone={() => {
            const current = canvas.has(editingEl.id) ? canvas.element(editingEl.id) : null
            if (current?.kind === 'text' && !current.text.trim()) canvas.delete(editingEl.id)
            setEditingText(null)
          }} />
        )}

        {loaded && elements.length === 0 && (
          <div className='canvas-empty muted'>{canEdit ? 'Draw, add a card from the deck, or drop a shape.' : 'Nothing here yet.'}</div>
        )}

        {compact && <FollowPill peers={peers} following={following} onFollow={follow} />}

        <div className='zoom-controls' role='group' aria-label='Zoom'>
          <button type='button' className='icon-button' aria-label='Zoom in' onClick={() => { stopAutoFit(); setView(zoomAt(view, 1.25, size.w / 2, size.h / 2)) }}><Icon name='plus' /></button>
          <button type='button' className='zoom-level' title='Fit to content'
            onClick={() => { setFollowing(null); fit() }}><span className='sr-only'>Fit to content, zoom </span>{Math.round(view.scale * 100)}%</button>
          <button type='button' className='icon-button' aria-label='Zoom out' onClick={() => { stopAutoFit(); setView(zoomAt(view, 0.8, size.w / 2, size.h / 2)) }}><Icon name='minus' /></button>
        </div>

        {deckOpen && canEdit && (
          <div className='deck-tray' role='dialog' aria-label='Deck of cards'>
            <div className='deck-head'><strong>Cards</strong><button type='button' className='icon-button' aria-label='Close the deck' onClick={() => setDeckOpen(false)}><Icon name='close' size={18} /></button></div>
            <div className='deck-cards'>
              {DECK.map((card) => (
                <button type='button' key={card.id} className='deck-card' style={{ background: card.color }}
                  onClick={() => placeCard(card.id)} aria-label={`Place card ${card.word}`}>{card.word}</button>
              ))}
            </div>
          </div>
        )}

        <CanvasToolbar compact={compactTools}
          tool={tool} onTool={(id) => { setTool(id); setConnectFrom(null) }} canEdit={canEdit}
          shapeKind={shapeKind} onShapeKind={setShapeKind} penWidth={penWidth} onPenWidth={setPenWidth}
          color={color} onColor={applyColor} deckOpen={deckOpen} onDeckOpen={setDeckOpen}
          canUndo={undoState.undo} canRedo={undoState.redo} onUndo={() => undo.undo()} onRedo={() => undo.redo()}
          canDelete={selected !== null} onDelete={removeSelected} />
        {tool === 'connector' && canEdit && (
          <p className='hint' role='status'>{connectFrom ? 'Now tap the element to connect to.' : 'Tap the first element to connect.'}</p>
        )}
      </div>
      <ShareDialog doc={name} title={title} kind='canvas' open={sharing} onClose={() => setSharing(false)} />
      <HistoryPanel name={name} kind='canvas' open={historyOpen} onClose={() => setHistoryOpen(false)} canEdit={canEdit} />
    </div>
  )
}
