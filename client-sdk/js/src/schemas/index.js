// Typed helpers for the shared document schemas journal/1 and canvas/1 (DESIGN.md §1.8).
export { CANVAS_SCHEMA, Canvas, KINDS } from './canvas.js'
export { JOURNAL_SCHEMA, Journal, MODES, diffStrings } from './journal.js'
export { NANOID_ALPHABET, isoUtc, newId, plain, utcNow } from './common.js'
