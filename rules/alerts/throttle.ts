/**
 * The per-rule cap on notifications: a token bucket per rule holding `perMinute` tokens, refilled
 * evenly over a minute (so a rule may send a burst of `perMinute` at once, then one every
 * 60/perMinute seconds). A notification without a token waits here, in order, and goes out as
 * tokens come back; while a rule has notifications waiting, new ones wait behind them.
 *
 * Waiting is bounded: a newer version of a waiting message replaces it, and past
 * `maxHeldPerRule` a notification is folded into the oldest waiting one of the same fingerprint
 * (else of the same rule) with the same state — its events become "more like this" there, and
 * nothing is dropped. Telegram's own limits (per chat, per group, overall) are the Telegram
 * notifier's business; this cap is about one noisy rule not drowning the others.
 */
import type { Millis } from '../model'
import { foldNotification } from './group'
import type { Outgoing } from './outbox'

export interface ThrottleOptions {
  /** Notifications per rule per minute; 0 or less: no cap. */
  perMinute: number
  /** Notifications kept waiting per rule before they are folded together. */
  maxHeldPerRule: number
}

interface Bucket {
  tokens: number
  /** When `tokens` was last brought up to date. */
  at: Millis
}

export interface ThrottleState {
  buckets: Array<{ ruleId: string; tokens: number; at: Millis }>
  held: Array<{ ruleId: string; waiting: Outgoing[] }>
}

/** `later` folded into `earlier` (see foldNotification); a newer version of the same message keeps the newer revision. */
export function foldOutgoing(earlier: Outgoing, later: Outgoing): Outgoing {
  const same = earlier.notification.id === later.notification.id
  return { notification: foldNotification(earlier.notification, later.notification), revision: same ? Math.max(earlier.revision, later.revision) : earlier.revision }
}

export class RuleThrottle {
  private readonly perMinute: number
  private readonly maxHeld: number
  private readonly buckets = new Map<string, Bucket>()
  /** Per rule, waiting notifications by message id, oldest first. */
  private readonly held = new Map<string, Map<string, Outgoing>>()
  private foldedCount = 0

  constructor(opts: ThrottleOptions) {
    this.perMinute = opts.perMinute
    this.maxHeld = Math.max(1, opts.maxHeldPerRule)
  }

  /** Notifications waiting for a token, all rules together. */
  get waiting(): number {
    let n = 0
    for (const q of this.held.values()) n += q.size
    return n
  }

  /** Notifications folded into another waiting one because `maxHeldPerRule` was reached (since start). */
  get folded(): number {
    return this.foldedCount
  }

  /** `out` when it may go now; undefined when it waits (it comes back from `release`). */
  offer(out: Outgoing, now: Millis): Outgoing | undefined {
    if (this.perMinute <= 0) return out
    const ruleId = out.notification.ruleId
    const queue = this.held.get(ruleId)
    if (queue === undefined && this.take(ruleId, now)) return out
    this.hold(ruleId, queue, out)
    return undefined
  }

  /** Waiting notifications that got a token by `now`, oldest first per rule. */
  release(now: Millis): Outgoing[] {
    const out: Outgoing[] = []
    for (const [ruleId, queue] of this.held) {
      for (const [id, waiting] of queue) {
        if (!this.take(ruleId, now)) break
        queue.delete(id)
        out.push(waiting)
      }
      if (queue.size === 0) this.held.delete(ruleId)
    }
    this.forgetFull(now)
    return out
  }

  exportState(): ThrottleState {
    return {
      buckets: [...this.buckets].map(([ruleId, b]) => ({ ruleId, tokens: b.tokens, at: b.at })),
      held: [...this.held].map(([ruleId, queue]) => ({ ruleId, waiting: [...queue.values()] }))
    }
  }

  importState(state: ThrottleState): void {
    this.buckets.clear()
    this.held.clear()
    for (const b of state.buckets) this.buckets.set(b.ruleId, { tokens: b.tokens, at: b.at })
    for (const { ruleId, waiting } of state.held) {
      const queue = new Map<string, Outgoing>()
      this.held.set(ruleId, queue)
      for (const out of waiting) this.hold(ruleId, queue, out)
    }
  }

  private take(ruleId: string, now: Millis): boolean {
    let bucket = this.buckets.get(ruleId)
    if (bucket === undefined) {
      bucket = { tokens: this.perMinute, at: now }
      this.buckets.set(ruleId, bucket)
    } else if (now > bucket.at) {
      bucket.tokens = Math.min(this.perMinute, bucket.tokens + (now - bucket.at) * this.perMinute / 60_000)
      bucket.at = now
    }
    if (bucket.tokens < 1) return false
    bucket.tokens--
    return true
  }

  private hold(ruleId: string, existing: Map<string, Outgoing> | undefined, out: Outgoing): void {
    let queue = existing
    if (queue === undefined) {
      queue = new Map()
      this.held.set(ruleId, queue)
    }
    const id = out.notification.id
    const same = queue.get(id)
    if (same !== undefined) {
      queue.set(id, foldOutgoing(same, out))
      return
    }
    if (queue.size >= this.maxHeld) {
      const into = oldestLike(queue, out)
      if (into !== undefined) {
        queue.set(into.notification.id, foldOutgoing(into, out))
        this.foldedCount++
        return
      }
    }
    queue.set(id, out)
  }

  /** A full bucket of a rule with nothing waiting is the same as no bucket: keeps the map small. */
  private forgetFull(now: Millis): void {
    for (const [ruleId, b] of this.buckets) {
      if (this.held.has(ruleId)) continue
      if (b.tokens + (now - b.at) * this.perMinute / 60_000 >= this.perMinute) this.buckets.delete(ruleId)
    }
  }
}

/** The oldest waiting notification of the same fingerprint and state, else of the same state. */
function oldestLike(queue: Map<string, Outgoing>, out: Outgoing): Outgoing | undefined {
  let sameState: Outgoing | undefined
  for (const waiting of queue.values()) {
    if (waiting.notification.state !== out.notification.state) continue
    if (waiting.notification.fingerprint === out.notification.fingerprint) return waiting
    sameState ??= waiting
  }
  return sameState
}
