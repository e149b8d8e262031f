// "Notify me": a switch for Web Push on this device (lib/push.ts). It asks the browser for
// permission only when tapped; it says so when the browser cannot, or the person has blocked it.
import { useEffect, useState } from 'react'

import { type PushState, PushError, disablePush, enablePush, pushState, resyncPush } from '../lib/push'

const BELL = 'M6 16V11a6 6 0 1112 0v5l2 2H4zM10 20a2 2 0 004 0'

export function NotifySwitch () {
  const [state, setState] = useState<PushState | null>(null)
  const [busy, setBusy] = useState(false)
  const [problem, setProblem] = useState<string | null>(null)

  useEffect(() => {
    let live = true
    pushState().then((s) => { if (live) setState(s) }, () => { if (live) setState('unsupported') })
    resyncPush().catch(() => {}) // a changed subscription is posted again; offline: next start
    return () => { live = false }
  }, [])

  if (state === null || state === 'unsupported') return null
  const on = state === 'on'

  const toggle = async () => {
    setBusy(true)
    setProblem(null)
    try {
      if (on) await disablePush()
      else await enablePush()
    } catch (err) {
      setProblem(err instanceof PushError ? err.message : 'Notifications could not be changed.')
    } finally {
      setState(await pushState().catch(() => 'off' as const))
      setBusy(false)
    }
  }

  const title = state === 'denied'
    ? 'Notifications are blocked for this site in the browser settings'
    : on ? 'You get a notification when something is shared with you or a prompt is sent' : 'Get a notification when something is shared with you or a prompt is sent'
  return (
    <span className='notify-switch' style={{ display: 'inline-flex', alignItems: 'center', gap: '0.4rem' }}>
      <button
        type='button'
        role='switch'
        aria-checked={on}
        className={`button ghost${on ? ' active' : ''}`}
        disabled={busy || state === 'denied'}
        onClick={() => { void toggle() }}
        title={title}
        data-push={state}
      >
        <svg width={18} height={18} viewBox='0 0 24 24' fill='none' stroke='currentColor' strokeWidth={1.8} strokeLinecap='round' strokeLinejoin='round' aria-hidden='true'>
          <path d={BELL} />
        </svg>
        <span className='label'>Notify me</span>
      </button>
      {problem && <span role='alert' className='notify-problem' style={{ fontSize: '0.85rem' }}>{problem}</span>}
    </span>
  )
}
