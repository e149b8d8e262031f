// The participant's privacy page (issue 12; DESIGN.md §1.11): their consents per purpose, which
// they see and change (`GET/PUT /v1/principals/{sub}/consent`), and the download of everything
// the server holds of theirs (`GET /v1/principals/{sub}/export`, a zip).
import { useEffect, useState } from 'react'

import { Icon } from '../components/Icon'
import { ApiError, type Consents, fetchExport, getConsent, putConsent } from '../lib/api'
import { download } from '../lib/download'
import { useApp } from '../lib/sync'

/** What each purpose means to a participant. A purpose the server knows and this list does not
 * is still shown (under its own name), so that nothing consented to is hidden. */
const PURPOSES: Record<string, { label: string, detail: string }> = {
  analytics: {
    label: 'Analytics of my activity',
    detail: 'Let the coaching platform’s analysis services read what I do on shared canvases and in my journals, ' +
      'attributed to me, to give my coach insights. Without it they receive nothing of mine (not even my name).'
  }
}

type Load = { state: 'loading' } | { state: 'ready', consents: Consents } | { state: 'failed', message: string }

const explain = (err: unknown, what: string): string => {
  const e = err as ApiError
  if (e.status === undefined) return `${what} needs a connection to the server. Try again once you are online.`
  if (e.status === 404 || e.status === 405 || e.status === 501) return `This server does not offer ${what.toLowerCase()} yet.`
  return `${what} failed: ${e.message}`
}

export function Privacy () {
  const { me } = useApp()
  const [load, setLoad] = useState<Load>({ state: 'loading' })
  const [round, setRound] = useState(0)
  const [saving, setSaving] = useState<string | null>(null)
  const [saved, setSaved] = useState<string | null>(null)
  const [saveError, setSaveError] = useState<string | null>(null)
  const [exporting, setExporting] = useState(false)
  const [exportNote, setExportNote] = useState<{ ok: boolean, text: string } | null>(null)

  useEffect(() => {
    let live = true
    setLoad({ state: 'loading' })
    getConsent(me).then(
      (consents) => { if (live) setLoad({ state: 'ready', consents }) },
      (err) => { if (live) setLoad({ state: 'failed', message: explain(err, 'Consent settings') }) }
    )
    return () => { live = false }
  }, [me, round])

  const change = async (purpose: string, granted: boolean) => {
    const before = load.state === 'ready' ? load.consents : {}
    // Shown at once (a switch that does not move when tapped looks broken), undone if refused.
    setLoad({ state: 'ready', consents: { ...before, [purpose]: granted } })
    setSaving(purpose)
    setSaved(null)
    setSaveError(null)
    try {
      const consents = await putConsent(me, { [purpose]: granted })
      setLoad({ state: 'ready', consents: { ...before, ...consents } })
      setSaved(purpose)
    } catch (err) {
      setLoad({ state: 'ready', consents: before })
      setSaveError(explain(err, 'Saving your choice'))
    } finally {
      setSaving(null)
    }
  }

  const exportData = async () => {
    setExporting(true)
    setExportNote(null)
    try {
      const zip = await fetchExport(me)
      download(`${me}-data-export.zip`, zip, 'application/zip')
      setExportNote({ ok: true, text: `Downloaded (${formatBytes(zip.size)}).` })
    } catch (err) {
      setExportNote({ ok: false, text: explain(err, 'The export') })
    } finally {
      setExporting(false)
    }
  }

  const consents = load.state === 'ready' ? load.consents : {}
  const purposes = [...new Set([...Object.keys(PURPOSES), ...Object.keys(consents)])]

  return (
    <div className='page privacy-page'>
      <header className='topbar'>
        <a className='icon-button' href='#/' aria-label='Back to home'><Icon name='back' /></a>
        <h1 className='page-title'>Privacy</h1>
      </header>
      <main className='privacy-main'>
        <section aria-labelledby='consent-h' className='panel'>
          <h2 id='consent-h'>What I allow</h2>
          <p className='muted'>
            Your journals and canvases are yours. Nothing you write is analysed unless you allow it here,
            and you can change your mind at any time: it applies from now on.
          </p>
          {load.state === 'loading' && <p className='muted' role='status'>Loading your choices…</p>}
          {load.state === 'failed' && (
            <div className='notice' role='alert'>
              <p>{load.message}</p>
              <button type='button' className='button' onClick={() => setRound((n) => n + 1)}>Try again</button>
            </div>
          )}
          {load.state === 'ready' && (
            <ul className='consents'>
              {purposes.map((purpose) => {
                const info = PURPOSES[purpose] ?? { label: purpose, detail: '' }
                const id = `consent-${purpose}`
                return (
                  <li key={purpose} className='consent'>
                    <input type='checkbox' role='switch' id={id} className='switch' checked={consents[purpose] === true}
                      disabled={saving !== null} aria-describedby={info.detail ? `${id}-detail` : undefined}
                      onChange={(e) => change(purpose, e.target.checked)} />
                    <label htmlFor={id} className='consent-text'>
                      <strong>{info.label}</strong>
                      {info.detail && <span id={`${id}-detail`} className='muted'>{info.detail}</span>}
                    </label>
                    <span className='consent-state' aria-live='polite'>
                      {consents[purpose] ? 'Allowed' : 'Not allowed'}{saving === purpose ? ' · saving…' : saved === purpose ? ' · saved' : ''}
                    </span>
                  </li>
                )
              })}
            </ul>
          )}
          {saveError && <p className='error' role='alert'>{saveError}</p>}
        </section>

        <section aria-labelledby='export-h' className='panel'>
          <h2 id='export-h'>My data</h2>
          <p className='muted'>
            Download a copy of everything the server keeps of yours: each journal and canvas you own (readable JSON and
            the raw document), who you shared them with, your choices above, and what you wrote in documents of others.
          </p>
          <button type='button' className='button primary' onClick={exportData} disabled={exporting}>
            <Icon name='download' size={18} />{exporting ? 'Preparing…' : 'Download my data'}
          </button>
          {exportNote && <p className={exportNote.ok ? 'ok' : 'error'} role={exportNote.ok ? 'status' : 'alert'}>{exportNote.text}</p>}
        </section>
      </main>
    </div>
  )
}

function formatBytes (n: number): string {
  if (n < 1024) return `${n} bytes`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`
  return `${(n / 1024 / 1024).toFixed(1)} MB`
}
