import { useEffect, useMemo, useRef, useState } from 'react'
import { diffStrings, type Journal, type JournalEntry, type SyncedDocument } from 'syncd-client'
import * as Y from 'yjs'

import { HistoryPanel } from '../components/HistoryPanel'
import { Icon } from '../components/Icon'
import { Presence } from '../components/Presence'
import { RecoveredNotice } from '../components/RecoveredNotice'
import { ShareDialog } from '../components/ShareDialog'
import { TrashButton } from '../components/Trash'
import { StatusPill } from '../components/StatusPill'
import { download, slug } from '../lib/download'
import { useKeyboardInset } from '../lib/keyboard'
import { docsMap, remember } from '../lib/library'
import { href, navigate } from '../lib/router'
import { useApp, useDocState, useDocument, useLoaded, usePeers, useYVersion } from '../lib/sync'

const SESSION_KEY = 'syncd.lastSessionId'

export function JournalPage ({ name, entryId, library }: { name: string, entryId?: string, library: SyncedDocument }) {
  const { me, color } = useApp()
  const doc = useDocument(name)
  const loaded = useLoaded(doc)
  const state = useDocState(doc)
  const journal = useMemo(() => doc.journal(), [doc])
  const version = useYVersion(journal.entriesMap, journal.metaMap)
  const peers = usePeers(doc)
  const [query, setQuery] = useState('')
  const [sharing, setSharing] = useState(false)
  const [historyOpen, setHistoryOpen] = useState(false)
  const owner = name.split('/')[0]
  const canEdit = !state.readonly && state.status !== 'denied'
  useKeyboardInset()

  // A journal of ours that has no meta yet (new, or created offline) gets one.
  useEffect(() => {
    if (!loaded || owner !== me || journal.metaMap.get('schema')) return
    if (state.status === 'saved' || state.status === 'offline') {
      journal.init(name === `${me}/journal` ? 'My journal' : 'New journal')
    }
  }, [loaded, state.status, journal, me, owner, name])

  const title = journal.title ?? ''
  useEffect(() => {
    if (!title) return
    remember(library, { id: name, kind: 'journal', title, owner, created_at: (docsMap(library).get(name)?.created_at) ?? new Date().toISOString() })
  }, [title, library, name, owner])

  useEffect(() => {
    doc.awareness.setLocalStateField('user', { name: me, color })
    doc.awareness.setLocalStateField('editing', entryId ?? null)
  }, [doc, me, color, entryId])

  const entries = useMemo(() => journal.entries().reverse(), [journal, version]) // newest first
  const filtered = useMemo(() => filterEntries(entries, query), [entries, query])
  const current = entryId && journal.has(entryId) ? journal.entry(entryId) : null

  const create = () => {
    const id = journal.createEntry('', '')
    navigate({ page: 'journal', doc: name, entry: id })
  }

  const exportJSON = () => download(`${slug(title, 'journal')}.json`, JSON.stringify(journal.toJSON(), null, 2), 'application/json')
  const exportMarkdown = () => download(`${slug(title, 'journal')}.md`, toMarkdown(title, journal.entries()), 'text/markdown')

  return (
    <div className={`page journal-page ${current ? 'has-entry' : ''}`}>
      <header className='topbar'>
        <a className='icon-button' href='#/' aria-label='Back to home'><Icon name='back' /></a>
        <input className='doc-title' aria-label='Journal title' dir='auto' value={title} disabled={!canEdit || !loaded}
          placeholder={loaded ? 'Untitled journal' : 'Loading…'} onChange={(e) => journal.rename(e.target.value)} />
        <StatusPill doc={doc} />
        <Presence peers={peers} />
        <Menu label='Export'>
          <button type='button' role='menuitem' onClick={exportJSON}>Export JSON</button>
          <button type='button' role='menuitem' onClick={exportMarkdown}>Export Markdown</button>
        </Menu>
        <button type='button' className='button ghost' onClick={() => setHistoryOpen(true)}><Icon name='history' size={18} /><span className='label'>History</span></button>
        <button type='button' className='button' onClick={() => setSharing(true)}><Icon name='share' size={18} /><span className='label'>Share</span></button>
        {owner === me && name !== `${me}/journal` && <TrashButton name={name} kind='journal' title={title} library={library} />}
      </header>
      {state.readonly && <p className='banner'>View only — {owner} shared this journal with you to read.</p>}
      {state.status === 'denied' && <p className='banner error'>You cannot open this journal: {state.deniedReason}.</p>}
      <RecoveredNotice doc={doc} kind='journal' />

      <div className='journal-layout'>
        <aside className='entry-list-pane' aria-label='Entries'>
          <div className='list-tools'>
            <label className='sr-only' htmlFor='journal-search'>Search entries</label>
            <input id='journal-search' type='search' placeholder='Search entries' value={query} dir='auto'
              onChange={(e) => setQuery(e.target.value)} />
            <button type='button' className='button primary' onClick={create} disabled={!canEdit || !loaded}><Icon name='plus' size={18} />New entry</button>
          </div>
          <ul className='entry-list'>
            {filtered.map((entry) => (
              <li key={entry.id}>
                <a href={href({ page: 'journal', doc: name, entry: entry.id })}
                  className={`entry-item ${entry.id === entryId ? 'selected' : ''}`} aria-current={entry.id === entryId ? 'true' : undefined}>
                  <span className='entry-item-title' dir='auto'>{entry.title || 'Untitled'}</span>
                  <span className='entry-item-meta'>
                    <time dateTime={entry.created_at}>{formatDate(entry.created_at)}</time>
                    {entry.mode === 'in-session' && <span className='badge'>In a session{entry.session_id ? ` · ${entry.session_id}` : ''}</span>}
                  </span>
                  {entry.body && <span className='entry-item-snippet' dir='auto'>{entry.body.slice(0, 140)}</span>}
                  {entry.tags.length > 0 && (
                    <span className='tags'>{entry.tags.map((t) => <span className='tag' key={t}>#{t}</span>)}</span>
                  )}
                </a>
              </li>
            ))}
          </ul>
          {loaded && entries.length === 0 && (
            <div className='empty'>
              <p>No entries yet.</p>
              {canEdit && <p className='muted'>Write your first one — it is saved on this device at once, with or without a connection.</p>}
            </div>
          )}
          {entries.length > 0 && filtered.length === 0 && <p className='empty muted'>Nothing matches “{query}”.</p>}
        </aside>

        <main className='entry-pane'>
          {current
            ? <EntryEditor key={current.id} journal={journal} entry={current} canEdit={canEdit} name={name} />
            : <div className='entry-placeholder muted'>{loaded ? 'Pick an entry, or write a new one.' : 'Loading…'}</div>}
        </main>
      </div>
      <ShareDialog doc={name} title={title} kind='journal' open={sharing} onClose={() => setSharing(false)} />
      <HistoryPanel name={name} kind='journal' open={historyOpen} onClose={() => setHistoryOpen(false)} canEdit={canEdit} />
    </div>
  )
}

function EntryEditor ({ journal, entry, canEdit, name }: { journal: Journal, entry: JournalEntry, canEdit: boolean, name: string }) {
  const [tag, setTag] = useState('')
  const [sessionDraft, setSessionDraft] = useState(entry.session_id ?? localStorage.getItem(SESSION_KEY) ?? '')
  const entryMap = journal.entriesMap.get(entry.id)!

  const sessionInput = useRef<HTMLInputElement>(null)
  const [askCode, setAskCode] = useState(false)

  const setMode = (mode: 'standalone' | 'in-session') => {
    const sessionId = sessionDraft.trim()
    if (mode === 'in-session' && !sessionId) {
      setAskCode(true)
      sessionInput.current?.focus()
      return
    }
    setAskCode(false)
    if (mode === 'in-session') localStorage.setItem(SESSION_KEY, sessionId)
    journal.doc.transact(() => {
      entryMap.set('mode', mode)
      entryMap.set('session_id', mode === 'in-session' ? sessionId : null)
      entryMap.set('updated_at', new Date().toISOString())
    })
  }

  const addTag = () => {
    const clean = tag.trim().replace(/^#/, '')
    if (clean) journal.addTag(entry.id, clean)
    setTag('')
  }

  const remove = () => {
    if (!window.confirm('Delete this entry? This cannot be undone.')) return
    journal.deleteEntry(entry.id)
    navigate({ page: 'journal', doc: name })
  }

  return (
    <article className='entry-editor' aria-label='Entry'>
      <a className='back-to-list link-button' href={href({ page: 'journal', doc: name })}><Icon name='back' size={16} /> All entries</a>
      <input className='entry-title' aria-label='Entry title' dir='auto' placeholder='Title' value={entry.title}
        disabled={!canEdit} autoFocus={!entry.title && canEdit} onChange={(e) => journal.setTitle(entry.id, e.target.value)} />
      <div className='entry-meta'>
        <div className='segmented' role='group' aria-label='Where this was written'>
          <button type='button' aria-pressed={entry.mode === 'standalone'} disabled={!canEdit}
            onClick={() => setMode('standalone')}>On my own</button>
          <button type='button' aria-pressed={entry.mode === 'in-session'} disabled={!canEdit}
            onClick={() => setMode('in-session')}>In a session</button>
        </div>
        <label className='session-field'>
          <span>Session code</span>
          <input ref={sessionInput} placeholder='from your coach' value={entry.mode === 'in-session' ? entry.session_id ?? '' : sessionDraft}
            disabled={!canEdit} aria-describedby={askCode ? `${entry.id}-code-hint` : undefined}
            onChange={(e) => {
              setSessionDraft(e.target.value)
              setAskCode(false)
              if (entry.mode === 'in-session' && e.target.value.trim()) {
                entryMap.set('session_id', e.target.value.trim())
              }
            }} />
        </label>
        <time className='muted small' dateTime={entry.updated_at}>Edited {formatDate(entry.updated_at, true)}</time>
        {askCode && <p className='hint-inline' id={`${entry.id}-code-hint`} role='status'>Type the session code your coach gave you, then tap “In a session”.</p>}
      </div>
      {entry.prompt && <p className='prompt' dir='auto'>{entry.prompt}</p>}
      <BodyEditor text={journal.bodyText(entry.id)} disabled={!canEdit}
        onEdit={(value) => journal.setBody(entry.id, value)} />
      <div className='tag-editor'>
        <span className='tags'>
          {entry.tags.map((t) => (
            <span className='tag' key={t}>#{t}
              {canEdit && <button type='button' aria-label={`Remove tag ${t}`} onClick={() => journal.removeTag(entry.id, t)}>✕</button>}
            </span>
          ))}
        </span>
        {canEdit && (
          <form onSubmit={(e) => { e.preventDefault(); addTag() }} className='tag-add'>
            <input aria-label='Add a tag' placeholder='Add tag' value={tag} dir='auto'
              onChange={(e) => setTag(e.target.value.replace(',', ''))}
              onKeyDown={(e) => { if (e.key === ',') { e.preventDefault(); addTag() } }} />
          </form>
        )}
      </div>
      {canEdit && <button type='button' className='button danger ghost' onClick={remove}>Delete entry</button>}
    </article>
  )
}

/**
 * A textarea bound to a Y.Text: typing becomes the smallest splice; remote edits update the
 * value and keep the caret where it was, relative to the text around it.
 */
function BodyEditor ({ text, disabled, onEdit }: { text: Y.Text, disabled: boolean, onEdit: (value: string) => void }) {
  const ref = useRef<HTMLTextAreaElement>(null)
  const [value, setValue] = useState(text.toString())
  const selection = useRef<[Y.RelativePosition, Y.RelativePosition] | null>(null)

  useEffect(() => {
    const onChange = (_event: Y.YTextEvent, tr: Y.Transaction) => {
      const area = ref.current
      const next = text.toString()
      if (!tr.local && area && document.activeElement === area && selection.current && text.doc) {
        const [start, end] = selection.current.map((rel) => Y.createAbsolutePositionFromRelativePosition(rel, text.doc!)?.index ?? 0)
        setValue(next)
        requestAnimationFrame(() => area.setSelectionRange(start, end))
      } else {
        setValue(next)
      }
    }
    text.observe(onChange)
    setValue(text.toString())
    return () => text.unobserve(onChange)
  }, [text])

  useEffect(() => {
    const area = ref.current
    if (!area) return
    area.style.height = 'auto'
    area.style.height = `${Math.max(area.scrollHeight, 240)}px`
  }, [value])

  const remember = () => {
    const area = ref.current
    if (!area) return
    selection.current = [
      Y.createRelativePositionFromTypeIndex(text, area.selectionStart),
      Y.createRelativePositionFromTypeIndex(text, area.selectionEnd)
    ]
  }

  return (
    <textarea ref={ref} className='entry-body' aria-label='Entry text' dir='auto' placeholder='Write…' value={value}
      disabled={disabled} onSelect={remember} onKeyUp={remember}
      onChange={(e) => {
        const next = e.target.value
        const { remove, insert } = diffStrings(value, next)
        if (remove || insert) onEdit(next)
        setValue(next)
        remember()
      }} />
  )
}

function Menu ({ label, children }: { label: string, children: React.ReactNode }) {
  const [open, setOpen] = useState(false)
  const ref = useRef<HTMLDivElement>(null)
  useEffect(() => {
    if (!open) return
    const close = (e: MouseEvent) => { if (!ref.current?.contains(e.target as Node)) setOpen(false) }
    document.addEventListener('pointerdown', close)
    return () => document.removeEventListener('pointerdown', close)
  }, [open])
  return (
    <div className='menu' ref={ref} onKeyDown={(e) => { if (e.key === 'Escape') setOpen(false) }}>
      <button type='button' className='button ghost' aria-haspopup='menu' aria-expanded={open} onClick={() => setOpen(!open)}><Icon name='download' size={18} /><span className='label'>{label}</span></button>
      {open && <div className='menu-items' role='menu' onClick={() => setOpen(false)}>{children}</div>}
    </div>
  )
}
export { Menu }

function filterEntries (entries: JournalEntry[], query: string): JournalEntry[] {
  const words = query.toLocaleLowerCase().split(/\s+/).filter(Boolean)
  if (!words.length) return entries
  return entries.filter((entry) => {
    const haystack = [entry.title, entry.body, entry.session_id ?? '', entry.prompt ?? '', ...entry.tags.map((t) => `#${t}`)]
      .join('\n').toLocaleLowerCase()
    return words.every((word) => haystack.includes(word))
  })
}

export function formatDate (iso: string, withTime = false): string {
  const date = new Date(iso)
  if (Number.isNaN(date.getTime())) return ''
  const sameDay = new Date().toDateString() === date.toDateString()
  if (sameDay) return date.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })
  return date.toLocaleDateString(undefined, withTime
    ? { day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit' }
    : { day: 'numeric', month: 'short', year: 'numeric' })
}

export function toMarkdown (title: string, entries: JournalEntry[]): string {
  const lines = [`# ${title || 'Journal'}`, '']
  for (const entry of entries) {
    lines.push(`## ${entry.title || 'Untitled'}`, '')
    const meta = [entry.created_at, entry.mode === 'in-session' ? `in a session (${entry.session_id})` : 'on my own']
    lines.push(`_${meta.join(' · ')}_`, '')
    if (entry.prompt) lines.push(`> ${entry.prompt}`, '')
    if (entry.body) lines.push(entry.body, '')
    if (entry.tags.length) lines.push(entry.tags.map((t) => `#${t}`).join(' '), '')
  }
  return lines.join('\n')
}
