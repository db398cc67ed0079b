/**
 * Sliding-window counting shared by frequency, ratio and flatline absence rules, per group key.
 *
 * Memory is bounded on both axes:
 *   - per group, counts are kept in time buckets (a window is cut into about 60), not as a list
 *     of timestamps: a burst of a million matches costs one bucket. Only non-empty buckets are
 *     stored, so a group that saw two matches holds two buckets.
 *   - per rule, at most `maxGroups` group keys; matches of further keys are folded into one
 *     overflow group (its group-key values read `(other)`) and counted in `overflowed`, so a
 *     flood of distinct keys (a scan from many addresses) still counts and can still fire.
 *
 * A count "in the window" at time T covers the buckets from the one holding T - window up to the
 * one holding T: at least the whole window and at most one bucket (1/60 of it) more. Erring on
 * the long side means a burst that truly fits in the window is never missed.
 */
import type { FieldValue } from '../../agent/entry'
import type { Millis } from '../model'

export const BUCKETS_PER_WINDOW = 60
export const OVERFLOW_KEY = '\u0000overflow'
export const OVERFLOW_VALUE = '(other)'
/** Separates group-key values inside a group key string. */
export const KEY_SEPARATOR = '\u001f'

/** One group's counts and the alert state the clearable rule types keep beside them. */
export interface WindowGroup {
  key: string
  /** The group-by values, in the order of the rule's `group_by`. */
  values: string[]
  /** Bucket numbers (time / bucket size), ascending; only buckets with a count. */
  buckets: number[]
  /** `lanes` counts per bucket, flattened. */
  counts: number[]
  /** The sum of each lane over `buckets`. */
  totals: number[]
  /** When the group was first seen (flatline rules wait one window from here before firing). */
  since: Millis
  firing: boolean
  /** Id of the event that started the current firing episode: resolved and repeated events derive theirs from it. */
  episode: string
  /** When a firing event was last emitted for the episode. */
  lastEmit: Millis
  /** Repeated firing events emitted in the episode. */
  repeats: number
  /** Redacted key fields for messages (the entry that fired, or the first of a flatline group). */
  fields: Record<string, FieldValue>
}

/** A group as exported into the checkpoint. */
export interface WindowGroupState {
  k: string
  v: string[]
  b: number[]
  c: number[]
  s: Millis
  f?: { e: string; l: Millis; r: number }
  x: Record<string, FieldValue>
}

export class GroupWindows {
  readonly bucketMs: Millis
  /** Buckets kept behind the current one. */
  private readonly span: number
  private readonly groups = new Map<string, WindowGroup>()
  /** Matches folded into the overflow group because `maxGroups` keys were already tracked. */
  overflowed = 0
  /** The group the last call to `group` returned (still in `groups`). */
  private lastGroup: WindowGroup | undefined

  constructor(readonly windowMs: Millis, readonly lanes: number, readonly maxGroups: number, private readonly groupBy: readonly string[]) {
    this.bucketMs = Math.max(1, Math.ceil(windowMs / BUCKETS_PER_WINDOW))
    this.span = Math.ceil(windowMs / this.bucketMs)
  }

  get size(): number {
    return this.groups.size
  }

  all(): IterableIterator<WindowGroup> {
    return this.groups.values()
  }

  /**
   * The group for a key, created (with `since = t`) when new; past `maxGroups` new keys land in
   * the overflow group.
   */
  group(key: string, t: Millis): WindowGroup {
    // Consecutive entries mostly fall in the same group (one service, one host): no lookup then.
    const last = this.lastGroup
    if (last !== undefined && last.key === key) return last
    const found = this.groups.get(key)
    if (found !== undefined) {
      this.lastGroup = found
      return found
    }
    if (this.groups.size >= this.maxGroups && key !== OVERFLOW_KEY) {
      this.overflowed++
      return this.group(OVERFLOW_KEY, t)
    }
    const values = key === OVERFLOW_KEY ? this.groupBy.map(() => OVERFLOW_VALUE) : splitKey(key, this.groupBy.length)
    const g: WindowGroup = {
      key, values, buckets: [], counts: [], totals: new Array<number>(this.lanes).fill(0),
      since: t, firing: false, episode: '', lastEmit: 0, repeats: 0, fields: {},
    }
    this.groups.set(key, g)
    this.lastGroup = g
    return g
  }

  delete(g: WindowGroup): void {
    this.groups.delete(g.key)
    if (this.lastGroup === g) this.lastGroup = undefined
  }

  /** Adds `n` to `lane` at time t. An entry older than the window behind the group's newest one is not counted. */
  add(g: WindowGroup, t: Millis, lane: number, n = 1): void {
    const b = Math.floor(t / this.bucketMs)
    const last = g.buckets.length - 1
    if (last === -1 || b > g.buckets[last]!) {
      this.expireBuckets(g, b)
      g.buckets.push(b)
      for (let l = 0; l < this.lanes; l++) g.counts.push(l === lane ? n : 0)
      g.totals[lane]! += n
      return
    }
    // Same bucket as the newest (the usual case), or a late entry: find its bucket from the end.
    if (b < g.buckets[last]! - this.span) return
    let i = last
    while (i >= 0 && g.buckets[i]! > b) i--
    if (i >= 0 && g.buckets[i] === b) {
      g.counts[i * this.lanes + lane]! += n
      g.totals[lane]! += n
      return
    }
    g.buckets.splice(i + 1, 0, b)
    const row = new Array<number>(this.lanes).fill(0)
    row[lane] = n
    g.counts.splice((i + 1) * this.lanes, 0, ...row)
    g.totals[lane]! += n
  }

  /** Drops the buckets that have left the window at time `now`. */
  expire(g: WindowGroup, now: Millis): void {
    this.expireBuckets(g, Math.floor(now / this.bucketMs))
  }

  private expireBuckets(g: WindowGroup, current: number): void {
    const oldest = current - this.span
    let drop = 0
    while (drop < g.buckets.length && g.buckets[drop]! < oldest) {
      for (let l = 0; l < this.lanes; l++) g.totals[l]! -= g.counts[drop * this.lanes + l]!
      drop++
    }
    if (drop > 0) {
      g.buckets.splice(0, drop)
      g.counts.splice(0, drop * this.lanes)
    }
  }

  /** True when nothing of the group is in the window any more. */
  empty(g: WindowGroup): boolean {
    return g.buckets.length === 0
  }

  export(): WindowGroupState[] {
    const out: WindowGroupState[] = []
    for (const g of this.groups.values()) {
      const s: WindowGroupState = { k: g.key, v: g.values, b: g.buckets, c: g.counts, s: g.since, x: g.fields }
      if (g.firing) s.f = { e: g.episode, l: g.lastEmit, r: g.repeats }
      out.push(s)
    }
    return out
  }

  /** Restores exported groups; malformed ones are skipped, the group bound is kept. */
  import(state: unknown): void {
    this.groups.clear()
    this.lastGroup = undefined
    if (!Array.isArray(state)) return
    for (const item of state as unknown[]) {
      const s = item as Partial<WindowGroupState> | null
      if (s === null || typeof s !== 'object' || typeof s.k !== 'string' || !Array.isArray(s.b) || !Array.isArray(s.c) ||
          !Array.isArray(s.v) || s.c.length !== s.b.length * this.lanes || typeof s.s !== 'number') continue
      if (this.groups.size >= this.maxGroups && s.k !== OVERFLOW_KEY) continue
      const totals = new Array<number>(this.lanes).fill(0)
      for (let i = 0; i < s.c.length; i++) totals[i % this.lanes]! += s.c[i]!
      const g: WindowGroup = {
        key: s.k, values: s.v.map(String), buckets: s.b.slice(), counts: s.c.slice(), totals,
        since: s.s, firing: s.f !== undefined, episode: s.f?.e ?? '', lastEmit: s.f?.l ?? 0, repeats: s.f?.r ?? 0,
        fields: s.x !== null && typeof s.x === 'object' ? s.x : {},
      }
      this.groups.set(g.key, g)
    }
  }
}

/** The values of a group key string (see groupKeyOf in runtime.ts). */
export function splitKey(key: string, n: number): string[] {
  if (n === 0) return []
  if (n === 1) return [key]
  return key.split(KEY_SEPARATOR)
}

/**
 * What the windowed rule types (frequency, ratio, flatline) share: their state is their group
 * windows, saved and restored the same way.
 */
export abstract class WindowedRuntime {
  protected abstract readonly windows: GroupWindows

  exportState(): unknown {
    return { groups: this.windows.export(), overflowed: this.windows.overflowed }
  }

  importState(state: unknown): void {
    const s = state as { groups?: unknown; overflowed?: unknown } | null
    this.windows.import(s?.groups)
    if (typeof s?.overflowed === 'number') this.windows.overflowed = s.overflowed
  }

  size(): number {
    return this.windows.size
  }

  overflowed(): number {
    return this.windows.overflowed
  }
}
