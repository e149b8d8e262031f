import { useEffect, useState } from 'react'
import type { DocumentMetadata } from 'syncd-client'

import { useApp } from '../lib/sync'
import { colorFor } from '../lib/sync'
import { Dialog } from './Dialog'
import { Icon } from './Icon'

type Role = 'viewer' | 'editor'
const PRINCIPAL = /^[A-Za-z0-9._@+-]{1,64}$/

/** Private / shared, and who may view or edit: PUT /v1/docs/{id}/access (owner only). */
export function ShareDialog ({ doc, title, kind, open, onClose }: {
  doc: string, title?: string, kind: 'journal' | 'canvas', open: boolean, onClose: () => void
}) {
  const { client, me } = useApp()
  const owner = doc.split('/')[0]
  const isOwner = owner === me
  const [meta, setMeta] = useState<DocumentMetadata | null>(null)
  const [mode, setMode] = useState<'private' | 'shared'>('private')
  const [grants, setGrants] = useState<[string, Role][]>([])
  const [name, setName] = useState('')
  const [role, setRole] = useState<Role>('viewer')
  const [error, setError] = useState<string | null>(null)
  const [saving, setSaving] = useState(false)
  const [saved, setSaved] = useState(false)
  const [copied, setCopied] = useState(false)

  useEffect(() => {
    if (!open) return
    setError(null)
    setSaved(false)
    client.metadata(doc).then((m) => {
      setMeta(m)
      if (m) {
        setMode(m.mode)
        setGrants(Object.entries(m.grants) as [string, Role][])
      }
    }, () => setError('Sharing needs a connection to the server. Your document is safe on this device.'))
  }, [open, client, doc])

  const add = () => {
    const who = name.trim()
    if (!PRINCIPAL.test(who)) return setError('Names use letters, digits and . _ @ + - only.')
    if (who === owner) return setError('The owner always has access.')
    setError(null)
    setGrants((list) => [...list.filter(([n]) => n !== who), [who, role]])
    setName('')
    setMode('shared')
  }

  const save = async () => {
    setSaving(true)
    setError(null)
    try {
      const updated = await client.setAccess(doc, { mode, grants: Object.fromEntries(grants) })
      setMeta(updated)
      setSaved(true)
    } catch (err) {
      setError(`Could not save: ${(err as Error).message}`)
    } finally {
      setSaving(false)
    }
  }

  const link = `${window.location.origin}${window.location.pathname}#/${kind}/${doc}`
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(link)
      setCopied(true)
      setTimeout(() => setCopied(false), 2000)
    } catch {
      setCopied(false)
    }
  }

  return (
    <Dialog open={open} onClose={onClose} title={`Share “${title || doc}”`}>
      <p className='muted small doc-id'>{doc}</p>
      {!isOwner && (
        <p className='muted'>
          Only {owner} can change who has access.{' '}
          {meta ? <>It is <strong>{meta.mode}</strong>; you are {meta.grants[me] ?? 'a reader'}.</> : null}
        </p>
      )}
      <fieldset className='share-mode' disabled={!isOwner}>
        <legend>Who can open it</legend>
        <label className={`choice ${mode === 'private' ? 'chosen' : ''}`}>
          <input type='radio' name='mode' value='private' checked={mode === 'private'} onChange={() => setMode('private')} />
          <span><strong>Private</strong><small>Only you.</small></span>
        </label>
        <label className={`choice ${mode === 'shared' ? 'chosen' : ''}`}>
          <input type='radio' name='mode' value='shared' checked={mode === 'shared'} onChange={() => setMode('shared')} />
          <span><strong>Shared</strong><small>You and the people below.</small></span>
        </label>
      </fieldset>

      <section aria-label='People with access' className='grants'>
        <div className='grant owner'>
          <span className='avatar' style={{ background: colorFor(owner) }} aria-hidden='true'>{owner[0]?.toUpperCase()}</span>
          <span className='grant-name'>{owner}{owner === me ? ' (you)' : ''}</span>
          <span className='grant-role'>Owner</span>
        </div>
        {grants.map(([who, r]) => (
          <div className={`grant ${mode === 'private' ? 'inactive' : ''}`} key={who}>
            <span className='avatar' style={{ background: colorFor(who) }} aria-hidden='true'>{who[0]?.toUpperCase()}</span>
            <span className='grant-name'>{who}{who === me ? ' (you)' : ''}</span>
            <select aria-label={`Role of ${who}`} value={r} disabled={!isOwner}
              onChange={(e) => setGrants((list) => list.map(([n, old]) => [n, n === who ? e.target.value as Role : old]))}>
              <option value='viewer'>Can view</option>
              <option value='editor'>Can edit</option>
            </select>
            {isOwner && (
              <button type='button' className='icon-button' aria-label={`Remove ${who}`}
                onClick={() => setGrants((list) => list.filter(([n]) => n !== who))}><Icon name='close' size={16} /></button>
            )}
          </div>
        ))}
        {mode === 'private' && grants.length > 0 && (
          <p className='muted small'>While private, these people keep their place but cannot open it.</p>
        )}
      </section>

      {isOwner && (
        <form className='grant-add' onSubmit={(e) => { e.preventDefault(); add() }}>
          <label className='sr-only' htmlFor='share-name'>Name</label>
          <input id='share-name' placeholder='Add a person by name' value={name} autoComplete='off'
            onChange={(e) => setName(e.target.value)} />
          <label className='sr-only' htmlFor='share-role'>Role</label>
          <select id='share-role' value={role} onChange={(e) => setRole(e.target.value as Role)}>
            <option value='viewer'>Can view</option>
            <option value='editor'>Can edit</option>
          </select>
          <button type='submit' className='button'>Add</button>
        </form>
      )}

      {error && <p className='error' role='alert'>{error}</p>}
      <footer className='dialog-footer'>
        <button type='button' className='button ghost' onClick={copy}>{copied ? 'Link copied' : 'Copy link'}</button>
        <span className='spacer' />
        {saved && <span className='ok' role='status'>Saved</span>}
        {isOwner && (
          <button type='button' className='button primary' onClick={save} disabled={saving}>
            {saving ? 'Saving…' : 'Save'}
          </button>
        )}
      </footer>
    </Dialog>
  )
}
