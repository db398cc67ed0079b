/**
 * A bounded set of values with when each was first and last seen and how often: the memory of
 * `new_value` rules and of the exception history. Bounded twice: values not seen for
 * `forgetAfter` are forgotten, and past `maxSize` the least recently seen value is evicted (and
 * counted, so status can say the set is too small for the traffic).
 *
 * The Map keeps values roughly in least-recently-seen order, so forgetting and eviction take from
 * its front instead of scanning. Moving a value to the back on every sighting would cost a
 * delete and an insert per entry; it is moved only when its last sighting has advanced by a
 * 64th of `forgetAfter`, which keeps the order right to within that slack.
 */
import type { Millis } from '../model'

export interface SeenStats {
  first: Millis
  last: Millis
  count: number
  /** `last` when the value was last moved to the back of the order. */
  ordered: Millis
}

/** The exported form: [value, first, last, count], least recently seen first. */
export type SeenRecord = [string, number, number, number]

export class SeenSet {
  private readonly map = new Map<string, SeenStats>()
  private readonly slack: Millis
  /** Values evicted because the set was full (not those forgotten for being quiet). */
  evicted = 0

  constructor(readonly maxSize: number, readonly forgetAfter: Millis) {
    this.slack = Math.max(1, Math.floor(forgetAfter / 64))
  }

  get size(): number {
    return this.map.size
  }

  get(value: string): SeenStats | undefined {
    return this.map.get(value)
  }

  /**
   * Records a sighting of `value` at `t` and returns when it was last seen before, or NaN when it
   * is new (or was forgotten). Allocates only for a new value.
   */
  see(value: string, t: Millis): Millis {
    const stats = this.map.get(value)
    if (stats === undefined) {
      if (this.map.size >= this.maxSize) this.evictOldest()
      this.map.set(value, { first: t, last: t, count: 1, ordered: t })
      return NaN
    }
    const previous = stats.last
    stats.count++
    if (t > stats.last) stats.last = t
    if (stats.last - stats.ordered >= this.slack) {
      this.map.delete(value)
      stats.ordered = stats.last
      this.map.set(value, stats)
    }
    return previous
  }

  /** Forgets values not seen since `now - forgetAfter`. */
  prune(now: Millis): void {
    const cutoff = now - this.forgetAfter
    for (const [value, stats] of this.map) {
      if (stats.ordered > cutoff) break
      this.map.delete(value)
      if (stats.last > cutoff) {
        // Seen within the slack after it was last ordered: it belongs further back.
        stats.ordered = stats.last
        this.map.set(value, stats)
      }
    }
  }

  private evictOldest(): void {
    const oldest = this.map.keys().next()
    if (oldest.done !== true) {
      this.map.delete(oldest.value)
      this.evicted++
    }
  }

  export(): SeenRecord[] {
    const out: SeenRecord[] = []
    for (const [value, s] of this.map) out.push([value, s.first, s.last, s.count])
    return out
  }

  /** Restores exported records (skipping malformed ones), keeping the bounds. */
  import(records: unknown): void {
    this.map.clear()
    if (!Array.isArray(records)) return
    for (const r of records) {
      if (!Array.isArray(r) || r.length !== 4 || typeof r[0] !== 'string') continue
      const [value, first, last, count] = r as [string, unknown, unknown, unknown]
      if (typeof first !== 'number' || typeof last !== 'number' || typeof count !== 'number') continue
      if (this.map.size >= this.maxSize) this.evictOldest()
      this.map.set(value, { first, last, count, ordered: last })
    }
  }
}
