// A minimal event emitter (browser and Node alike).
export class Emitter {
  constructor () {
    this._listeners = new Map()
  }

  on (event, fn) {
    if (!this._listeners.has(event)) this._listeners.set(event, new Set())
    this._listeners.get(event).add(fn)
    return () => this.off(event, fn)
  }

  off (event, fn) {
    this._listeners.get(event)?.delete(fn)
  }

  emit (event, args = []) {
    for (const fn of [...(this._listeners.get(event) ?? [])]) {
      try {
        fn(...args)
      } catch (err) {
        console.error(`syncd-client: a "${event}" listener failed`, err)
      }
    }
  }
}
