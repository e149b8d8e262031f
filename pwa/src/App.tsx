import { useCallback, useEffect, useMemo, useRef, useState } from 'react'
import type { SyncedDocument } from 'syncd-client'

import { type Session, loadSession, saveSession } from './lib/auth'
import { DocumentGate } from './components/DocumentGate'
import { RefusedNotice } from './components/RefusedNotice'
import { libraryName } from './lib/library'
import { useRefusedRollback } from './lib/rollback'
import { type Route, useRoute } from './lib/router'
import { AppProvider, colorFor, startClient, useResets } from './lib/sync'
import { CanvasPage } from './pages/CanvasPage'
import { Home } from './pages/Home'
import { JournalPage } from './pages/JournalPage'
import { Privacy } from './pages/Privacy'
import { SignIn } from './pages/SignIn'

export function App () {
  const [session, setSession] = useState<Session | null>(() => loadSession())
  const sessionRef = useRef(session)
  sessionRef.current = session

  const signIn = useCallback((next: Session) => {
    saveSession(next)
    setSession(next)
  }, [])

  if (!session) return <SignIn onSignedIn={signIn} />
  return <SignedIn key={session.name} session={session} getSession={() => loadSession() ?? sessionRef.current}
    onSignOut={() => { saveSession(null); setSession(null) }} />

}

function SignedIn ({ session, getSession, onSignOut }: { session: Session, getSession: () => Session | null, onSignOut: () => void }) {
  const client = useMemo(() => startClient(session, getSession), [session.name]) // eslint-disable-line react-hooks/exhaustive-deps
  const me = session.name
  const context = useMemo(() => ({ client, session, me, color: colorFor(me) }), [client, session, me])
  const library = useMemo(() => client.open(libraryName(me)), [client, me])
  const route = useRoute()
  const [closed, setClosed] = useState<string | null>(client.closedReason)
  useEffect(() => client.on('closed', () => setClosed(client.closedReason)), [client])

  return (
    <AppProvider value={context}>
      {closed && (
        <div className='banner error' role='alert'>
          The server stopped this connection ({closed}). Your changes are kept on this device.{' '}
          <button type='button' className='link-button' onClick={() => { setClosed(null); client.reconnect() }}>Try again</button>
        </div>
      )}
      {route.page === 'home' && <Home library={library} onSignOut={() => { client.destroy(); onSignOut() }} />}
      {route.page === 'privacy' && <Privacy />}
      {(route.page === 'journal' || route.page === 'canvas') && (
        <DocumentGate key={route.doc} id={route.doc} kind={route.page} library={library}>
          <DocumentRoute route={route} library={library} />
        </DocumentGate>
      )}
    </AppProvider>
  )
}

/** A document's page, built again when the SDK replaced its Y.Doc after an epoch change, and
 * when a viewer's refused edit was rolled back (lib/rollback.ts). */
function DocumentRoute ({ route, library }: { route: Extract<Route, { doc: string }>, library: SyncedDocument }) {
  const resets = useResets(route.doc)
  const rollback = useRefusedRollback(route.doc)
  const key = `${route.doc}#${resets}#${rollback.count}`
  return (
    <>
      {rollback.kept && <RefusedNotice name={route.doc} kept={rollback.kept} onDismiss={rollback.dismiss} />}
      {route.page === 'journal'
        ? <JournalPage key={key} name={route.doc} entryId={route.entry} library={library} />
        : <CanvasPage key={key} name={route.doc} library={library} />}
    </>
  )
}
