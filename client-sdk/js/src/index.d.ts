import type * as Y from 'yjs'
import type { Awareness } from 'y-protocols/awareness'

import type { Canvas, CanvasOptions, Journal, SchemaOptions } from './schemas/index.js'

export * from './schemas/index.js'

/** `offline`: no connection (edits wait in the outbox); `syncing`: exchanging state or waiting
 * for acknowledgements; `saved`: the server durably holds everything this replica has;
 * `denied`: the server refused or closed the document (`deniedReason`). */
export type DocumentStatus = 'offline' | 'syncing' | 'saved' | 'denied'
export type Scope = 'readonly' | 'read-write'

export type PersistenceOption =
  | 'indexeddb' | 'memory' | boolean | null
  | { type: 'indexeddb', prefix?: string }
  | { type: 'memory' }

export interface ClientOptions {
  /** The daemon: `ws://host:port` (or http(s)://…, or the full `/v1/sync` URL). */
  url: string
  /** A JWT, or a callback returning a fresh one (called at each connection and on expiry). */
  token: string | (() => string | Promise<string>)
  /** Default: IndexedDB when the environment has it (browsers), memory otherwise. Give each
   * server and principal its own `prefix` so accounts never mix in one browser. */
  persistence?: PersistenceOption
  /** A WebSocket implementation where there is no global one (Node 20: the `ws` package). */
  WebSocket?: unknown
  /** [first, longest] reconnect delay in ms (jittered, doubling). Default [200, 15000]. */
  backoff?: [number, number]
  /** Drop a socket that received nothing for this long (ms). Default 30000. */
  livenessMs?: number
  connectTimeoutMs?: number
  /** Connect at once (default true); false waits for `reconnect()`. */
  autoConnect?: boolean
  /** The principal, for `canvas()` authorship; read from the token's `sub` by default. */
  principal?: string
}

export interface DocumentMetadata {
  id: string
  owner: string
  mode: 'private' | 'shared'
  grants: Record<string, 'viewer' | 'editor'>
  seq: number
  size_bytes: number
  created_at: string
  updated_at: string
  /** The document's lineage: made anew whenever its history is rewritten (purge, erasure). */
  epoch: string
}

/** A local replica set aside, never merged, because the server's history of its document was
 * rewritten (its epoch changed) while it held edits the server had not acknowledged. Stored
 * with the document until `discardRecovered`. */
export class RecoveredCopy {
  readonly id: string
  /** The document, `OWNER/NAME`. */
  readonly name: string
  /** The epoch the replica was synced under. */
  readonly epoch: string | null
  /** The server's epoch that replaced it. */
  readonly serverEpoch: string
  /** The whole replica (acknowledged content and the local edits on top), a Yjs update. */
  readonly state: Uint8Array
  /** The unacknowledged local edits alone, in the order they were made. */
  readonly updates: Uint8Array[]
  /** ISO 8601. */
  readonly recoveredAt: string
  /** A fresh Y.Doc holding the replica (read it with `new Canvas(ydoc)` / `new Journal(ydoc)`). */
  replica (): Y.Doc
}

/** The epoch a `Stateless` payload announces (`{"syncd": "epoch", "epoch": E}`), else null. */
export function parseEpochMessage (payload: string): string | null

type Listener<A extends unknown[]> = (...args: A) => void

export class SyncedDocument {
  readonly client: SyncClient
  readonly name: string
  /** Replaced by a new Y.Doc when the server's epoch changed (`reset` event): bind views again. */
  readonly ydoc: Y.Doc
  /** Presence: set yours with `awareness.setLocalStateField(...)`; the server adds `principal`.
   * Replaced with `ydoc` on a reset (the local state is carried over). */
  readonly awareness: Awareness
  readonly status: DocumentStatus
  readonly scope: Scope | null
  readonly readonly: boolean
  readonly deniedReason: string | null
  /** Local edits the server has not acknowledged yet. */
  readonly pending: number
  readonly loaded: boolean
  readonly closed: boolean
  /** Resolves once the local copy (IndexedDB) is loaded into `ydoc`. */
  readonly whenLoaded: Promise<void>
  /** The server epoch this replica belongs to; null before its first sync here. */
  readonly epoch: string | null
  /** Times `ydoc` was replaced after an epoch change, since this document was opened. */
  readonly resets: number
  /** Recovered copies of this document, oldest first. */
  readonly recovered: RecoveredCopy[]
  /** Erase a recovered copy; resolves to whether it was there. */
  discardRecovered (copy: RecoveredCopy | string): Promise<boolean>
  journal (options?: SchemaOptions): Journal
  canvas (options?: CanvasOptions): Canvas
  whenSaved (options?: { timeout?: number }): Promise<SyncedDocument>
  when (predicate: (doc: SyncedDocument) => boolean, options?: { timeout?: number, what?: string }): Promise<SyncedDocument>
  /** Open again after a refusal (e.g. once access was granted). */
  reopen (): void
  /** Leave the document and close its local persistence (the data stays on disk). */
  close (): Promise<void>
  /** Delete the local copy and outbox (e.g. on sign-out). */
  clearLocal (): Promise<void>
  on (event: 'status', fn: Listener<[DocumentStatus, SyncedDocument]>): () => void
  on (event: 'change', fn: Listener<[SyncedDocument, 'local' | 'remote']>): () => void
  on (event: 'scope', fn: Listener<[Scope, SyncedDocument]>): () => void
  on (event: 'denied', fn: Listener<[string, SyncedDocument]>): () => void
  on (event: 'refused', fn: Listener<[SyncedDocument]>): () => void
  on (event: 'loaded', fn: Listener<[SyncedDocument]>): () => void
  /** The server's epoch changed: `ydoc` and `awareness` are new (the old Y.Doc is passed). */
  on (event: 'reset', fn: Listener<[SyncedDocument, Y.Doc]>): () => void
  /** A reset set unacknowledged local edits aside in this copy (after `reset`). */
  on (event: 'recovered', fn: Listener<[RecoveredCopy, SyncedDocument]>): () => void
  off (event: string, fn: (...args: any[]) => void): void
}

export interface Version {
  id: number
  name: string | null
  kind: 'named' | 'auto'
  seq: number
  created_at: string
  created_by: string | null
}

/** One change of §1.7's `format=changes` (`element_added`, `entry_text_changed`, …). */
export interface Change {
  type: string
  schema?: string
  id?: string | null
  principal?: string
  [field: string]: unknown
}

export interface ActivityItem {
  seq: number
  at: string
  principal: string
  origin: string
  changes: Change[]
}

export interface TrashEntry {
  id: string
  deleted_at: string
  /** When the trash window ends and the document is purged (null: never). */
  purge_at: string | null
}

/** A document's history over HTTP (DESIGN.md §1.10): `client.history(name)`. */
export class DocumentHistory {
  readonly name: string
  /** Newest first. */
  versions (): Promise<Version[]>
  /** A named version of the document as it is now. */
  checkpoint (name: string): Promise<Version>
  /** The document at that version, as its JSON view (canvas/1 or journal/1). */
  stateJSON (vid: number): Promise<any>
  /** The document at that version, as one Yjs update. */
  state (vid: number): Promise<Uint8Array>
  /** A forward edit making the content equal to that version's. */
  restore (vid: number): Promise<{ seq: number }>
  deleteVersion (vid: number): Promise<void>
  activity (filter?: { since?: string | Date, until?: string | Date, principal?: string }): Promise<ActivityItem[]>
  rollback (window: { principal: string, since: string | Date, until: string | Date }): Promise<{ seq: number }>
}

export class SyncClient {
  readonly url: string
  readonly httpUrl: string
  readonly documents: Map<string, SyncedDocument>
  readonly connected: boolean
  /** Set when the server closed the socket in the 4400-4499 band: reconnecting stopped. */
  readonly closedReason: string | null
  readonly closedCode: number | null
  readonly principal: string | null
  open (name: string): SyncedDocument
  whenSaved (options?: { timeout?: number }): Promise<SyncedDocument[]>
  reconnect (): void
  disconnect (): void
  destroy (): Promise<void>
  metadata (name: string): Promise<DocumentMetadata | null>
  setAccess (name: string, access: { mode: 'private' | 'shared', grants?: Record<string, 'viewer' | 'editor'> }): Promise<DocumentMetadata>
  stateJSON (name: string): Promise<unknown>
  history (name: string): DocumentHistory
  /** To the trash (live clients closed with 4404), or erased for good with `purge`. */
  deleteDocument (name: string, options?: { purge?: boolean }): Promise<void>
  /** Back from the trash, whole (content, access, versions); its metadata. */
  restoreDocument (name: string): Promise<DocumentMetadata | null>
  /** This principal's documents in the trash, newest deletion first. */
  trash (): Promise<TrashEntry[]>
  /** Create the document, also where a purged one was (it gets a new epoch). */
  createDocument (name: string): Promise<DocumentMetadata>
  on (event: 'status', fn: Listener<[{ name: string, status: DocumentStatus, document: SyncedDocument }]>): () => void
  on (event: 'connection', fn: Listener<[{ connected: boolean, code?: number, reason?: string }]>): () => void
  on (event: 'closed', fn: Listener<[{ code: number, reason: string, permanent: true }]>): () => void
  on (event: 'recovered', fn: Listener<[{ name: string, copy: RecoveredCopy, document: SyncedDocument }]>): () => void
  off (event: string, fn: (...args: any[]) => void): void
}

export function createClient (options: ClientOptions): SyncClient
export function syncUrl (url: string): string
export function tokenSubject (token: string): string | null

export const MessageType: Readonly<Record<'SYNC' | 'AWARENESS' | 'AUTH' | 'QUERY_AWARENESS' | 'STATELESS' | 'CLOSE' | 'SYNC_STATUS', number>>
export const SyncStep: Readonly<{ STEP1: 0, STEP2: 1, UPDATE: 2 }>
export function decodeFrame (bytes: Uint8Array): { address: string, type: number, [key: string]: unknown }

export class Outbox {
  readonly entries: { id: number, update: Uint8Array }[]
  readonly lastId: number
  readonly count: number
  add (update: Uint8Array): number
  acknowledge (uptoId: number): number
}
