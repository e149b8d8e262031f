import type * as Y from 'yjs'

/** Returns the current time; injectable for tests. */
export type Clock = () => Date
/** Returns a fresh, globally unique id; injectable for tests. */
export type IdFactory = () => string

export const NANOID_ALPHABET: string
/** A random 21-character nanoid, safe to mint offline. */
export function newId (): string
export function utcNow (): Date
/** `YYYY-MM-DDTHH:MM:SS.mmmZ`, as Python's `iso_utc`. */
export function isoUtc (moment: Date): string
/** A shared type as plain JSON values (maps with sorted keys). */
export function plain (value: unknown): any
/** The one splice turning `before` into `after`. */
export function diffStrings (before: string, after: string): { index: number, remove: number, insert: string }

export const JOURNAL_SCHEMA: 'journal/1'
export type Mode = 'standalone' | 'in-session'
export const MODES: readonly Mode[]

export interface JournalEntry {
  id: string
  title: string
  body: string
  /** ISO 8601 UTC, `...T12:00:00.000Z` */
  created_at: string
  updated_at: string
  mode: Mode
  session_id: string | null
  prompt: string | null
  tags: string[]
}

export interface JournalJSON {
  meta: { schema?: 'journal/1', title?: string, [key: string]: unknown }
  entries: Record<string, Omit<JournalEntry, 'id'>>
}

export interface SchemaOptions {
  now?: Clock
  newId?: IdFactory
}

/** A `journal/1` view over a Y.Doc (the twin of Python's `crdt.schemas.Journal`). */
export class Journal {
  constructor (doc: Y.Doc, options?: SchemaOptions)
  static create (title?: string, options?: SchemaOptions): Journal
  readonly doc: Y.Doc
  /** The journal title, or null before `meta` has arrived. */
  readonly title: string | null
  readonly metaMap: Y.Map<unknown>
  readonly entriesMap: Y.Map<Y.Map<unknown>>
  init (title?: string): void
  rename (title: string): void
  createEntry (title: string, body?: string, options?: {
    mode?: Mode, sessionId?: string | null, prompt?: string | null, tags?: Iterable<string>
  }): string
  setTitle (entryId: string, title: string): void
  /** Delete `delete` characters at `index` (UTF-16 code units) of the body, then insert `insert`. */
  editBody (entryId: string, index: number, edit?: { delete?: number, insert?: string }): void
  /** Replace the body by the smallest splice that yields `body`. */
  setBody (entryId: string, body: string): void
  addTag (entryId: string, tag: string): boolean
  removeTag (entryId: string, tag: string): boolean
  deleteEntry (entryId: string): void
  has (entryId: string): boolean
  bodyText (entryId: string): Y.Text
  entry (entryId: string): JournalEntry
  /** Oldest first, ties broken by id. */
  entries (): JournalEntry[]
  /** The raw document as plain JSON, keys sorted: equal to Python's `to_json()`. */
  toJSON (): JournalJSON
}

export const CANVAS_SCHEMA: 'canvas/1'
export type Kind = 'card' | 'stroke' | 'shape' | 'text' | 'connector'
export const KINDS: readonly Kind[]

interface ElementBase {
  id: string
  x: number
  y: number
  w: number
  h: number
  /** Degrees, clockwise, in [0, 360). */
  rotation: number
  z: number
  color: string | null
  author: string | null
  created_at: string
}
export interface CardElement extends ElementBase { kind: 'card', deck: string, card_id: string }
/** `points` are flat x,y,pressure triples relative to (x, y). */
export interface StrokeElement extends ElementBase { kind: 'stroke', points: number[], width: number }
export interface ShapeElement extends ElementBase { kind: 'shape', shape: string }
export interface TextElement extends ElementBase { kind: 'text', text: string }
export interface ConnectorElement extends ElementBase { kind: 'connector', from: string, to: string }
export type CanvasElement = CardElement | StrokeElement | ShapeElement | TextElement | ConnectorElement

export interface CanvasMeta { schema?: 'canvas/1', title?: string, template?: string, background?: string }
export interface CanvasJSON {
  meta: CanvasMeta
  elements: Record<string, Omit<CanvasElement, 'id'>>
}

export interface CanvasOptions extends SchemaOptions {
  /** Stamped on the elements this view adds. */
  author?: string | null
}

interface Placement { rotation?: number, color?: string | null }

/** A `canvas/1` view over a Y.Doc (the twin of Python's `crdt.schemas.Canvas`). */
export class Canvas {
  constructor (doc: Y.Doc, options?: CanvasOptions)
  static create (title?: string, options?: CanvasOptions & { template?: string, background?: string }): Canvas
  readonly doc: Y.Doc
  readonly author: string | null
  readonly meta: CanvasMeta
  readonly metaMap: Y.Map<unknown>
  readonly elementsMap: Y.Map<Y.Map<unknown>>
  init (title?: string, options?: { template?: string, background?: string }): void
  rename (title: string): void
  setBackground (background: string): void
  addCard (deck: string, cardId: string, x: number, y: number, options?: Placement & { w?: number, h?: number }): string
  addStroke (x: number, y: number, points?: Iterable<number>, options?: { width?: number, color?: string | null }): string
  extendStroke (elementId: string, points: Iterable<number>): void
  addShape (shape: string, x: number, y: number, w: number, h: number, options?: Placement): string
  addText (text: string, x: number, y: number, options?: Placement & { w?: number, h?: number }): string
  editText (elementId: string, index: number, edit?: { delete?: number, insert?: string }): void
  addConnector (fromId: string, toId: string, options?: { color?: string | null }): string
  move (elementId: string, x: number, y: number): void
  resize (elementId: string, w: number, h: number): void
  rotate (elementId: string, rotation: number): void
  setColor (elementId: string, color: string | null): void
  bringToFront (elementId: string): void
  /** Removes the element and its connectors; returns the removed ids. */
  delete (elementId: string): string[]
  has (elementId: string): boolean
  elementMap (elementId: string): Y.Map<unknown>
  element (elementId: string): CanvasElement
  /** Paint order: ascending z, then id. */
  elements (): CanvasElement[]
  /** The raw document as plain JSON, keys sorted: equal to Python's `to_json()`. */
  toJSON (): CanvasJSON
}
