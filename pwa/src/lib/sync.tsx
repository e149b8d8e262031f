// The app's one SDK client (per signed-in principal) and React hooks over documents.
import { createContext, useCallback, useContext, useEffect, useMemo, useState, useSyncExternalStore } from 'react'
import { createClient, type DocumentStatus, type RecoveredCopy, type SyncClient, type SyncedDocument } from 'syncd-client'
import type * as Y from 'yjs'

import { type Session, saveSession, tokenProvider } from './auth'

export interface AppContext {
  client: SyncClient
  session: Session
  me: string
  color: string
}

const Context = createContext<AppContext | null>(null)
export const AppProvider = Context.Provider

export function useApp (): AppContext {
  const value = useContext(Context)
  if (!value) throw new Error('useApp outside the provider')
  return value
}

/** The client for `session`: IndexedDB databases are prefixed by principal and server. */
export function startClient (session: Session, getSession: () => Session | null): SyncClient {
  const origin = window.location.origin.replace(/^http/, 'ws')
  const client = createClient({
    url: origin + window.location.pathname.replace(/[^/]*$/, ''),
    token: tokenProvider(getSession, (fresh) => saveSession(fresh)),
    persistence: { type: 'indexeddb', prefix: `syncd:${session.name}@${window.location.host}:` },
    principal: session.name
  })
  // For debugging from the console (and the end-to-end tests, which use it to try writing
  // as a viewer: the server must refuse what the UI would never send).
  ;(window as unknown as { syncd: unknown }).syncd = { client }
  return client
}

/** A stable colour per principal, for cursors and avatars. */
export function colorFor (name: string): string {
  const palette = ['#d1495b', '#2a9d8f', '#e76f51', '#3d5a80', '#8e5572', '#00798c', '#c1121f', '#6a4c93', '#2b9348', '#b5651d']
  let hash = 0
  for (const ch of name) hash = (hash * 31 + ch.codePointAt(0)!) >>> 0
  return palette[hash % palette.length]
}

export function useDocument (name: string): SyncedDocument {
  const { client } = useApp()
  return useMemo(() => client.open(name), [client, name])
}

/**
 * How many times the SDK replaced the document's Y.Doc because its epoch changed on the server
 * (its history was rewritten): pages key on it, so that everything bound to the old Y.Doc and
 * awareness (views, undo manager, observers) is built again on the new ones.
 */
export function useResets (name: string | null): number {
  const { client } = useApp()
  const doc = name ? client.open(name) : null
  return useSyncExternalStore(
    (fn) => (doc ? doc.on('reset', fn) : () => {}),
    () => doc?.resets ?? 0
  )
}

/** The document's recovered copies (local edits kept aside after an epoch change), and a
 * function to read them again (after discarding one). */
export function useRecovered (doc: SyncedDocument): [RecoveredCopy[], () => void] {
  const [copies, setCopies] = useState<RecoveredCopy[]>(() => doc.recovered)
  const read = useCallback(() => setCopies(doc.recovered), [doc])
  useEffect(() => {
    read()
    const offs = [doc.on('recovered', read), doc.on('loaded', read)]
    return () => offs.forEach((off) => off())
  }, [doc, read])
  return [copies, read]
}

/** Whether the local (IndexedDB) copy of `doc` is loaded. */
export function useLoaded (doc: SyncedDocument): boolean {
  const [loaded, setLoaded] = useState(doc.loaded)
  useEffect(() => {
    let live = true
    if (!doc.loaded) doc.whenLoaded.then(() => { if (live) setLoaded(true) })
    else setLoaded(true)
    return () => { live = false }
  }, [doc])
  return loaded
}

export interface DocState {
  status: DocumentStatus
  pending: number
  readonly: boolean
  scope: string | null
  deniedReason: string | null
}

/** Status, pending count and scope of a document, re-rendered on every change of them. */
export function useDocState (doc: SyncedDocument): DocState {
  const snapshot = useSyncExternalStore(
    (fn) => {
      const offs = [doc.on('status', fn), doc.on('change', fn), doc.on('scope', fn), doc.on('denied', fn)]
      return () => offs.forEach((off) => off())
    },
    () => `${doc.status}\u0000${doc.pending}\u0000${doc.scope ?? ''}\u0000${doc.deniedReason ?? ''}`
  )
  return useMemo(() => {
    const [status, pending, scope, deniedReason] = snapshot.split('\u0000')
    return {
      status: status as DocumentStatus,
      pending: Number(pending),
      readonly: scope === 'readonly',
      scope: scope || null,
      deniedReason: deniedReason || null
    }
  }, [snapshot])
}

/** A counter bumped on every (deep) change of the given shared types: re-render on change. */
export function useYVersion (...types: (Y.AbstractType<any> | null | undefined)[]): number {
  const [version, setVersion] = useState(0)
  useEffect(() => {
    const live = types.filter(Boolean) as Y.AbstractType<any>[]
    let frame = 0
    const bump = () => {
      if (frame) return
      frame = requestAnimationFrame(() => { frame = 0; setVersion((v) => v + 1) })
    }
    live.forEach((t) => t.observeDeep(bump))
    return () => {
      live.forEach((t) => t.unobserveDeep(bump))
      if (frame) cancelAnimationFrame(frame)
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, types)
  return version
}

export interface Peer {
  clientId: number
  principal: string
  name: string
  color: string
  self: boolean
  cursor?: { x: number, y: number } | null
  viewport?: { cx: number, cy: number, scale: number, w?: number, h?: number } | null
  presenting?: boolean
  editing?: string | null
}

/** The presence states on a document (the server stamps `principal` on every one). */
export function usePeers (doc: SyncedDocument): Peer[] {
  const [peers, setPeers] = useState<Peer[]>([])
  useEffect(() => {
    const read = () => {
      const list: Peer[] = []
      doc.awareness.getStates().forEach((state: any, clientId: number) => {
        if (!state || !state.user) return
        const principal = typeof state.principal === 'string' ? state.principal : state.user.name
        list.push({
          clientId,
          principal,
          name: String(state.user.name ?? principal),
          color: String(state.user.color ?? colorFor(principal)),
          self: clientId === doc.ydoc.clientID,
          cursor: state.cursor ?? null,
          viewport: state.viewport ?? null,
          presenting: Boolean(state.presenting),
          editing: state.editing ?? null
        })
      })
      list.sort((a, b) => Number(b.self) - Number(a.self) || a.name.localeCompare(b.name))
      setPeers(list)
    }
    read()
    doc.awareness.on('change', read)
    return () => doc.awareness.off('change', read)
  }, [doc])
  return peers
}
