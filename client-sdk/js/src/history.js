// A document's history over the HTTP API (DESIGN.md §1.10): versions, their content, restore,
// activity. Reached through `client.history(name)`; the same access rules as reading (GET) and
// writing (POST) the document apply, and errors carry the HTTP `status`.
//
//   const history = client.history('alice/board')
//   const { id } = await history.checkpoint('Before the workshop')
//   const versions = await history.versions()          // newest first
//   const view = await history.stateJSON(id)            // canvas/1 or journal/1 JSON
//   await history.restore(id)                           // a forward edit: live clients get it

export class DocumentHistory {
  constructor (client, name) {
    this.client = client
    this.name = name
    this._base = `/v1/docs/${name}`
  }

  /** `[{id, name, kind: 'named' | 'auto', seq, created_at, created_by}]`, newest first. */
  async versions () {
    return (await this._json('GET', '/versions')).versions
  }

  /** A named version of the document as it is now (owner, editors, services, admins). */
  async checkpoint (name) {
    return this._json('POST', '/versions', { name })
  }

  /** The document at version `vid`, as its JSON view (read-only: nothing is applied). */
  async stateJSON (vid) {
    const response = await this.client._http('GET', `${this._base}/versions/${encodeURIComponent(vid)}/state`,
      undefined, [], { accept: 'application/json' })
    return response.json()
  }

  /** The document at version `vid` as one Yjs update. */
  async state (vid) {
    const response = await this.client._http('GET', `${this._base}/versions/${encodeURIComponent(vid)}/state`)
    return new Uint8Array(await response.arrayBuffer())
  }

  /** Make the document's content equal to version `vid` by a forward edit; `{seq}`. */
  async restore (vid) {
    return this._json('POST', `/versions/${encodeURIComponent(vid)}/restore`)
  }

  /** Delete a named version. */
  async deleteVersion (vid) {
    await this.client._http('DELETE', `${this._base}/versions/${encodeURIComponent(vid)}`)
  }

  /** `[{seq, at, principal, origin, changes}]`: who did what, optionally filtered. */
  async activity ({ since, until, principal } = {}) {
    const query = new URLSearchParams()
    if (since) query.set('since', since instanceof Date ? since.toISOString() : since)
    if (until) query.set('until', until instanceof Date ? until.toISOString() : until)
    if (principal) query.set('principal', principal)
    const suffix = query.toString() ? `?${query}` : ''
    return (await this._json('GET', `/activity${suffix}`)).activity
  }

  /** Undo what `principal` inserted, changed and deleted between `since` and `until`; `{seq}`. */
  async rollback ({ principal, since, until }) {
    const iso = (t) => (t instanceof Date ? t.toISOString() : t)
    return this._json('POST', '/rollback', { principal, since: iso(since), until: iso(until) })
  }

  async _json (method, path, body) {
    return (await this.client._http(method, this._base + path, body)).json()
  }
}
