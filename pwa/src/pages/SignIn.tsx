import { useState } from 'react'

import { type Session, SignInError, devLogin, pastedSession } from '../lib/auth'

export function SignIn ({ onSignedIn }: { onSignedIn: (session: Session) => void }) {
  const [name, setName] = useState('')
  const [token, setToken] = useState('')
  const [error, setError] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const [paste, setPaste] = useState(false)

  const signIn = async () => {
    setBusy(true)
    setError(null)
    try {
      onSignedIn(await devLogin(name.trim()))
    } catch (err) {
      setError((err as Error).message)
      if (err instanceof SignInError && err.unavailable) setPaste(true)
    } finally {
      setBusy(false)
    }
  }

  const usePasted = () => {
    try {
      onSignedIn(pastedSession(token))
    } catch (err) {
      setError((err as Error).message)
    }
  }

  return (
    <main className='signin'>
      <div className='signin-card'>
        <img src='./icon.svg' alt='' width='72' height='72' />
        <h1>Journal &amp; canvas</h1>
        <p className='muted'>Write and draw anywhere — on the train, with no signal. Everything syncs when you are back online.</p>
        <form onSubmit={(e) => { e.preventDefault(); signIn() }}>
          <label htmlFor='signin-name'>Your name</label>
          <input id='signin-name' autoFocus autoComplete='username' placeholder='e.g. alice' value={name}
            pattern='[A-Za-z0-9._@+\-]{1,64}' title='Letters, digits and . _ @ + -' required
            onChange={(e) => setName(e.target.value)} />
          <button type='submit' className='button primary wide' disabled={busy || !name.trim()}>
            {busy ? 'Signing in…' : 'Continue'}
          </button>
        </form>
        {error && <p className='error' role='alert'>{error}</p>}
        <button type='button' className='link-button' aria-expanded={paste} onClick={() => setPaste(!paste)}>
          {paste ? 'Hide' : 'Have a token? Paste it'}
        </button>
        {paste && (
          <form onSubmit={(e) => { e.preventDefault(); usePasted() }} className='paste'>
            <label htmlFor='signin-token'>Token</label>
            <textarea id='signin-token' rows={3} value={token} onChange={(e) => setToken(e.target.value)} />
            <button type='submit' className='button wide' disabled={!token.trim()}>Use this token</button>
          </form>
        )}
        <p className='fineprint'>Demo sign-in: anyone can pick any name. Real deployments use their own accounts.</p>
      </div>
    </main>
  )
}
