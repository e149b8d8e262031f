// What the clients of one load-generator process count; exported to the orchestrator as JSON
// (samples as base64 of a Float64Array of milliseconds: benchmarks/stats.py decodes them).

const MAX_ERRORS_KEPT = 50

export class Stats {
  constructor () {
    this.deviations = {} // protocol deviations seen, by kind
    this.closes = {} // close codes of unexpected closes
    this.errors = []
    this.reset()
  }

  /** Start of a run: the samples and counters of a measurement window (not the findings). */
  reset () {
    this.latencies = [] // writer's transaction -> this replica applied it, ms
    this.loopLag = [] // oversleep of a 10 ms timer, ms
    this.delivered = 0 // writer updates that reached a replica (merged ones included)
    this.merged = 0 // of those, updates that arrived folded into a later one (no sample)
    this.updateFrames = 0
    this.awarenessFrames = 0
    this.syncStatusFrames = 0
    this.firstRecv = 0 // monotonic ms
    this.lastRecv = 0
  }

  count (field, key) {
    this[field][key] = (this[field][key] ?? 0) + 1
  }

  deviation (what) {
    this.count('deviations', what)
  }

  error (text) {
    if (this.errors.length < MAX_ERRORS_KEPT) this.errors.push(text)
  }

  export () {
    return {
      latencies_ms: packFloats(this.latencies),
      loop_lag_ms: packFloats(this.loopLag),
      delivered: this.delivered,
      merged: this.merged,
      update_frames: this.updateFrames,
      awareness_frames: this.awarenessFrames,
      sync_status_frames: this.syncStatusFrames,
      first_recv_s: this.firstRecv / 1e3,
      last_recv_s: this.lastRecv / 1e3,
      deviations: { ...this.deviations },
      closes: { ...this.closes },
      errors: [...this.errors]
    }
  }
}

const packFloats = (values) => Buffer.from(Float64Array.from(values).buffer).toString('base64')
