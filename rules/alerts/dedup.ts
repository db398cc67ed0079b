/**
 * Deduplication, per fingerprint, and the memory of event ids already seen.
 *
 * The `realert` window: a fingerprint's first message opens a window of `realert` ms. What the
 * fingerprint brings during the window is counted into that message, which is updated in
 * place (edited, at most once per `group_interval`, see group.ts) instead of a new message being
 * posted: a chat sees one message per fingerprint per window, whose count keeps up. The first
 * batch after the window posts a new message and opens the next window, which grows by
 * `realert_backoff` (up to `realert_max`) when the alert kept firing: the last window had
 * updates and the new message comes less than one window length after it ended. A fingerprint
 * quiet for that long starts again from `realert`.
 *
 * Windows are timed by the pipeline's clock, not by the events' own times: a replay of old log
 * lines must not reopen windows that ended long ago in log time.
 *
 * Memory is bounded by `maxFingerprints`: past it the least recently active fingerprint is
 * forgotten (if it fires again, it posts a new message sooner than its window would have let it).
 */
import type { Millis, RuleBase } from '../model'

export type DedupPolicy = Pick<RuleBase, 'realert' | 'realert_backoff' | 'realert_max'>

/**
 * The length of a window after `streak` windows in a row that kept firing. Growth needs both a
 * factor above 1 and a cap (`realert_max` at or above `realert`); without a cap the window keeps
 * its length, as unbounded growth would silence an alert for good.
 */
export function windowLength(policy: DedupPolicy, streak: number): Millis {
  if (policy.realert <= 0) return 0
  if (policy.realert_backoff <= 1 || policy.realert_max <= policy.realert) return policy.realert
  // Capped before exponentiating too far: 2^1000 is Infinity, and the cap is reached long before.
  const grown = policy.realert * policy.realert_backoff ** Math.min(streak, 64)
  return Math.min(policy.realert_max, grown)
}

/** One fingerprint's window, as kept and checkpointed. */
export interface DedupWindowState {
  fingerprint: string
  /** The message of this window: updates in the window edit it. */
  notificationId: string
  start: Millis
  end: Millis
  /** Windows in a row before this one that kept firing (0: the first). */
  streak: number
  /** Updates sent in this window after its first message. */
  updates: number
  /** Matches in this window (sum of the events' counts). */
  total: number
  /** Events in this window after the first. */
  more: number
  /** Time of the window's first event. */
  firstAt: Millis
}

/** What one batch of a fingerprint is, within its windows. */
export interface DedupVerdict {
  /** `post`: a new message (and a new window); `update`: the same message, with new counts. */
  kind: 'post' | 'update'
  notificationId: string
  /** 0 for the post, then 1, 2, ... for each update of the same message. */
  revision: number
  /** Totals for the window so far, this batch included. */
  total: number
  more: number
  firstAt: Millis
}

/** A batch, as dedup sees it. */
export interface DedupBatch {
  fingerprint: string
  /** The id its message gets if it is a post (derived from its first event). */
  notificationId: string
  more: number
  total: number
  firstAt: Millis
}

export interface DedupOptions {
  maxFingerprints: number
}

export class DedupWindows {
  private readonly max: number
  /** In order of last activity: the first is the first forgotten. */
  private readonly windows = new Map<string, DedupWindowState>()
  /** Message ids that can no longer be updated since the last `drainForgotten`. */
  private forgotten: string[] = []
  /** No window is due to be forgotten before this: `prune` costs nothing until then. */
  private nextPrune = Infinity

  constructor(opts: DedupOptions) {
    this.max = Math.max(1, opts.maxFingerprints)
  }

  get size(): number {
    return this.windows.size
  }

  decide(batch: DedupBatch, now: Millis, policy: DedupPolicy): DedupVerdict {
    const w = this.windows.get(batch.fingerprint)
    if (w !== undefined && now < w.end) {
      w.updates++
      w.total += batch.total
      w.more += 1 + batch.more
      this.touch(w)
      return { kind: 'update', notificationId: w.notificationId, revision: w.updates, total: w.total, more: w.more, firstAt: w.firstAt }
    }
    let streak = 0
    if (w !== undefined) {
      if (w.updates > 0 && now < w.end + (w.end - w.start)) streak = w.streak + 1
      this.forgotten.push(w.notificationId)
    }
    const length = windowLength(policy, streak)
    const next: DedupWindowState = {
      fingerprint: batch.fingerprint, notificationId: batch.notificationId, start: now, end: now + length, streak,
      updates: 0, total: batch.total, more: batch.more, firstAt: batch.firstAt
    }
    this.touch(next)
    return { kind: 'post', notificationId: next.notificationId, revision: 0, total: next.total, more: next.more, firstAt: next.firstAt }
  }

  /** Ends the fingerprint's episode (it resolved): the next firing posts at once and starts from `realert`. */
  close(fingerprint: string): DedupWindowState | undefined {
    const w = this.windows.get(fingerprint)
    if (w === undefined) return undefined
    this.windows.delete(fingerprint)
    this.forgotten.push(w.notificationId)
    return w
  }

  /**
   * Forgets windows that ended more than one window length ago (past the point where they could
   * make the next window grow).
   */
  prune(now: Millis): void {
    if (now < this.nextPrune) return
    let next = Infinity
    for (const w of this.windows.values()) {
      const forgetAt = w.end + (w.end - w.start)
      if (now >= forgetAt) {
        this.windows.delete(w.fingerprint)
        this.forgotten.push(w.notificationId)
      } else if (forgetAt < next) {
        next = forgetAt
      }
    }
    this.nextPrune = next
  }

  /** Message ids no window refers to any more (their messages will not be edited again). */
  drainForgotten(): string[] {
    const out = this.forgotten
    this.forgotten = []
    return out
  }

  exportState(): DedupWindowState[] {
    return [...this.windows.values()].map((w) => ({ ...w }))
  }

  importState(windows: DedupWindowState[]): void {
    this.windows.clear()
    this.forgotten = []
    this.nextPrune = Infinity
    for (const w of windows.slice(-this.max)) this.track({ ...w })
  }

  private track(w: DedupWindowState): void {
    this.windows.set(w.fingerprint, w)
    const forgetAt = w.end + (w.end - w.start)
    if (forgetAt < this.nextPrune) this.nextPrune = forgetAt
  }

  private touch(w: DedupWindowState): void {
    this.windows.delete(w.fingerprint)
    this.track(w)
    if (this.windows.size > this.max) {
      for (const oldest of this.windows.values()) {
        this.windows.delete(oldest.fingerprint)
        this.forgotten.push(oldest.notificationId)
        break
      }
    }
  }
}

/**
 * The ids of the last `capacity` events processed. After a restart, entries read between the
 * last acknowledged offset and the point the alert state was saved at are read again; their
 * events carry the same ids (derived from the entry's position) and are recognised here.
 */
export class RecentIds {
  private readonly capacity: number
  /** A Set iterates in insertion order: its first element is the oldest. */
  private readonly ids = new Set<string>()

  constructor(capacity: number) {
    this.capacity = Math.max(1, capacity)
  }

  /** Remembers `id`; false when it was already known. */
  add(id: string): boolean {
    if (this.ids.has(id)) return false
    this.ids.add(id)
    if (this.ids.size > this.capacity) {
      for (const oldest of this.ids) {
        this.ids.delete(oldest)
        break
      }
    }
    return true
  }

  exportState(): string[] {
    return [...this.ids]
  }

  importState(ids: string[]): void {
    this.ids.clear()
    for (const id of ids.slice(-this.capacity)) this.ids.add(id)
  }
}
