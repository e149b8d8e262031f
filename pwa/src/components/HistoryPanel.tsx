// The history of a canvas or journal (DESIGN.md §1.10 through the SDK's `client.history`):
// versions newest first, a read-only preview of one, restore after confirmation (a forward edit
// that everyone editing receives), "create checkpoint", and the activity (who did what).
// Everything here needs the server: offline, the panel says so and the document is untouched.
import { useCallback, useEffect, useMemo, useState } from 'react'
import { type ActivityItem, Canvas, type Change, Journal, type Version } from 'syncd-client'
import * as Y from 'yjs'

import { ElementView } from '../canvas/Elements'
import { bounds, unionBounds } from '../canvas/geometry'
import { formatDate } from '../pages/JournalPage'
import { useApp } from '../lib/sync'
import { Dialog } from './Dialog'

type Kind = 'canvas' | 'journal'
type View =
  | { page: 'list' }
  | { page: 'preview', version: Version, content: Y.Doc | null, error?: string }
  | { page: 'confirm', version: Version }

export const versionLabel = (v: Version) => v.name || (v.kind === 'auto' ? 'Automatic version' : 'Version')

export function HistoryPanel ({ name, kind, open, onClose, canEdit }: {
  name: string, kind: Kind, open: boolean, onClose: () => void, canEdit: boolean
}) {
  const { client } = useApp()
  const history = useMemo(() => client.history(name), [client, name])
  const [tab, setTab] = useState<'versions' | 'activity'>('versions')
  const [view, setView] = useState<View>({ page: 'list' })
  const [versions, setVersions] = useState<Version[] | null>(null)
  const [activity, setActivity] = useState<ActivityItem[] | null>(null)
  const [who, setWho] = useState('')
  const [label, setLabel] = useState('')
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | null>(null)
  const [notice, setNotice] = useState<string | null>(null)

  // A fetch that never reached the server has no status: offline, not an error of the server.
  const failed = useCallback((what: string) => (err: unknown) => {
    const status = (err as { status?: number }).status
    setError(status === undefined
      ? `${what} needs a connection to the server. Your ${kind} is safe on this device.`
      : `${what} failed: ${(err as Error).message}`)
  }, [kind])
  const loadVersions = useCallback(() => history.versions().then(setVersions, failed('The history')),
    [history, failed])
  const loadActivity = useCallback(() => history.activity(who ? { principal: who } : {}).then(setActivity, failed('The activity')),
    [history, who, failed])

  useEffect(() => {
    if (!open) return
    setError(null)
    setNotice(null)
    setView({ page: 'list' })
    loadVersions()
  }, [open, loadVersions])
  useEffect(() => { if (open && tab === 'activity') loadActivity() }, [open, tab, loadActivity])

  const checkpoint = async () => {
    setBusy(true)
    setError(null)
    try {
      const made = await history.checkpoint(label.trim() || `Checkpoint ${new Date().toLocaleString()}`)
      setLabel('')
      setNotice(`Checkpoint “${versionLabel(made)}” created.`)
      await loadVersions()
    } catch (err) {
      failed('Creating a checkpoint')(err)
    } finally {
      setBusy(false)
    }
  }

  const preview = async (version: Version) => {
    setError(null)
    setView({ page: 'preview', version, content: null })
    try {
      const ydoc = new Y.Doc()
      Y.applyUpdate(ydoc, await history.state(version.id))
      setView({ page: 'preview', version, content: ydoc })
    } catch (err) {
      setView({ page: 'preview', version, content: null, error: (err as Error).message })
    }
  }

  const restore = async (version: Version) => {
    setBusy(true)
    setError(null)
    try {
      await history.restore(version.id)
      setNotice(`Restored “${versionLabel(version)}”. Everyone editing sees it now; restore a later version to go back.`)
      setView({ page: 'list' })
      await loadVersions()
    } catch (err) {
      failed('Restoring')(err)
    } finally {
      setBusy(false)
    }
  }

  const principals = useMemo(() => [...new Set((activity ?? []).map((a) => a.principal))].sort(), [activity])

  return (
    <Dialog open={open} onClose={onClose} title='History' wide>
      <div className='history' data-testid='history-panel'>
        <div className='tabs' role='tablist' aria-label='History'>
          <button type='button' role='tab' aria-selected={tab === 'versions'} className={`chip ${tab === 'versions' ? 'active' : ''}`}
            onClick={() => { setTab('versions'); setView({ page: 'list' }) }}>Versions</button>
          <button type='button' role='tab' aria-selected={tab === 'activity'} className={`chip ${tab === 'activity' ? 'active' : ''}`}
            onClick={() => setTab('activity')}>Activity</button>
        </div>
        {error && <p className='error' role='alert'>{error}</p>}
        {notice && <p className='ok' role='status'>{notice}</p>}

        {tab === 'versions' && view.page === 'list' && (
          <>
            {canEdit && (
              <form className='row checkpoint' onSubmit={(e) => { e.preventDefault(); checkpoint() }}>
                <input aria-label='Checkpoint name' placeholder='Name this checkpoint (e.g. Before the workshop)' value={label}
                  maxLength={120} onChange={(e) => setLabel(e.target.value)} dir='auto' />
                <button type='submit' className='button primary' disabled={busy}>Create checkpoint</button>
              </form>
            )}
            {versions === null && !error && <p className='muted'>Loading…</p>}
            {versions?.length === 0 && <p className='muted'>No versions yet. Automatic versions appear while the {kind} changes.</p>}
            <ol className='versions' aria-label='Versions, newest first'>
              {versions?.map((v) => (
                <li key={v.id} className='version' data-version-id={v.id}>
                  <span className='version-name' dir='auto'>{versionLabel(v)}</span>
                  <span className='version-meta muted'>
                    {v.kind === 'auto' ? <span className='badge'>auto</span> : <span className='badge named'>checkpoint</span>}
                    {' '}<time dateTime={v.created_at}>{formatDate(v.created_at, true)}</time>
                    {v.created_by && <> · {v.created_by}</>}
                  </span>
                  <span className='version-actions'>
                    <button type='button' className='button ghost' onClick={() => preview(v)}>Preview</button>
                    {canEdit && <button type='button' className='button' onClick={() => setView({ page: 'confirm', version: v })}>Restore…</button>}
                  </span>
                </li>
              ))}
            </ol>
          </>
        )}

        {tab === 'versions' && view.page === 'preview' && (
          <div className='version-preview-pane'>
            <div className='row'>
              <button type='button' className='link-button' onClick={() => setView({ page: 'list' })}>← All versions</button>
            </div>
            <h3 dir='auto'>{versionLabel(view.version)} <span className='muted small'>{formatDate(view.version.created_at, true)} · read only</span></h3>
            {view.error && <p className='error' role='alert'>Could not load this version: {view.error}</p>}
            {!view.content && !view.error && <p className='muted'>Loading…</p>}
            {view.content && <VersionPreview ydoc={view.content} kind={kind} />}
            {canEdit && view.content && (
              <div className='dialog-footer'>
                <button type='button' className='button primary' onClick={() => setView({ page: 'confirm', version: view.version })}>Restore this version…</button>
              </div>
            )}
          </div>
        )}

        {tab === 'versions' && view.page === 'confirm' && (
          <div className='confirm' role='alertdialog' aria-labelledby='restore-q'>
            <p id='restore-q'><strong dir='auto'>Restore “{versionLabel(view.version)}”?</strong></p>
            <p>The {kind} becomes what it was at {formatDate(view.version.created_at, true)}, for everyone editing it. What was
              done since stays in the history: restoring a later version brings it back.</p>
            <div className='dialog-footer'>
              <button type='button' className='button primary' disabled={busy} onClick={() => restore(view.version)}>Restore</button>
              <button type='button' className='button ghost' onClick={() => setView({ page: 'list' })}>Cancel</button>
            </div>
          </div>
        )}

        {tab === 'activity' && (
          <>
            {principals.length > 1 || who
              ? (
                <label className='row activity-filter'>
                  <span>Who</span>
                  <select value={who} onChange={(e) => setWho(e.target.value)} aria-label='Filter by person'>
                    <option value=''>Everyone</option>
                    {[...new Set([...principals, ...(who ? [who] : [])])].map((p) => <option key={p} value={p}>{p}</option>)}
                  </select>
                </label>
                )
              : null}
            {activity === null && !error && <p className='muted'>Loading…</p>}
            {activity?.length === 0 && <p className='muted'>Nothing yet.</p>}
            <ol className='activity' aria-label='Activity, newest first'>
              {activity?.slice().reverse().map((a) => (
                <li key={a.seq} className='activity-item' data-seq={a.seq}>
                  <span className='activity-who'>{a.principal}</span>
                  <span className='activity-what' dir='auto'>{describe(a)}</span>
                  <time className='muted small' dateTime={a.at}>{formatDate(a.at, true)}</time>
                </li>
              ))}
            </ol>
          </>
        )}
      </div>
    </Dialog>
  )
}

/** The content of a version, drawn read-only from a scratch Y.Doc (nothing is applied to the
 * live document). */
function VersionPreview ({ ydoc, kind }: { ydoc: Y.Doc, kind: Kind }) {
  if (kind === 'journal') {
    const entries = new Journal(ydoc).entries().reverse()
    return (
      <div className='version-preview journal' data-testid='version-preview' data-entries={entries.length}>
        {entries.length === 0 && <p className='muted'>No entries in this version.</p>}
        {entries.map((e) => (
          <article key={e.id} className='preview-entry'>
            <h4 dir='auto'>{e.title || 'Untitled'}</h4>
            <p dir='auto'>{e.body}</p>
          </article>
        ))}
      </div>
    )
  }
  const canvas = new Canvas(ydoc)
  const elements = canvas.elements()
  const byId = new Map(elements.map((e) => [e.id, e]))
  const box = unionBounds(elements.map(bounds))
  const pad = 40
  return (
    <div className='version-preview canvas' data-testid='version-preview' data-elements={elements.length}
      style={{ background: canvas.meta.background ?? '#ffffff' }}>
      {box
        ? (
          <svg viewBox={`${box.x - pad} ${box.y - pad} ${box.w + 2 * pad} ${box.h + 2 * pad}`} preserveAspectRatio='xMidYMid meet'
            role='img' aria-label={`The canvas at this version: ${elements.length} elements`}>
            {elements.map((el) => <ElementView key={el.id} el={el} byId={byId} />)}
          </svg>
          )
        : <p className='muted'>Empty at this version.</p>}
    </div>
  )
}

const PHRASES: Record<string, [string, string]> = {
  canvas_created: ['created the canvas', 'created the canvas'],
  journal_created: ['created the journal', 'created the journal'],
  canvas_meta_changed: ['changed the canvas settings', 'changed the canvas settings'],
  journal_renamed: ['renamed the journal', 'renamed the journal'],
  journal_meta_changed: ['changed the journal settings', 'changed the journal settings'],
  element_added: ['added an element', 'added # elements'],
  element_moved: ['moved an element', 'moved # elements'],
  element_resized: ['resized an element', 'resized # elements'],
  element_rotated: ['rotated an element', 'rotated # elements'],
  element_recolored: ['recoloured an element', 'recoloured # elements'],
  element_reordered: ['brought an element forward', 'reordered # elements'],
  element_deleted: ['deleted an element', 'deleted # elements'],
  stroke_drawn: ['drew', 'drew # times'],
  entry_created: ['wrote a new entry', 'wrote # new entries'],
  entry_title_changed: ['retitled an entry', 'retitled # entries'],
  entry_text_changed: ['edited an entry', 'edited entries # times'],
  entry_tags_changed: ['changed tags', 'changed tags # times'],
  entry_mode_changed: ['changed an entry’s mode', 'changed # entries’ mode'],
  entry_field_changed: ['changed an entry', 'changed entries # times'],
  entry_deleted: ['deleted an entry', 'deleted # entries']
}

const KIND_NOUNS: Record<string, string> = { card: 'a card', stroke: 'a drawing', shape: 'a shape', text: 'a text', connector: 'a connector' }

/** "restored a version", "added a card, moved 2 elements". */
export function describe (item: ActivityItem): string {
  if (item.origin === 'restore') return 'restored a version'
  if (item.origin === 'rollback') return 'rolled back someone’s edits'
  const counts = new Map<string, Change[]>()
  for (const change of item.changes) {
    const list = counts.get(change.type) ?? []
    list.push(change)
    counts.set(change.type, list)
  }
  const parts: string[] = []
  for (const [type, changes] of counts) {
    if (type === 'unknown_schema') continue
    if (type === 'element_added' && changes.length === 1 && typeof changes[0].kind === 'string') {
      parts.push(`added ${KIND_NOUNS[changes[0].kind] ?? 'an element'}`)
      continue
    }
    const [one, many] = PHRASES[type] ?? [type.replace(/_/g, ' '), `${type.replace(/_/g, ' ')} ×#`]
    parts.push(changes.length === 1 ? one : many.replace('#', String(changes.length)))
  }
  return parts.join(', ') || 'made a change'
}
