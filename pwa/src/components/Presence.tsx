import type { Peer } from '../lib/sync'

/** Who is here: one avatar per connected principal (several tabs of one person count once). */
export function Presence ({ peers, roles, following, onFollow }: {
  peers: Peer[]
  roles?: Record<string, string>
  following?: number | null
  onFollow?: (clientId: number | null) => void
}) {
  const seen = new Set<string>()
  const people = peers.filter((p) => (seen.has(p.principal) ? false : (seen.add(p.principal), true)))
  const presenter = peers.find((p) => p.presenting && !p.self)
  return (
    <div className='presence' aria-label='People here'>
      <ul className='avatars'>
        {people.map((p) => (
          <li key={p.clientId} className='avatar-item' title={`${p.name}${p.self ? ' (you)' : ''}${roles?.[p.principal] ? ` · ${roles[p.principal]}` : ''}`}>
            <span className={`avatar${p.presenting ? ' presenting' : ''}`} style={{ background: p.color }}>
              {p.name.slice(0, 1).toUpperCase()}
            </span>
            <span className='sr-only'>{p.name}{p.self ? ' (you)' : ''}</span>
          </li>
        ))}
      </ul>
      <span className='presence-names' data-testid='presence-names'>
        {people.map((p) => p.self ? `${p.name} (you)` : p.name).join(', ')}
      </span>
      {presenter && onFollow && (
        following === presenter.clientId
          ? <button type='button' className='chip active' onClick={() => onFollow(null)}>Following {presenter.name} ✕</button>
          : <button type='button' className='chip' onClick={() => onFollow(presenter.clientId)}>Follow {presenter.name}</button>
      )}
    </div>
  )
}
