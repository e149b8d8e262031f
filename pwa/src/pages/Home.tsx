import { memo, useEffect, useMemo, useState } from 'react'
import { Canvas } from 'syncd-client'
import type { SyncedDocument } from 'syncd-client'

import { ElementView } from '../canvas/Elements'
import { bounds, unionBounds } from '../canvas/geometry'
import { Dialog } from '../components/Dialog'
import { Icon } from '../components/Icon'
import { StatusPill } from '../components/StatusPill'
import { TrashList } from '../components/Trash'
import { formatDate } from './JournalPage'
import { type DocKind, defaultJournal, docsMap, isDocId, listLibrary, newDocName, remember } from '../lib/library'
import { href, navigate } from '../lib/router'
import { useApp, useLoaded, useYVersion } from '../lib/sync'
import { TEMPLATES, type Template } from '../lib/templates'

export function Home ({ library, onSignOut }: { library: SyncedDocument, onSignOut: () => void }) {
  const { me, client, color } = useApp()
  const loaded = useLoaded(library)
  const version = useYVersion(docsMap(library))
  const items = useMemo(() => listLibrary(library), [library, version])
  const [picking, setPicking] = useState(false)
  const [openId, setOpenId] = useState('')
  const [openKind, setOpenKind] = useState<DocKind>('canvas')
  const [openError, setOpenError] = useState<string | null>(null)

  useEffect(() => {
    const id = defaultJournal(me)
    if (loaded && !docsMap(library).has(id)) {
      remember(library, { id, kind: 'journal', title: 'My journal', owner: me, created_at: new Date().toISOString() })
    }
  }, [loaded, library, me])

  const live = items.filter((i) => !i.trashed_at)
  const trashed = items.filter((i) => i.trashed_at && i.owner === me)
  const mine = live.filter((i) => i.owner === me)
  const shared = live.filter((i) => i.owner !== me)
  const journals = mine.filter((i) => i.kind === 'journal')
  const canvases = mine.filter((i) => i.kind === 'canvas')

  const createCanvas = (template: Template) => {
    const id = newDocName(me, 'canvas')
    const doc = client.open(id)
    const canvas = doc.canvas({ author: me })
    const title = template.id === 'blank' ? 'Untitled canvas' : template.name
    doc.ydoc.transact(() => {
      canvas.init(title, { template: template.id, background: template.background })
      template.seed(canvas)
    })
    remember(library, { id, kind: 'canvas', title, owner: me, template: template.id, created_at: new Date().toISOString() })
    setPicking(false)
    navigate({ page: 'canvas', doc: id })
  }

  const createJournal = () => {
    const id = newDocName(me, 'journal')
    client.open(id).journal().init('New journal')
    remember(library, { id, kind: 'journal', title: 'New journal', owner: me, created_at: new Date().toISOString() })
    navigate({ page: 'journal', doc: id })
  }

  const openShared = () => {
    let value = openId.trim()
    let kind = openKind
    const link = /#\/(journal|canvas)\/([^/]+)\/([^/?#]+)/.exec(value)
    if (link) {
      kind = link[1] as DocKind
      value = `${decodeURIComponent(link[2])}/${decodeURIComponent(link[3])}`
    }
    if (!isDocId(value)) return setOpenError('Enter a document id like alice/canvas-1234, or paste a link.')
    setOpenError(null)
    navigate({ page: kind, doc: value })
  }

  return (
    <div className='page home'>
      <header className='topbar home-bar'>
        <div className='brand'><img src='./icon.svg' alt='' width='32' height='32' /><span className='brand-name'>Journal &amp; canvas</span></div>
        <span className='spacer' />
        <StatusPill doc={library} />
        <span className='me'><span className='avatar' style={{ background: color }} aria-hidden='true'>{me[0]?.toUpperCase()}</span><span className='me-name'>{me}</span></span>
        <button type='button' className='button ghost' onClick={onSignOut}>Sign out</button>
      </header>
      <main className='home-main'>
        <section aria-labelledby='journals-h'>
          <div className='section-head'>
            <h2 id='journals-h'>Journals</h2>
            <button type='button' className='button ghost' onClick={createJournal}><Icon name='plus' size={18} />New journal</button>
          </div>
          <ul className='cards'>
            {journals.map((item) => (
              <li key={item.id}>
                <a className='doc-card journal' href={href({ page: 'journal', doc: item.id })}>
                  <span className='doc-card-icon'><Icon name='journal' size={24} /></span>
                  <span className='doc-card-title' dir='auto'>{item.title || 'Untitled journal'}</span>
                  <span className='doc-card-sub'>{item.id}</span>
                </a>
              </li>
            ))}
          </ul>
        </section>

        <section aria-labelledby='canvases-h'>
          <div className='section-head'>
            <h2 id='canvases-h'>Canvases</h2>
            <button type='button' className='button primary' onClick={() => setPicking(true)}><Icon name='plus' size={18} />New canvas</button>
          </div>
          {canvases.length === 0 && <p className='muted'>No canvas yet: start from one of ten templates.</p>}
          <ul className='cards'>
            {canvases.map((item) => (
              <li key={item.id}>
                <a className='doc-card canvas' href={href({ page: 'canvas', doc: item.id })}>
                  <span className='doc-card-icon'><Icon name='canvas' size={24} /></span>
                  <span className='doc-card-title' dir='auto'>{item.title || 'Untitled canvas'}</span>
                  <span className='doc-card-sub'>{TEMPLATES.find((t) => t.id === item.template)?.name ?? 'Canvas'} · {formatDate(item.created_at)}</span>
                </a>
              </li>
            ))}
          </ul>
        </section>

        <section aria-labelledby='shared-h'>
          <div className='section-head'><h2 id='shared-h'>Shared with me</h2></div>
          {shared.length > 0 && (
            <ul className='cards'>
              {shared.map((item) => (
                <li key={item.id}>
                  <a className='doc-card shared' href={href({ page: item.kind, doc: item.id })}>
                    <span className='doc-card-icon'><Icon name={item.kind} size={24} /></span>
                    <span className='doc-card-title' dir='auto'>{item.title || item.id}</span>
                    <span className='doc-card-sub'>from {item.owner}</span>
                  </a>
                </li>
              ))}
            </ul>
          )}
          <form className='open-shared' onSubmit={(e) => { e.preventDefault(); openShared() }}>
            <label htmlFor='open-id'>Open something shared with you</label>
            <div className='row'>
              <input id='open-id' placeholder='alice/canvas-1234 or a link' value={openId} onChange={(e) => setOpenId(e.target.value)} />
              <select aria-label='Kind' value={openKind} onChange={(e) => setOpenKind(e.target.value as DocKind)}>
                <option value='canvas'>Canvas</option>
                <option value='journal'>Journal</option>
              </select>
              <button type='submit' className='button'>Open</button>
            </div>
            {openError && <p className='error' role='alert'>{openError}</p>}
          </form>
        </section>

        <TrashList remembered={trashed} library={library} />
      </main>

      <Dialog open={picking} onClose={() => setPicking(false)} title='New canvas' wide>
        <ul className='templates'>
          {TEMPLATES.map((t) => (
            <li key={t.id}>
              <button type='button' className='template' onClick={() => createCanvas(t)}>
                <span className='template-swatch' style={{ background: t.background }} aria-hidden='true'><TemplatePreview template={t} /></span>
                <span className='template-name'>{t.name}</span>
                <span className='template-desc'>{t.description}</span>
              </button>
            </li>
          ))}
        </ul>
      </Dialog>
    </div>
  )
}

/** A thumbnail of what the template makes: it is seeded into a scratch document and drawn. */
const TemplatePreview = memo(function TemplatePreview ({ template }: { template: Template }) {
  const { elements, box } = useMemo(() => {
    const scratch = Canvas.create(template.name, { template: template.id, background: template.background })
    template.seed(scratch)
    const elements = scratch.elements()
    return { elements, box: unionBounds(elements.map(bounds)) }
  }, [template])
  if (!box) return <span className='template-blank' />
  const pad = 24
  const byId = new Map(elements.map((e) => [e.id, e]))
  return (
    <svg className='template-preview' viewBox={`${box.x - pad} ${box.y - pad} ${box.w + 2 * pad} ${box.h + 2 * pad}`}
      preserveAspectRatio='xMidYMid meet'>
      {elements.map((el) => <ElementView key={el.id} el={el} byId={byId} />)}
    </svg>
  )
})
