/**
 * The outbox: every notification is stored here before it is sent, and removed only once its
 * notifier said it was delivered. The whole outbox is part of the pipeline's exported state,
 * which the agent checkpoints with the file offsets, so an outage (or a restart during one)
 * delivers everything afterwards.
 *
 * One record per message per notifier: a route with two notifiers makes two records, delivered
 * (and failing) independently, in lanes named `route/notifier`. A newer version of a message
 * (an update in its dedup window) is merged into the message's record, whatever its state: if
 * the record is being sent, it is sent again afterwards, as an edit of what just arrived. So a
 * message that waited out an outage arrives once, with its latest counts.
 *
 * States: `pending` → `sending` → removed, or `failed` (retryable: tried again after a backoff,
 * or Telegram's retry_after), or `blocked` (the notifier says trying again cannot help — bot
 * blocked, chat not found, no notifier for the route; it stays, shown in status, until the
 * configuration changes: `unblock`). A retryable failure pauses the whole lane, since the next
 * message to the same place would fail the same way; after the pause one message probes, and
 * its success lets the rest follow.
 *
 * Bounded: past `maxPerLane` records, the two oldest records of one fingerprint are merged
 * (counts summed), else the two oldest of one rule with the same state — never dropped. Records
 * being sent are not merged, and blocked ones only with blocked ones.
 *
 * Edits are decided when a record is sent, not when it is stored: a record whose message was
 * delivered before (its message ids are known) is sent with `edit`, so updates of a message that
 * waited out an outage still edit the right message once it exists.
 */
import { backoffDelay } from '../../transports/elasticsearch/backoff'
import type { DeliveryResult, Millis, Notification } from '../model'
import { foldNotification } from './group'

/** A notification on its way out, with its place in its message's history (0 = the first post). */
export interface Outgoing {
  notification: Notification
  revision: number
}

export type DeliveryState = 'pending' | 'sending' | 'failed' | 'blocked'

export interface OutboxRecord {
  /** `route/notifier/notification id`. */
  key: string
  route: string
  notifier: string
  /** Without `edit`: that is decided at each attempt. */
  notification: Notification
  /** The latest revision merged into this record. */
  revision: number
  state: DeliveryState
  /** Attempts made so far. */
  attempts: number
  /** The last failure, in plain words (for failed and blocked). */
  error?: string
  /** For failed: when the next attempt may be made. */
  nextAttemptAt?: Millis
  queuedAt: Millis
  /** Bumped when the content changes; an answer for an older version leaves the record to be sent again. */
  version: number
  /** While sending: when the attempt started. */
  sendingSince?: Millis
}

/** What happened to a record, for `onDelivery` (the alerts index, logs). */
export type ReportState = 'queued' | 'merged' | 'delivered' | 'failed' | 'blocked'

export interface DeliveryReport {
  /**
   * Deterministic, for the alerts index: the record key, the revision and the attempt, and what
   * happened — the same history replayed makes the same ids.
   */
  id: string
  key: string
  route: string
  notifier: string
  notification: Notification
  revision: number
  state: ReportState
  attempts: number
  error?: string
  nextAttemptAt?: Millis
  /** For delivered: the message ids the notifier answered with. */
  messageIds: Record<string, number>
  /** For delivered: the attempt was an edit of an earlier message. */
  edit: boolean
  /** For merged: the record it was folded into. */
  mergedInto?: string
  at: Millis
}

/** One attempt, handed to the notifier. */
export interface Dispatch {
  key: string
  route: string
  notifier: string
  /** With `edit` when the message was delivered before. */
  notification: Notification
  /** The revision on its way (later ones may be merged into the record meanwhile). */
  revision: number
  attempt: number
  version: number
}

export interface OutboxOptions {
  /** Records per lane (route and notifier) before the oldest are merged. */
  maxPerLane: number
  /** Attempts in flight per lane; 1 keeps the order of messages in a chat. */
  concurrency: number
  /** Backoff bounds after retryable failures (ms). */
  retryInitial: Millis
  retryMax: Millis
  /** An attempt with no answer after this long counts as a retryable failure (ms). */
  sendTimeout: Millis
  /** Delivered messages whose ids are remembered for edits. */
  maxMessages: number
  /** For the backoff's jitter; tests pass a fixed one. */
  random?: () => number
}

export interface OutboxRecordState {
  route: string
  notifier: string
  notification: Notification
  revision: number
  state: Exclude<DeliveryState, 'sending'>
  attempts: number
  error?: string
  nextAttemptAt?: Millis
  queuedAt: Millis
}

export interface OutboxState {
  lanes: Array<{ route: string; notifier: string; resumeAt: Millis; failures: number }>
  records: OutboxRecordState[]
  /** Message ids of delivered messages that may still be edited. */
  messages: Array<{ route: string; notifier: string; notificationId: string; messageIds: Record<string, number> }>
}

interface Lane {
  key: string
  route: string
  notifier: string
  /** By notification id, oldest first. */
  records: Map<string, OutboxRecord>
  inFlight: number
  /** Nothing is sent before this time (after a retryable failure). */
  resumeAt: Millis
  /** Retryable failures in a row. */
  failures: number
}

const laneKeyOf = (route: string, notifier: string): string => `${route}/${notifier}`
const messageKeyOf = (lane: string, notificationId: string): string => lane + '\u0000' + notificationId

export class Outbox {
  private readonly opts: OutboxOptions
  private readonly report: (r: DeliveryReport) => void
  private readonly lanes = new Map<string, Lane>()
  /** Message ids of delivered messages, least recently used first. */
  private readonly messages = new Map<string, Record<string, number>>()

  constructor(opts: OutboxOptions, report: (r: DeliveryReport) => void) {
    this.opts = opts
    this.report = report
  }

  /** Stores a notification for one notifier of its route; `blocked` stores it blocked with that error. */
  put(route: string, notifier: string, out: Outgoing, now: Millis, blocked?: string): void {
    const lane = this.lane(route, notifier)
    const id = out.notification.id
    const existing = lane.records.get(id)
    if (existing !== undefined) {
      existing.notification = foldNotification(existing.notification, out.notification)
      existing.revision = Math.max(existing.revision, out.revision)
      existing.version++
      if (blocked !== undefined) this.setBlocked(existing, blocked)
      this.emit(existing, existing.state === 'blocked' ? 'blocked' : 'queued', now, { revision: out.revision })
      return
    }
    const record: OutboxRecord = {
      key: `${lane.key}/${id}`, route, notifier, notification: out.notification, revision: out.revision,
      state: 'pending', attempts: 0, queuedAt: now, version: 0
    }
    if (blocked !== undefined) this.setBlocked(record, blocked)
    lane.records.set(id, record)
    this.emit(record, record.state === 'blocked' ? 'blocked' : 'queued', now)
    if (lane.records.size > this.opts.maxPerLane) this.shrink(lane, now)
  }

  /** Attempts to make now, marked as sending. */
  ready(now: Millis): Dispatch[] {
    const out: Dispatch[] = []
    for (const lane of this.lanes.values()) {
      if (lane.resumeAt > now) continue
      // After failures, one attempt probes; the others wait for its answer.
      const limit = lane.failures > 0 ? 1 : Math.max(1, this.opts.concurrency)
      for (const record of lane.records.values()) {
        if (lane.inFlight >= limit) break
        const due = record.state === 'pending' || (record.state === 'failed' && (record.nextAttemptAt ?? 0) <= now)
        if (!due) continue
        record.state = 'sending'
        record.attempts++
        record.sendingSince = now
        lane.inFlight++
        const ids = this.messages.get(messageKeyOf(lane.key, record.notification.id))
        const notification: Notification = ids === undefined ? record.notification : { ...record.notification, edit: { messageIds: { ...ids } } }
        out.push({ key: record.key, route: lane.route, notifier: lane.notifier, notification, revision: record.revision, attempt: record.attempts, version: record.version })
      }
    }
    return out
  }

  /** The notifier's answer to an attempt (possibly late: after a timeout gave up on it). */
  settle(d: Dispatch, result: DeliveryResult, now: Millis): void {
    const lane = this.lanes.get(laneKeyOf(d.route, d.notifier))
    if (lane === undefined) return
    const id = d.notification.id
    const record = lane.records.get(id)
    const current = record !== undefined && record.state === 'sending' && record.attempts === d.attempt
    if (current) {
      lane.inFlight--
      record.sendingSince = undefined
    }
    // Also on failure: a notifier with several chats answers with the ids of those that got it,
    // so the next attempt edits those (no second post) and posts only to the others.
    if (Object.keys(result.messageIds).length > 0) this.remember(messageKeyOf(lane.key, id), result.messageIds)
    if (result.ok) {
      if (current) lane.failures = 0
      if (record === undefined) return
      this.emit(record, 'delivered', now, {
        notification: d.notification, revision: d.revision, attempts: d.attempt, messageIds: result.messageIds,
        edit: d.notification.edit !== undefined, error: undefined, nextAttemptAt: undefined
      })
      // A late answer while a later attempt is out: that attempt's answer settles the record.
      if (!current && record.state === 'sending') return
      if (record.version === d.version) {
        lane.records.delete(id)
      } else {
        // Newer counts arrived while this was on its way: they follow as an edit.
        record.state = 'pending'
        record.error = undefined
        record.nextAttemptAt = undefined
      }
      return
    }
    // A late failure changes nothing: the attempt was already counted as failed.
    if (!current) return
    const error = result.error ?? `${d.notifier} did not deliver the message and gave no reason`
    if (result.retryable === false) {
      this.setBlocked(record, error)
      this.emit(record, 'blocked', now)
      return
    }
    this.fail(lane, record, error, result.retryAfter, now)
  }

  /** Attempts with no answer after `sendTimeout` become retryable failures. */
  expire(now: Millis): void {
    for (const lane of this.lanes.values()) {
      if (lane.inFlight === 0) continue
      for (const record of lane.records.values()) {
        if (record.state !== 'sending' || (record.sendingSince ?? now) + this.opts.sendTimeout > now) continue
        lane.inFlight--
        record.sendingSince = undefined
        this.fail(lane, record, `no answer from ${record.notifier} within ${Math.round(this.opts.sendTimeout / 1000)}s; the message may have arrived, it is sent again`, undefined, now)
      }
    }
  }

  /** Blocked records become pending again (the configuration changed): how many. */
  unblock(): number {
    let n = 0
    for (const lane of this.lanes.values()) {
      for (const record of lane.records.values()) {
        if (record.state !== 'blocked') continue
        record.state = 'pending'
        n++
      }
    }
    return n
  }

  /**
   * Takes every record of a lane out (to store them again elsewhere): for notifications kept
   * for a route that had no notifiers, once it has some.
   */
  drain(route: string, notifier: string): OutboxRecord[] {
    const lane = this.lanes.get(laneKeyOf(route, notifier))
    if (lane === undefined) return []
    const out = [...lane.records.values()]
    this.lanes.delete(lane.key)
    return out
  }

  /** Lanes holding records, as [route, notifier]. */
  laneNames(): Array<[string, string]> {
    const out: Array<[string, string]> = []
    for (const lane of this.lanes.values()) if (lane.records.size > 0) out.push([lane.route, lane.notifier])
    return out
  }

  /** The message will not be updated again: its ids are forgotten once no record of it is left. */
  forget(notificationId: string): void {
    for (const lane of this.lanes.values()) {
      if (!lane.records.has(notificationId)) this.messages.delete(messageKeyOf(lane.key, notificationId))
    }
  }

  /** Every record, oldest first per lane. */
  records(): OutboxRecord[] {
    const out: OutboxRecord[] = []
    for (const lane of this.lanes.values()) for (const record of lane.records.values()) out.push(record)
    return out
  }

  exportState(): OutboxState {
    const lanes: OutboxState['lanes'] = []
    const records: OutboxRecordState[] = []
    for (const lane of this.lanes.values()) {
      if (lane.records.size === 0 && lane.failures === 0) continue
      lanes.push({ route: lane.route, notifier: lane.notifier, resumeAt: lane.resumeAt, failures: lane.failures })
      for (const r of lane.records.values()) {
        // An attempt in flight is not known to have arrived: after a restart it is made again.
        const state = r.state === 'sending' ? 'pending' : r.state
        const saved: OutboxRecordState = { route: r.route, notifier: r.notifier, notification: r.notification, revision: r.revision, state, attempts: r.attempts, queuedAt: r.queuedAt }
        if (r.error !== undefined) saved.error = r.error
        if (r.nextAttemptAt !== undefined && state === 'failed') saved.nextAttemptAt = r.nextAttemptAt
        records.push(saved)
      }
    }
    const messages: OutboxState['messages'] = []
    for (const [key, messageIds] of this.messages) {
      const [laneKey, notificationId] = key.split('\u0000') as [string, string]
      const lane = this.lanes.get(laneKey)
      if (lane !== undefined) messages.push({ route: lane.route, notifier: lane.notifier, notificationId, messageIds })
    }
    return { lanes, records, messages }
  }

  /**
   * Replaces the outbox with a saved one. Blocked records are tried once more: a restart usually
   * follows a change of the configuration, and one attempt each is cheap.
   */
  importState(state: OutboxState, now: Millis): void {
    this.lanes.clear()
    this.messages.clear()
    for (const l of state.lanes) {
      const lane = this.lane(l.route, l.notifier)
      lane.resumeAt = l.resumeAt
      lane.failures = l.failures
    }
    for (const r of state.records) {
      const lane = this.lane(r.route, r.notifier)
      const record: OutboxRecord = {
        key: `${lane.key}/${r.notification.id}`, route: r.route, notifier: r.notifier, notification: r.notification,
        revision: r.revision, state: r.state === 'blocked' ? 'pending' : r.state, attempts: r.attempts, queuedAt: r.queuedAt, version: 0
      }
      if (r.error !== undefined) record.error = r.error
      if (r.nextAttemptAt !== undefined) record.nextAttemptAt = r.nextAttemptAt
      lane.records.set(r.notification.id, record)
    }
    for (const lane of this.lanes.values()) this.shrink(lane, now)
    for (const m of state.messages) this.remember(messageKeyOf(laneKeyOf(m.route, m.notifier), m.notificationId), m.messageIds)
  }

  private lane(route: string, notifier: string): Lane {
    const key = laneKeyOf(route, notifier)
    let lane = this.lanes.get(key)
    if (lane === undefined) {
      lane = { key, route, notifier, records: new Map(), inFlight: 0, resumeAt: 0, failures: 0 }
      this.lanes.set(key, lane)
    }
    return lane
  }

  private fail(lane: Lane, record: OutboxRecord, error: string, retryAfter: Millis | undefined, now: Millis): void {
    lane.failures++
    const delay = Math.max(retryAfter ?? 0, backoffDelay(lane.failures, this.opts.retryInitial, this.opts.retryMax, this.opts.random))
    lane.resumeAt = Math.max(lane.resumeAt, now + delay)
    record.state = 'failed'
    record.error = error
    record.nextAttemptAt = lane.resumeAt
    this.emit(record, 'failed', now)
  }

  private setBlocked(record: OutboxRecord, error: string): void {
    record.state = 'blocked'
    record.error = error
    record.nextAttemptAt = undefined
  }

  /** Merged per chat: an answer names the chats it concerns (a new id replaces an older one). */
  private remember(key: string, messageIds: Record<string, number>): void {
    const known = this.messages.get(key)
    this.messages.delete(key)
    this.messages.set(key, { ...known, ...messageIds })
    if (this.messages.size > this.opts.maxMessages) {
      for (const oldest of this.messages.keys()) {
        this.messages.delete(oldest)
        break
      }
    }
  }

  private shrink(lane: Lane, now: Millis): void {
    while (lane.records.size > this.opts.maxPerLane && this.shrinkOnce(lane, now)) { /* merged one pair */ }
  }

  /** Merges the oldest mergeable pair (see the file comment); false when there is none. */
  private shrinkOnce(lane: Lane, now: Millis): boolean {
    const pair = findPair(lane, (n) => n.fingerprint + '\u0000' + n.state) ?? findPair(lane, (n) => n.ruleId + '\u0000' + n.state)
    if (pair === undefined) return false
    const [into, from] = pair
    into.notification = foldNotification(into.notification, from.notification)
    into.version++
    lane.records.delete(from.notification.id)
    this.emit(from, 'merged', now, { mergedInto: into.key })
    return true
  }

  private emit(record: OutboxRecord, state: ReportState, at: Millis, over: Partial<DeliveryReport> = {}): void {
    const revision = over.revision ?? record.revision
    const attempts = over.attempts ?? record.attempts
    const report: DeliveryReport = {
      id: `${record.key}#${revision}.${attempts}.${state}`,
      key: record.key, route: record.route, notifier: record.notifier, notification: record.notification,
      revision, state, attempts, messageIds: {}, edit: false, at
    }
    if (record.error !== undefined) report.error = record.error
    if (record.nextAttemptAt !== undefined) report.nextAttemptAt = record.nextAttemptAt
    this.report(Object.assign(report, over))
  }
}

/**
 * The oldest two records of the lane that share `classOf` and may be merged (neither being
 * sent; blocked only with blocked), or undefined.
 */
function findPair(lane: Lane, classOf: (n: Notification) => string): [OutboxRecord, OutboxRecord] | undefined {
  const first = new Map<string, OutboxRecord>()
  for (const record of lane.records.values()) {
    if (record.state === 'sending') continue
    const cls = classOf(record.notification) + (record.state === 'blocked' ? '\u0000blocked' : '')
    const earlier = first.get(cls)
    if (earlier !== undefined) return [earlier, record]
    first.set(cls, record)
  }
  return undefined
}
