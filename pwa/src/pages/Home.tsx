import { memo, useEffect, useMemo, useState } from 'react'
import { Canvas } from 'syncd-client'
import type { SyncedDocument } from 'syncd-client'

import { ElementView } from '../canvas/Elements'
import { bounds, unionBounds } from '../canvas/geometry'
import { Dialog } from '../components/Dialog'
import { DocCard } from '../components/DocCard'
import { Icon } from '../components/Icon'
import { NotifySwitch } from '../components/NotifySwitch'
import { StatusPill } from '../components/StatusPill'
import { TrashList } from '../components/Trash'
import { formatDate } from './JournalPage'
import { describeDoc } from '../lib/api'
import { type DocKind, type LibraryItem, defaultJournal, docsMap, isDocId, listLibrary, newDocName, remember } from '../lib/library'
import { guessKind, useListing } from '../lib/listing'
import { href, navigate } from '../lib/router'
import { useApp, useLoaded, useYVersion } from '../lib/sync'
import { TEMPLATES, type Template } from '../lib/templates'

const ROLE_WORDS = { editor: 'can edit', viewer: 'can view', owner: '' } as const

export function Home ({ library, onSignOut }: { library: SyncedDocument, onSignOut: () => void }) {
  const { me, client, color } = useApp()
  const loaded = useLoaded(library)
  const version = useYVersion(docsMap(library))
  const items = useMemo(() => listLibrary(library), [library, version])
  const listing = useListing(library)
  const [picking, setPicking] = useState(false)
  const [openId, setOpenId] = useState('')
  const [openError, setOpenError] = useState<string | null>(null)
  const [opening, setOpening] = useState(false)

  useEffect(() => {
    const id = defaultJournal(me)
    if (loaded && !docsMap(library).has(id)) {
      remember(library, { id, kind: 'journal', title: 'My journal', owner: me, created_at: new Date().toISOString() })
    }
  }, [loaded, library, me])

  const live = items.filter((i) => !i.trashed_at)
  const trashed = items.filter((i) => i.trashed_at && i.owner === me)
  const mine = live.filter((i) => i.owner === me)
  const journals = mine.filter((i) => i.kind === 'journal')
  const canvases = mine.filter((i) => i.kind === 'canvas')
  // Shared with me: the server's list when it answered (it knows shares made since, and drops
  // revoked ones); offline, what the library remembers having opened.
  const byId = new Map(items.map((i) => [i.id, i]))
  const shared: (LibraryItem & { role?: string })[] = listing.docs
    ? listing.docs.filter((d) => d.role !== 'owner').map((d) => ({
      kind: guessKind(d.id), title: '', created_at: d.created_at, ...byId.get(d.id), id: d.id, owner: d.owner, role: d.role
    }))
    : live.filter((i) => i.owner !== me)

  // Online, a new document's page opens once the server holds it (the owner's first sync creates
  // it, DESIGN.md §1.3), so that the page's metadata request finds it: no 404 for a brand-new
  // canvas. Offline (or slow) it opens at once and is created by its first sync, as before.
  const whenStored = async (doc: SyncedDocument) => {
    if (client.connected) await doc.whenSaved({ timeout: 3000 }).catch(() => {})
  }

  const createCanvas = async (template: Template) => {
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
    await whenStored(doc)
    navigate({ page: 'canvas', doc: id })
  }

  const createJournal = async () => {
    const id = newDocName(me, 'journal')
    const doc = client.open(id)
    doc.journal().init('New journal')
    remember(library, { id, kind: 'journal', title: 'New journal', owner: me, created_at: new Date().toISOString() })
    await whenStored(doc)
    navigate({ page: 'journal', doc: id })
  }

  // Opening by id or link: only what exists (a mistyped id never creates an empty document).
  const openShared = async () => {
    let value = openId.trim()
    let kind: DocKind | null = null
    const link = /#\/(journal|canvas)\/([^/]+)\/([^/?#]+)/.exec(value)
    if (link) {
      kind = link[1] as DocKind
      value = `${decodeURIComponent(link[2])}/${decodeURIComponent(link[3])}`
    }
    if (!isDocId(value)) return setOpenError('Enter a document id like alice/canvas-1234, or paste a link.')
    setOpenError(null)
    const known = docsMap(library).get(value)
    if (known) return navigate({ page: known.kind, doc: value })
    setOpening(true)
    try {
      const meta = await client.metadata(value)
      if (!meta) {
        return setOpenError(value.split('/')[0] === me
          ? `You have no document called “${value}”. Check it for a typing mistake.`
          : `“${value}” does not exist, or it is not shared with you. Check it for a typing mistake.`)
      }
      const described = await describeDoc(value)
      const found = described?.kind ?? kind ?? guessKind(value)
      remember(library, { id: value, kind: found, title: described?.title ?? '', owner: meta.owner, created_at: meta.created_at })
      navigate({ page: found, doc: value })
    } catch {
      setOpenError('Opening a document shared with you needs a connection to the server.')
    } finally {
      setOpening(false)
    }
  }

  return (
    <div className='page home'>
      <header className='topbar home-bar'>
        <div className='brand'><img src='./icon.svg' alt='' width='32' height='32' /><span className='brand-name'>Journal &amp; canvas</span></div>
        <span className='spacer' />
        <StatusPill doc={library} />
        <NotifySwitch />
        <a className='button ghost' href={href({ page: 'privacy' })}><Icon name='shield' size={18} /><span className='label'>Privacy</span></a>
        <span className='me'><span className='avatar' style={{ background: color }} aria-hidden='true'>{me[0]?.toUpperCase()}</span><span className='me-name'>{me}</span></span>
        <button type='button' className='button ghost' onClick={onSignOut}>Sign out</button>
      </header>
      <main className='home-main'>
        <h1 className='sr-only'>Home</h1>
        <section aria-labelledby='journals-h'>
          <div className='section-head'>
            <h2 id='journals-h'>Journals</h2>
            <button type='button' className='button ghost' onClick={createJournal}><Icon name='plus' size={18} />New journal</button>
          </div>
          <ul className='cards'>
            {journals.map((item) => (
              <DocCard key={item.id} item={item} library={library} defaultTitle='Untitled journal'
                sub={item.id === defaultJournal(me) ? 'Your own journal' : `Journal · ${formatDate(item.created_at)}`}
                manage={{ rename: true, trash: item.id !== defaultJournal(me) }} />
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
              <DocCard key={item.id} item={item} library={library} defaultTitle='Untitled canvas'
                sub={`${TEMPLATES.find((t) => t.id === item.template)?.name ?? 'Canvas'} · ${formatDate(item.created_at)}`}
                manage={{ rename: true, trash: true }} />
            ))}
          </ul>
        </section>

        <section aria-labelledby='shared-h' className='shared-section'>
          <div className='section-head'><h2 id='shared-h'>Shared with me</h2></div>
          {shared.length === 0 && (
            <p className='muted'>{listing.docs ? 'Nothing yet. When someone shares a journal or a canvas with you, it appears here.' : 'Nothing on this device yet.'}</p>
          )}
          {shared.length > 0 && (
            <ul className='cards'>
              {shared.map((item) => (
                <DocCard key={item.id} item={item} library={library} defaultTitle={item.id} manage={{ rename: false, trash: false }}
                  sub={`from ${item.owner}${item.role && item.role !== 'owner' ? ` · ${ROLE_WORDS[item.role as 'editor' | 'viewer']}` : ''}`} />
              ))}
            </ul>
          )}
          <form className='open-shared' onSubmit={(e) => { e.preventDefault(); openShared() }}>
            <label htmlFor='open-id'>Open by link or id</label>
            <div className='row'>
              <input id='open-id' placeholder='alice/canvas-1234 or a link' value={openId} autoComplete='off'
                aria-describedby={openError ? 'open-error' : undefined} onChange={(e) => setOpenId(e.target.value)} />
              <button type='submit' className='button' disabled={opening}>{opening ? 'Looking…' : 'Open'}</button>
            </div>
            {openError && <p className='error' id='open-error' role='alert'>{openError}</p>}
          </form>
        </section>

        <TrashList remembered={trashed} library={library} />
        <p className='home-footer muted'>
          <a href={href({ page: 'privacy' })}>Privacy and your data</a>: what you allow, and a copy of everything you wrote.
        </p>
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
