// The Hocuspocus framing of /v1/sync (docs/protocol.md; crdt/hocuspocus.py is the Python twin).
// Pure functions, no I/O.
//
//   frame     := varString(address) varUint(type) payload
//   sync      := 0 varUint(step) varUint8Array(data)
//   awareness := 1 varUint8Array(awareness update)
//   auth      := 2 varUint(0) varString(token) varString(version)      client: token
//              | 2 varUint(1) varString(reason)                        server: permission denied
//              | 2 varUint(2) varString("readonly" | "read-write")     server: authenticated
//   query     := 3
//   close     := 7 [varString(reason)]
//   status    := 8 varUint(0 | 1)                                      server: SyncStatus

import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'

export const MessageType = Object.freeze({
  SYNC: 0,
  AWARENESS: 1,
  AUTH: 2,
  QUERY_AWARENESS: 3,
  STATELESS: 5,
  CLOSE: 7,
  SYNC_STATUS: 8
})

export const SyncStep = Object.freeze({ STEP1: 0, STEP2: 1, UPDATE: 2 })

const AUTH_TOKEN = 0
const AUTH_DENIED = 1
const AUTH_OK = 2

/** The version this SDK announces in its auth messages. */
export const SDK_VERSION = 'syncd-client/0.1.0'

function frame (address, type, write) {
  const encoder = encoding.createEncoder()
  encoding.writeVarString(encoder, address)
  encoding.writeVarUint(encoder, type)
  if (write) write(encoder)
  return encoding.toUint8Array(encoder)
}

export const encodeSync = (address, step, data) => frame(address, MessageType.SYNC, (e) => {
  encoding.writeVarUint(e, step)
  encoding.writeVarUint8Array(e, data)
})

export const encodeAwareness = (address, update) =>
  frame(address, MessageType.AWARENESS, (e) => encoding.writeVarUint8Array(e, update))

export const encodeToken = (address, token, version = SDK_VERSION) =>
  frame(address, MessageType.AUTH, (e) => {
    encoding.writeVarUint(e, AUTH_TOKEN)
    encoding.writeVarString(e, token)
    encoding.writeVarString(e, version)
  })

export const encodeQueryAwareness = (address) => frame(address, MessageType.QUERY_AWARENESS)

export const encodeClose = (address) => frame(address, MessageType.CLOSE)

/**
 * Decode one frame from the server into `{address, type, ...}`:
 * sync `{step, data}`, awareness `{update}`, auth `{auth: "token"}` | `{auth: "denied", reason}` |
 * `{auth: "authenticated", scope}`, close `{reason}`, status `{stored}`, stateless `{payload}`.
 * Throws on a frame that does not decode.
 */
export function decodeFrame (bytes) {
  const decoder = decoding.createDecoder(bytes)
  const address = decoding.readVarString(decoder)
  const type = decoding.readVarUint(decoder)
  const message = { address, type }
  switch (type) {
    case MessageType.SYNC:
      message.step = decoding.readVarUint(decoder)
      if (message.step > SyncStep.UPDATE) throw new Error(`unknown sync step ${message.step}`)
      message.data = decoding.readVarUint8Array(decoder)
      break
    case MessageType.AWARENESS:
      message.update = decoding.readVarUint8Array(decoder)
      break
    case MessageType.AUTH: {
      const sub = decoding.readVarUint(decoder)
      if (sub === AUTH_TOKEN) {
        message.auth = 'token'
        if (decoding.hasContent(decoder)) message.token = decoding.readVarString(decoder)
        if (decoding.hasContent(decoder)) message.version = decoding.readVarString(decoder)
      } else if (sub === AUTH_DENIED) {
        message.auth = 'denied'
        message.reason = decoding.readVarString(decoder)
      } else if (sub === AUTH_OK) {
        message.auth = 'authenticated'
        message.scope = decoding.readVarString(decoder)
        if (message.scope !== 'readonly' && message.scope !== 'read-write') {
          throw new Error(`unknown scope ${JSON.stringify(message.scope)}`)
        }
      } else {
        throw new Error(`unknown auth message ${sub}`)
      }
      break
    }
    case MessageType.QUERY_AWARENESS:
      break
    case MessageType.STATELESS:
      message.payload = decoding.readVarString(decoder)
      break
    case MessageType.CLOSE:
      message.reason = decoding.hasContent(decoder) ? decoding.readVarString(decoder) : null
      break
    case MessageType.SYNC_STATUS: {
      const status = decoding.readVarUint(decoder)
      if (status > 1) throw new Error(`sync status ${status} is not 0 or 1`)
      message.stored = status === 1
      break
    }
    default:
      throw new Error(`unknown message type ${type}`)
  }
  if (decoding.hasContent(decoder)) throw new Error('trailing bytes after the message')
  return message
}
