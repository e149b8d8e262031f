import type { RefObject } from 'react'
import type { Canvas, SyncedDocument } from 'syncd-client'

import { Icon } from '../components/Icon'
import { Presence } from '../components/Presence'
import { StatusPill } from '../components/StatusPill'
import { TrashButton } from '../components/Trash'
import { download, slug } from '../lib/download'
import type { Peer } from '../lib/sync'
import { Menu } from '../pages/JournalPage'
import { Disclosure, MoreIcon } from './Disclosure'
import { exportPdf, exportPng, exportSvg } from './exportCanvas'
import { TitleField } from './TitleField'

/**
 * The canvas's top bar: back, title, status, people, Present, Export (PNG, PDF, JSON), History,
 * Share, trash. On a phone (`compact`) it stays one row: Present, the exports, History and the
 * trash move into "More actions", and following a presenter is offered over the canvas.
 */
export function CanvasTopBar ({
  doc, name, library, canvas, worldRef, title, background, canEdit, loaded, compact, owner, me,
  peers, roles, following, onFollow, presenting, onPresenting, onHistory, onShare
}: {
  doc: SyncedDocument
  name: string
  library: SyncedDocument
  canvas: Canvas
  worldRef: RefObject<SVGGElement | null>
  title: string
  background: string
  canEdit: boolean
  loaded: boolean
  compact: boolean
  owner: string
  me: string
  peers: Peer[]
  roles: Record<string, string>
  following: number | null
  onFollow: (clientId: number | null) => void
  presenting: boolean
  onPresenting: (presenting: boolean) => void
  onHistory: () => void
  onShare: () => void
}) {
  const exportPNG = async () => {
    if (!worldRef.current) return
    const { svg, box } = exportSvg(worldRef.current, canvas.elements(), background)
    const blob = await exportPng(svg, box)
    if (blob) download(`${slug(title, 'canvas')}.png`, blob)
  }
  const exportPDF = async () => {
    if (!worldRef.current) return
    const { svg, box } = exportSvg(worldRef.current, canvas.elements(), background)
    download(`${slug(title, 'canvas')}.pdf`, await exportPdf(svg, box, title))
  }
  const exportJSON = () => download(`${slug(title, 'canvas')}.json`, JSON.stringify(canvas.toJSON(), null, 2), 'application/json')

  const presentButton = (
    <button type='button' className={`button ghost ${presenting ? 'active' : ''}`} aria-pressed={presenting} data-closes
      onClick={() => onPresenting(!presenting)} title='Others can follow your view'>
      <Icon name='present' size={18} /><span className='label'>{presenting ? 'Presenting' : 'Present'}</span>
    </button>
  )
  const historyButton = (
    <button type='button' className='button ghost' data-closes onClick={onHistory}>
      <Icon name='history' size={18} /><span className='label'>History</span>
    </button>
  )
  const trash = owner === me && <TrashButton name={name} kind='canvas' title={title} library={library} />
  return (
    <header className='topbar canvas-topbar'>
      <a className='icon-button' href='#/' aria-label='Back to home'><Icon name='back' /></a>
      <TitleField title={title} disabled={!canEdit} placeholder={loaded ? 'Untitled canvas' : 'Loading…'} onRename={(t) => canvas.rename(t)} />
      <StatusPill doc={doc} />
      <Presence peers={peers} roles={roles} following={following} onFollow={compact ? undefined : onFollow} />
      {!compact && <>
        {presentButton}
        <Menu label='Export'>
          <button type='button' role='menuitem' onClick={exportPNG}>Export PNG</button>
          <button type='button' role='menuitem' onClick={exportPDF}>Export PDF</button>
          <button type='button' role='menuitem' onClick={exportJSON}>Export JSON</button>
        </Menu>
        {historyButton}
      </>}
      <button type='button' className='button' onClick={onShare}><Icon name='share' size={18} /><span className='label'>Share</span></button>
      {!compact && trash}
      {compact && (
        <Disclosure label='More actions' className='topbar-more' panelClassName='topbar-panel' button={<MoreIcon />}>
          {presentButton}
          <button type='button' className='button ghost' data-closes onClick={exportPNG}><Icon name='download' size={18} />Export PNG</button>
          <button type='button' className='button ghost' data-closes onClick={exportPDF}><Icon name='download' size={18} />Export PDF</button>
          <button type='button' className='button ghost' data-closes onClick={exportJSON}><Icon name='download' size={18} />Export JSON</button>
          {historyButton}
          {trash}
        </Disclosure>
      )}
    </header>
  )
}
