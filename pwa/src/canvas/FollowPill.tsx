import type { Peer } from '../lib/sync'

/**
 * "Follow NAME" / "Following NAME ✕" over the canvas, for phones: in the one-row top bar the
 * same chip (Presence's) would push Share off the screen. Same words, so it reads the same.
 */
export function FollowPill ({ peers, following, onFollow }: {
  peers: Peer[], following: number | null, onFollow: (clientId: number | null) => void
}) {
  const presenter = peers.find((p) => p.presenting && !p.self)
  if (!presenter) return null
  return following === presenter.clientId
    ? <button type='button' className='chip active follow-pill' onClick={() => onFollow(null)}>Following {presenter.name} ✕</button>
    : <button type='button' className='chip follow-pill' onClick={() => onFollow(presenter.clientId)}>Follow {presenter.name}</button>
}
