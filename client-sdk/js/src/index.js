// syncd's JavaScript SDK. See README.md and index.d.ts for the API.
export { SyncClient, createClient, syncUrl, tokenSubject } from './client.js'
export { SyncedDocument } from './document.js'
export { RecoveredCopy, parseEpochMessage } from './epoch.js'
export { DocumentHistory } from './history.js'
export { MessageType, SyncStep, decodeFrame } from './framing.js'
export { Outbox } from './persistence.js'
export * from './schemas/index.js'
